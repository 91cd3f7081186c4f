"""One evaluation run: model + source + cells -> cached counts -> results (rank 0 writes).

Data flows one way: :mod:`.sources` yields uint8 images, :mod:`.loop` turns them into counts,
:mod:`.cache` keeps finished cells, and :mod:`robustbench_assemble.reporting` turns the counts
into RobustBench JSON, CSV and figures.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._version import __version__, code_fingerprint
from ..models.transforms import native_files_hint, warn_resize_policy
from ..models.weights import file_sha256
from .cache import CLEAN, Cell, CellCache, state_dict_sha256
from .cli import EvalConfig, default_workers
from .distributed import DistContext, all_reduce_sum, barrier, broadcast_object
from .loop import CellJob, Counts, LoopStats, check_precision, evaluate_cells, prepare_model
from .modelio import ModelIO, check_frames, load_model
from .protocol import protocol_departures
from .sources import (
    FRAME_GEOMETRY,
    FilesSource,
    OnTheFlySource,
    SmokeSource,
    Source,
    ValFolder,
    check_gpu_decode,
)

log = logging.getLogger("robustbench_assemble.eval")


@dataclass
class CResults:
    """Counts of one ImageNet-C run and where they came from."""

    model: str
    clean: Counts | None
    cells: dict[tuple[str, int], Counts]
    meta: dict[str, Any] = field(default_factory=dict)


def build_source(cfg: EvalConfig, io: ModelIO, device: torch.device) -> Source:
    """The source the flags ask for (see :mod:`.sources`)."""
    native = io.resize_policy == "native"
    # resize policy "native": corrupt at the model's own Resize + CenterCrop (assembled-cnn)
    geometry = io.preprocessing.native_geometry if native else FRAME_GEOMETRY
    if cfg.smoke:
        return SmokeSource(
            io.clean_transform, cfg.seed, device, geometry, jpeg_quality=cfg.on_the_fly_jpeg
        )
    val = ValFolder(cfg.data, cfg.limit, io.num_classes) if cfg.data is not None else None
    if cfg.resolved_source == "files":
        if native:
            raise ValueError(
                "--resize-policy native corrupts val images at the model's input size on the "
                "fly; it needs --source on-the-fly. Files made at the model's size ("
                f"{native_files_hint(io.preprocessing)}) need no policy"
            )
        if cfg.decode == "gpu":
            check_gpu_decode(device)
        return FilesSource(
            cfg.imagenet_c, val, cfg.limit, io.clean_transform, io.num_classes, cfg.decode
        )
    if cfg.decode != "cpu":
        raise ValueError(
            "--decode gpu applies to the ImageNet-C files (--source files); on-the-fly "
            "corruption decodes val images with PIL"
        )
    if val is None:
        raise ValueError("--source on-the-fly needs --data VAL_DIR")
    return OnTheFlySource(
        val, io.clean_transform, cfg.seed, device, geometry, jpeg_quality=cfg.on_the_fly_jpeg
    )


def cells_of(cfg: EvalConfig, source: Source) -> list[Cell]:
    cells = [CLEAN] if source.has_clean else []
    return cells + [Cell(c, s) for c in cfg.corruptions for s in cfg.severities]


#: Cells served by one loader. Why a bound: every cell's file index (~24 MB per 50,000 images)
#: lives in the main process and, copied on write, in each worker; five cells (one
#: corruption's severities) keep that small while worker start-up is paid once per five.
CELLS_PER_LOADER = 5


def run_imagenet_c(cfg: EvalConfig, ctx: DistContext) -> CResults:
    """Evaluate every cell (reusing cached ones); every rank returns the same summed counts."""
    device = ctx.device
    check_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)  # a model without weights is a reproducible random init
    io = load_model(
        cfg.model, cfg.weights, resize_policy=cfg.resize_policy, clean_resize=cfg.clean_resize
    )
    model = prepare_model(io.model, device)
    source = build_source(cfg, io, device)
    cells = cells_of(cfg, source)
    source.check(cells)
    if any(not c.is_clean for c in cells):
        if io.resize_policy == "native":
            warn_resize_policy(io.preprocessing, io.resize_policy)
        else:
            check_frames(io, source.frame_size)
    if not io.trained and ctx.is_main:
        warn_untrained(cfg.model)

    batch_size = cfg.batch_size or (256 if device.type == "cuda" else 32)
    workers = cfg.workers if cfg.workers is not None else default_workers(device)
    if isinstance(source, SmokeSource):
        workers = 0  # five images in memory: worker start-up would dominate

    weights_hash = state_dict_sha256(io.model)
    base_key = {
        "model": cfg.model,
        "weights_sha256": weights_hash,
        "precision": cfg.precision,
        "limit": cfg.limit,
        "source": source.kind,
        "resize_policy": io.resize_policy,
        "preprocessing": io.preprocessing.as_dict(),
        "package_version": __version__,
        "code": code_fingerprint(),
    }
    cache = CellCache(cfg.out / cfg.model / "cache") if ctx.is_main else CellCache(None)
    cache.clean_up()

    results: dict[Cell, Counts] = {}
    fingerprints: list[str] = []
    todo: list[tuple[Cell, dict, CellJob]] = []
    started = clock = time.perf_counter()

    computed = [0, 0.0]  # cells evaluated (not cached) in this run, their seconds
    waits = LoopStats()  # where the evaluation loop waited, over the run

    def finished(j: int, local: Counts) -> None:
        """A cell is complete on every rank: sum, cache (rank 0), log with the run's ETA."""
        nonlocal clock
        cell, key, _ = todo[j]
        counts = Counts(*all_reduce_sum(local.as_list(), ctx))
        if ctx.is_main:
            cache.store(cell, key, counts)
            now = time.perf_counter()
            computed[0] += 1
            computed[1] += now - clock
            left = len(cells) - len(results) - 1  # cells still to do (a cached one is instant)
            eta = computed[1] / computed[0] * left
            log.info(
                "[%d/%d] %s: %s (%.1f s; about %s left)",
                len(results) + 1,
                len(cells),
                cell,
                _fmt(counts),
                now - clock,
                _duration(eta),
            )
            clock = now
        results[cell] = counts

    def evaluate_todo() -> None:
        """One loader for the pending cells (its workers stay up from one cell to the next)."""
        nonlocal clock
        clock = time.perf_counter()
        evaluate_cells(
            model,
            [job for _, _, job in todo],
            device=device,
            batch_size=batch_size,
            workers=workers,
            precision=cfg.precision,
            ctx=ctx,
            progress=cfg.progress,
            on_cell=finished,
            stats=waits,
        )
        todo.clear()

    for i, cell in enumerate(cells, 1):
        data = source.cell(cell)
        key = {**base_key, "cell": cell.name, "data_fingerprint": data.fingerprint}
        key["decode"] = data.decode  # nvjpeg's pixels are not PIL's
        fingerprints.append(f"{cell.name}:{data.fingerprint}")
        if data.device_transform is not None:
            # random draws depend on the generator's device and on how images are batched
            key.update(
                data.extra_key,
                device_type=device.type,
                batch_size=batch_size,
                world_size=ctx.world_size,
            )
        cached = broadcast_object(cache.load(cell, key), ctx)
        if cached is not None:
            results[cell] = cached
            if ctx.is_main:
                log.info("[%d/%d] %s: cached %s", i, len(cells), cell, _fmt(cached))
            continue
        prepare = io.frame_prepare if data.frames else io.clean_prepare
        job = CellJob(data.dataset, prepare, data.device_transform, data.decoder, str(cell))
        todo.append((cell, key, job))
        if len(todo) == CELLS_PER_LOADER:
            evaluate_todo()
    if todo:
        evaluate_todo()
    if waits.total_s > 0 and ctx.is_main:
        log_waits(waits, device)
    results = {cell: results[cell] for cell in cells}  # report in cell order
    barrier(ctx)

    corrupted = any(not c.is_clean for c in cells)
    pre = io.preprocessing
    clean_only = (
        f"clean images of {cfg.data}, {pre.resize_backend} Resize({pre.resize}) + "
        f"CenterCrop({pre.input_size})"
    )
    meta = {
        # a clean-only run (--corruptions none) corrupts nothing: say so, not the source's plan
        "source": source.kind if corrupted else "clean only",
        "data": source.description if corrupted else clean_only,
        "smoke_sample": isinstance(source, SmokeSource),
        "limit": cfg.limit,
        "precision": cfg.precision,
        "device": str(device),
        "world_size": ctx.world_size,
        "batch_size": batch_size,
        "seed": cfg.seed,
        "resize_policy": io.resize_policy,
        "frame_size": source.frame_size if corrupted else None,
        "frame_geometry": source.frame_geometry if corrupted else None,
        "preprocessing": io.preprocessing.as_dict(),
        "reference_resize_backend": io.reference_resize_backend,
        "decode": cfg.decode,
        # the in-memory JPEG save of on-the-fly frames (None: none; files are JPEGs already)
        "on_the_fly_jpeg": source.jpeg_quality if corrupted else None,
        "weights": str(cfg.weights) if cfg.weights else None,
        "weights_file_sha256": file_sha256(cfg.weights) if cfg.weights and ctx.is_main else None,
        "state_dict_sha256": weights_hash,
        "trained_weights": io.trained,
        "package_version": __version__,
        "seconds": round(time.perf_counter() - started, 1),
        "data_fingerprint": _combine(fingerprints),
    }
    return CResults(
        model=cfg.model,
        clean=results.get(CLEAN),
        cells={(c.corruption, c.severity): v for c, v in results.items() if not c.is_clean},
        meta=meta,
    )


#: Share of the loop's time spent waiting for the next batch above which a run says that its
#: input pipeline, not the model, set the pace.
LOADER_BOUND = 0.2


def log_waits(waits: LoopStats, device: torch.device) -> None:
    """Say where the evaluation loop waited (rank 0), so a slow run can be told apart: the
    loader (more ``--workers``), or the device (nothing to gain on the input side)."""
    data, dev = waits.data_wait_s / waits.total_s, waits.gpu_wait_s / waits.total_s
    msg = f"evaluation loop: {waits.batches} batches in {_duration(waits.total_s)}; it waited "
    msg += f"for the next batch {100 * data:.0f} % of the time"
    if device.type == "cuda":
        msg += f" and for the device {100 * dev:.0f} %"
    if data > LOADER_BOUND:
        msg += " (input-bound: more --workers may help, if the machine has idle cores)"
    msg += f"; loader start-up (to each loader's first batch) {waits.first_batch_s:.1f} s"
    if waits.ring_pinned is not None:
        msg += f", page-locking batch buffers {waits.pin_s:.1f} s"
    log.info(msg)


def _duration(seconds: float) -> str:
    """``1 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _fmt(c: Counts) -> str:
    return f"top-1 {100 * c.top1:.2f} % top-5 {100 * c.top5:.2f} % ({c.correct1}/{c.n})"


def warn_untrained(name: str) -> None:
    """Random-init numbers look like results; say loudly that they are not."""
    warnings.warn(
        f"model {name!r} has no trained weights (random initialisation): its accuracy is "
        "chance level; pass --weights FILE to evaluate a trained checkpoint",
        stacklevel=2,
    )


def _combine(fingerprints: list[str]) -> str:
    """One 16-hex fingerprint of the data of all cells of the run."""
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()[:16]


def run_imagenet_p(cfg: EvalConfig, ctx: DistContext) -> tuple[Path, dict] | None:
    """``--imagenet-p DIR``: FP / T5D per perturbation via :mod:`robustbench_assemble.evaluate_p`
    (single process: under torchrun, rank 0 evaluates it alone), written as imagenet_p.json;
    returns its path and content (None on the other ranks).

    Uses the published AlexNet flip probabilities, or the measured AlexNet of ``--baseline``
    when it points to an ``imagenet_p.json``; without a measured baseline mT5D is null.
    """
    from .. import reporting
    from ..evaluate_p import evaluate_imagenet_p

    if not ctx.is_main:
        return None
    device = ctx.device
    check_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    io = load_model(
        cfg.model, cfg.weights, resize_policy=cfg.resize_policy, clean_resize=cfg.clean_resize
    )
    if not io.trained:
        warn_untrained(cfg.model)
    weights_hash = state_dict_sha256(io.model)
    settings = (
        f"{weights_hash}|{cfg.precision}|{io.resize_policy}|{cfg.limit}|{__version__}|"
        f"{code_fingerprint()}"
    )
    cache_dir = cfg.out / cfg.model / "cache_p" / hashlib.sha256(settings.encode()).hexdigest()[:16]
    classes = None
    if cfg.data is not None:
        from ..datasets.imagenet import class_order, find_classes

        classes = class_order(find_classes(cfg.data), io.num_classes)
    raw = evaluate_imagenet_p(
        io.model.eval().to(device),
        cfg.imagenet_p,
        perturbations=_perturbations(cfg),
        difficulties=cfg.difficulties,
        device=device,
        precision=cfg.precision,
        batch_size=cfg.batch_size or (256 if device.type == "cuda" else 32),
        workers=cfg.workers if cfg.workers is not None else default_workers(device),
        limit=cfg.limit,
        cache_dir=cache_dir,
        classes=classes,
        resize_policy=io.resize_policy,
        progress=cfg.progress,
    )
    stats = {
        k: reporting.SequenceStats(
            v["n_videos"], v["frames_per_video"], v["flip_probability"], v["top5_distance"]
        )
        for k, v in raw.items()
    }
    baseline = cfg.baseline_p
    config = {
        "model": cfg.model,
        "imagenet_p": str(cfg.imagenet_p),
        "limit": cfg.limit,
        "precision": cfg.precision,
        "device": str(device),
        "resize_policy": io.resize_policy,
        "preprocessing": io.preprocessing.as_dict(),
        "codecs": sorted({v["codec"] for v in raw.values()}),
        "origins": sorted({v["origin"] for v in raw.values()}),
        "fp_baseline": str(baseline) if baseline else "alexnet",
        "weights": str(cfg.weights) if cfg.weights else None,
        "state_dict_sha256": weights_hash,
        "trained_weights": io.trained,
        "package_version": __version__,
    }
    sources = sorted(f"{k}:{v['source']}:{v['n_videos']}" for k, v in raw.items())
    footnote, notes = protocol_departures(
        config, [v["n_videos"] for v in raw.values()], "imagenet_p"
    )
    report = reporting.build_imagenet_p_report(
        cfg.model,
        stats,
        config,
        reporting.collect_versions(),
        _combine(sources),
        fp_baseline=str(baseline) if baseline else "alexnet",
        t5d_baseline=str(baseline) if baseline else None,
        model_info={"footnote": footnote} if footnote else None,
        notes=notes,
    )
    path = reporting.write_imagenet_p_json(cfg.out / cfg.model / "imagenet_p.json", report)
    if cfg.figures:
        from .. import figures

        # its own figures only: the ImageNet-C ones of an earlier run keep their --compare
        figures.make_figures(cfg.out / cfg.model, cfg.compare, datasets=("imagenet_p",))
    return path, report


def _perturbations(cfg: EvalConfig) -> tuple[str, ...] | str:
    """``--perturbations present``: those with difficulty-1 data under --imagenet-p."""
    if cfg.perturbations != "present":
        return cfg.perturbations  # a name, a split or a comma list: resolve_names reads them
    from ..datasets.imagenet_p import available_datasets, unfinished_datasets

    names = tuple(
        dict.fromkeys(name for name, d, _ in available_datasets(cfg.imagenet_p) if d == 1)
    )
    unfinished = [name for name, d in unfinished_datasets(cfg.imagenet_p) if d == 1]
    hint = (
        f"; {', '.join(unfinished)} exist only as unfinished .partial files (rerun "
        "make_imagenet_p to finish them)"
        if unfinished
        else ""
    )
    if not names:
        raise FileNotFoundError(
            f"--imagenet-p {cfg.imagenet_p}: no ImageNet-P data found (expected <name>.h5 files "
            f"or <name>/<wnid>/*.mp4 folders){hint}"
        )
    if unfinished:
        warnings.warn(
            f"--imagenet-p {cfg.imagenet_p}: evaluating {', '.join(names)}{hint}", stacklevel=2
        )
    return names
