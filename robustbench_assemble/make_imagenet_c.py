"""Generate ImageNet-C from an ImageNet val folder, as the reference ``make_imagenet_c.py`` did.

    python -m robustbench_assemble.make_imagenet_c --src VAL_DIR [--out corruptions]
        [--corruptions common|all|extra|a,b] [--severities 1,2] [--seed 0] [--workers N]
        [--device cpu|cuda] [--backend numpy|torch] [--batch-size 64] [--limit N] [--strict]
        [--resize 256] [--crop 224] [--geometry torchvision|clovaai]

Each val image ``<wnid>/<file>`` is read as RGB, resized (short side 256, bilinear) and centre
cropped to 224 exactly as torchvision's ``Resize(256)`` + ``CenterCrop(224)``, corrupted, and
saved with PIL ``quality=85, optimize=True`` at ``<out>/<corruption>/<severity>/<wnid>/<file>``
(the released layout, source name kept).

Other frame sizes: clovaai/assembled-cnn evaluated its 256-input models on ImageNet-C that it
regenerated with its ``CE_validation_generator.py --RESIZE_SIZE 292 --CROP_SIZE 256`` (data dir
``validation_292_256``): the same corruption code with every 224 replaced by the crop size, the
same q85 save, and its own rounding of the resize and crop. ``--resize 292 --crop 256
--geometry clovaai`` makes that dataset (our corruptions at 256 equal that script's: 18 of 19
bit for bit with the same random stream, impulse noise in distribution; docs/FIDELITY.md), and
``eval --imagenet-c`` feeds its 256 frames to a 256-input model as they are, as
clovaai's ``mce/eval_robustness.py`` did.

Determinism. The numpy backend (the default, faithful to the reference code) seeds every
(image, corruption, severity) from a SHA-256 of (seed, relative path, corruption, severity),
never from the processing order: the same ``--seed`` gives byte-identical files whatever
``--workers``, ``--limit`` or interruption/resume history. The torch backend (``--device cuda``)
corrupts batches through ``corrupt_batch`` with one generator per (batch, corruption,
severity), seeded from the seed and the relative paths in the batch; batches are fixed chunks
of the class-interleaved image order, so runs on the same device with the same
``--batch-size`` are byte-identical (and a ``--limit`` that is a multiple of the batch size is
a prefix of a larger one; a cell continues with another ``--limit`` only then, else one batch
would mix two random streams, so that is refused). CPU and CUDA (and numpy and torch) outputs
of the *random* corruptions differ: they draw different random numbers from the same
distributions. The deterministic ones are byte-identical between the numpy and torch backends
on the CPU (``corrupt_batch`` is bit-identical to the reference there; on CUDA within a gray
level before the save, docs/FIDELITY.md). The backend, device, seed and batch size of each
cell are recorded in
``<out>/<corruption>/<severity>.json`` and a resumed run with other settings is refused.

Resuming. Every file is written under a temporary name in its folder and renamed when complete,
so an existing file is always whole: a rerun skips existing files, writes the missing ones,
and first deletes the temporary files a killed run left behind.

Bad inputs. A source file that cannot be decoded (truncated, not an image) is reported with
its path, counted as failed and skipped; the run goes on and exits with status 1 listing the
failed files. ``--strict`` stops at the first one instead. Grayscale, CMYK and palette photos
are converted to RGB as torchvision's ``pil_loader`` does. Any other error (a bug, a full
disk) stops the run at once. Exit status: 0 all done, 1 some images failed, 2 bad arguments,
130 interrupted.

``--limit N`` takes N images spread over the classes (the first image of every class in sorted
wnid order, then the second, ...; see ``datasets.imagenet.select_subset``), the same subset the
evaluation's ``--limit N`` uses.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import hashlib
import io
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from . import _version
from .atomic import (
    OutputError,
    atomic_write_json,
    atomic_writer,
    check_output_folder,
    check_outside,
    output_errors,
    remove_temp_files,
)
from .corruptions.params import resolve_names, resolve_severities
from .datasets.imagenet import Sample, fingerprint, index_folder, interleave_classes, select_subset
from .datasets.imagenet_c import corrupted_relpath
from .images import (
    GEOMETRIES,
    JPEG_OPTIMIZE,
    JPEG_QUALITY,
    RELEASED_FRAMES,
    ImageReadError,
    frame_record,
    load_benchmark_image,
)
from .threads import available_cores

#: Bumped when the meaning of a seed changes (part of every per-image key).
SEED_SCHEME = "make_imagenet_c/v1"

Cell = tuple[str, int]


# --------------------------------------------------------------------------- pure helpers


def image_rng(seed: int, relpath: str, corruption: str, severity: int) -> np.random.Generator:
    """The random stream of one (image, corruption, severity): a function of its key only."""
    key = f"{SEED_SCHEME}\0{seed}\0{relpath}\0{corruption}\0{int(severity)}".encode()
    entropy = int.from_bytes(hashlib.sha256(key).digest(), "big")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def batch_seed(seed: int, relpaths: Sequence[str], corruption: str, severity: int) -> int:
    """64-bit torch seed of one (batch, corruption, severity) of the torch backend."""
    key = f"{SEED_SCHEME}/batch\0{seed}\0{corruption}\0{int(severity)}\0" + "\n".join(relpaths)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def output_path(out: Path, relpath: str, corruption: str, severity: int) -> Path:
    """``<out>/<corruption>/<severity>/<wnid>/<file>`` for the val image ``relpath``."""
    return out / corruption / str(int(severity)) / corrupted_relpath(relpath)


def encode_jpeg(array: np.ndarray) -> bytes:
    """HxWx3 uint8 -> JPEG bytes with the reference's PIL options (quality 85, optimize)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=JPEG_OPTIMIZE)
    return buf.getvalue()


def save_jpeg(array: np.ndarray, path: Path) -> None:
    """Encode and write atomically (temp name in the same folder, then ``os.replace``)."""
    data = encode_jpeg(array)
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as f:
            f.write(data)


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides the bytes of the output files."""

    seed: int = 0
    backend: str = "numpy"  # numpy (per image, reference code) or torch (batched)
    device: str = "cpu"
    batch_size: int = 64  # torch backend only
    images: int = 0  # selected source images: they decide the torch backend's batches
    resize: int = 256  # frame geometry: short side, crop and rounding (images.GEOMETRIES)
    crop: int = 224
    geometry: str = "torchvision"

    @property
    def frames(self) -> tuple[int, int, str]:
        return (self.resize, self.crop, self.geometry)

    def record(self) -> dict:
        """The provenance record written next to each cell; the keys that must match on resume
        come first."""
        import PIL
        import torch

        rec = {"seed": self.seed, "backend": self.backend, "device": _device_kind(self.device)}
        if self.backend == "torch":
            rec["batch_size"] = self.batch_size
            rec["images"] = self.images
        rec.update(
            frames=frame_record(*self.frames),
            seed_scheme=SEED_SCHEME,
            jpeg={"quality": JPEG_QUALITY, "optimize": JPEG_OPTIMIZE},
            versions={
                "robustbench_assemble": _version.__version__,
                # the version string does not change between commits; the engine's code does
                "code": _version.code_fingerprint(),
                "Pillow": PIL.__version__,
                "numpy": np.__version__,
                "torch": torch.__version__,
            },
        )
        if rec["device"] == "cuda":
            rec["gpu"] = torch.cuda.get_device_name(torch.device(self.device))
        return rec


def _device_kind(device: str) -> str:
    return device.split(":", 1)[0]


MUST_MATCH = ("seed", "backend", "device", "batch_size", "seed_scheme", "jpeg", "frames")
#: What records written before a key existed mean by its absence.
RECORD_DEFAULTS = {"frames": RELEASED_FRAMES}


def provenance_path(out: Path, corruption: str, severity: int) -> Path:
    return out / corruption / f"{int(severity)}.json"


def check_or_write_provenance(out: Path, cells: Sequence[Cell], settings: Settings) -> list[str]:
    """Write ``<out>/<corruption>/<severity>.json``, or check that a resumed cell matches.

    A cell already (partly) generated with another seed/backend/device/batch size would end up
    mixing two random streams, so that is an error. Returns warnings (other library versions,
    which may change the JPEG bytes).
    """
    import json

    record = settings.record()
    warnings: list[str] = []
    for corruption, severity in cells:
        path = provenance_path(out, corruption, severity)
        if path.exists():
            old = json.loads(path.read_text())
            old = {**RECORD_DEFAULTS, **old}
            diff = [k for k in MUST_MATCH if old.get(k) != record.get(k)]
            if diff:
                raise ValueError(
                    f"{out / corruption / str(severity)} was generated with "
                    + ", ".join(f"{k}={old.get(k)!r}" for k in diff)
                    + "; this run has "
                    + ", ".join(f"{k}={record.get(k)!r}" for k in diff)
                    + ". Use another --out, or the same settings to resume."
                )
            _check_torch_batches(out / corruption / str(severity), old, record)
            if old.get("images") != record.get("images"):
                with output_errors(path):
                    atomic_write_json(path, {**old, "images": record["images"]})
            if old.get("versions") != record["versions"]:
                was, now = old.get("versions") or {}, record["versions"]
                changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
                before = {k: was.get(k) for k in changed}
                after = {k: now.get(k) for k in changed}
                warnings.append(
                    f"{path}: written with {before}, now {after}: files of this cell may come "
                    "from two code or library versions (random corruptions can differ)"
                )
        else:
            _check_unrecorded_files(out / corruption / str(severity), settings)
            with output_errors(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(path, record)
    return warnings


def _check_unrecorded_files(cell: Path, settings: Settings) -> None:
    """A cell folder with files but no record (deleted, or made elsewhere): its files must at
    least be frames of this run's size, or the record written now would describe them wrongly."""
    from .datasets.imagenet_c import frame_size

    if not cell.is_dir():
        return
    try:
        size = frame_size(cell)
    except ValueError:  # no JPEG files yet
        return
    if size != settings.crop:
        raise ValueError(
            f"{cell} already holds {size}x{size} files but no record of how they were made; "
            f"this run makes {settings.crop}x{settings.crop} frames. Use another --out, or "
            "delete the folder to start over."
        )


def _check_torch_batches(cell: Path, old: dict, new: dict) -> None:
    """The torch backend seeds a batch from its images, and batches are chunks of the selected
    images: a cell can continue with another image count only if the shorter run ended on a
    batch boundary; otherwise one batch would mix files of two random streams."""
    if new.get("backend") != "torch" or old.get("images") in (None, new.get("images")):
        return
    shorter = min(int(old["images"]), int(new["images"]))
    if shorter % int(new["batch_size"]):
        raise ValueError(
            f"{cell} was generated from {old['images']} images, this run selects "
            f"{new['images']}: with the torch backend the batch of {new['batch_size']} that "
            "straddles the change would mix two random streams (only counts that are multiples "
            "of --batch-size extend each other). Use another --out, or the same --limit."
        )


# --------------------------------------------------------------------------- summary


@dataclasses.dataclass
class Summary:
    """Counts of one run. ``written``/``skipped`` count files; ``failed`` lists source images."""

    images: int = 0  # images whose cells were all handled (written or skipped)
    written: int = 0
    skipped: int = 0
    failed: list[str] = dataclasses.field(default_factory=list)
    stale_temp_removed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stopped_early: bool = False  # interrupted or --strict: workers may have written more
    counts_complete: bool = False  # no worker can have written files the counts miss

    def add(self, written: int, skipped: int, error: str | None) -> None:
        self.written += written
        self.skipped += skipped
        if error is None:
            self.images += 1
        else:
            self.failed.append(error)

    def text(self) -> str:
        rate = self.images / self.seconds if self.seconds > 0 else float("nan")
        lines = [
            f"{self.images} images in {self.seconds:.1f} s ({rate:.2f} images/s): "
            f"{self.written} files written, {self.skipped} already there (skipped), "
            f"{len(self.failed)} images failed"
            + (
                f", {self.stale_temp_removed} stale temporary files removed"
                if self.stale_temp_removed
                else ""
            )
        ]
        if self.failed:
            lines.append("failed images:")
            lines += [f"  {f}" for f in self.failed]
        if self.stopped_early and self.counts_complete:
            lines.append("stopped early: the counts cover every file written")
        elif self.stopped_early:
            lines.append(
                "stopped early: the counts cover the images whose results reached this process; "
                "worker processes may have finished more files (a rerun skips them)"
            )
        if self.interrupted:
            lines.append("interrupted: rerun the same command to resume")
        return "\n".join(lines)


# --------------------------------------------------------------------------- numpy backend


@dataclasses.dataclass(frozen=True)
class _Job:
    relpath: str
    path: str
    out: str
    cells: tuple[Cell, ...]
    seed: int
    frames: tuple[int, int, str] = (256, 224, "torchvision")


def _run_job(job: _Job) -> tuple[int, int, str | None]:
    """All requested cells of one image: decode once, write the missing files.

    Returns (written, skipped, error naming the file or None). Only unreadable sources are
    reported as errors; anything else propagates and stops the run.
    """
    from .corruptions import corrupt

    out = Path(job.out)
    todo = [(c, s, output_path(out, job.relpath, c, s)) for c, s in job.cells]
    todo = [t for t in todo if not t[2].is_file()]  # a folder there: an error at the write
    skipped = len(job.cells) - len(todo)
    if not todo:
        return 0, skipped, None
    try:
        image = load_benchmark_image(job.path, *job.frames)
    except (ImageReadError, FileNotFoundError) as exc:
        return 0, skipped, _error(job.path, exc)
    for corruption, severity, path in todo:
        rng = image_rng(job.seed, job.relpath, corruption, severity)
        save_jpeg(corrupt(image, corruption, severity, seed=rng), path)
    return len(todo), skipped, None


def _error(path: str | os.PathLike, exc: Exception) -> str:
    """One line naming the file and what is wrong with it."""
    text = str(exc)
    return text if str(path) in text else f"{path}: {text}"


def _init_worker() -> None:
    """One thread per worker process (the pool already uses every core); Ctrl-C is handled by
    the parent, which terminates the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(1)


@contextlib.contextmanager
def _single_thread_env():
    """Children spawned inside inherit OMP/MKL/OpenBLAS = 1 thread."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _generate_numpy(samples, cells, out, settings, workers, strict, summary, bar) -> None:
    jobs = [
        _Job(s.relpath, str(s.path), str(out), tuple(cells), settings.seed, settings.frames)
        for s in samples
    ]
    if workers == 0:
        results = map(_run_job, jobs)
        _consume(results, summary, bar, strict)
        return
    with _single_thread_env():
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
    try:
        _consume(pool.imap_unordered(_run_job, jobs, chunksize=1), summary, bar, strict)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


class _StrictStop(Exception):
    pass


def _consume(results, summary: Summary, bar, strict: bool) -> None:
    for written, skipped, error in results:
        summary.add(written, skipped, error)
        if error is not None:
            bar.write(f"failed: {error}")
            if strict:
                raise _StrictStop(error)
        bar.update(1)
        _postfix(bar, summary)


def _postfix(bar, summary: Summary) -> None:
    bar.set_postfix(
        written=summary.written, skipped=summary.skipped, failed=len(summary.failed), refresh=False
    )


# --------------------------------------------------------------------------- torch backend


def _load_or_error(
    sample: Sample, frames: tuple[int, int, str]
) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_benchmark_image(sample.path, *frames), None
    except (ImageReadError, FileNotFoundError) as exc:
        return None, _error(sample.path, exc)


def _generate_torch(samples, cells, out, settings, workers, strict, summary, bar) -> None:
    """Batched generation through ``corrupt_batch``; decoding and JPEG encoding in threads.

    Batches are fixed chunks of the class-interleaved order of the *selected* images, so the
    random draws of a batch do not depend on which of its files already exist: a batch with
    any missing file is recomputed in full and only the missing files are written.
    """
    order = interleave_classes(samples)
    bs = settings.batch_size
    with cf.ThreadPoolExecutor(max(1, workers)) as threads:
        for start in range(0, len(order), bs):
            batch = order[start : start + bs]
            _torch_batch(batch, cells, out, settings, threads, strict, summary, bar)
            bar.update(len(batch))
            _postfix(bar, summary)


def _torch_batch(batch, cells, out, settings, threads, strict, summary, bar) -> None:
    import torch

    from .corruptions import corrupt_batch

    missing = {
        cell: {i for i, x in enumerate(batch) if not output_path(out, x.relpath, *cell).is_file()}
        for cell in cells
    }
    if not any(missing.values()):
        for _ in batch:
            summary.add(0, len(cells), None)
        return
    loaded = list(threads.map(functools.partial(_load_or_error, frames=settings.frames), batch))
    for _, error in loaded:
        if error is not None:
            summary.add(0, 0, error)
            bar.write(f"failed: {error}")
            if strict:
                raise _StrictStop(error)
    good = [i for i, (img, _) in enumerate(loaded) if img is not None]
    if not good:
        return
    device = torch.device(settings.device)
    x = torch.from_numpy(np.stack([loaded[i][0] for i in good]))
    x = x.permute(0, 3, 1, 2).contiguous().to(device)
    relpaths = [batch[i].relpath for i in good]
    written = dict.fromkeys(good, 0)
    writes: list[cf.Future] = []
    for (c, s), idx in missing.items():
        todo = [k for k, i in enumerate(good) if i in idx]
        if not todo:
            continue
        gen = torch.Generator(device=device)
        gen.manual_seed(batch_seed(settings.seed, relpaths, c, s))
        y = corrupt_batch(x, c, s, generator=gen).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        for k in todo:
            writes.append(threads.submit(save_jpeg, y[k], output_path(out, relpaths[k], c, s)))
            written[good[k]] += 1
    for f in writes:
        f.result()  # a failed write stops the run
    for i in good:
        summary.add(written[i], len(cells) - written[i], None)


# --------------------------------------------------------------------------- driver


def generate(
    src: str | os.PathLike,
    out: str | os.PathLike = "corruptions",
    *,
    corruptions: Sequence[str],
    severities: Sequence[int],
    seed: int = 0,
    workers: int = 0,
    device: str = "cpu",
    backend: str | None = None,
    batch_size: int = 64,
    limit: int | None = None,
    strict: bool = False,
    progress: bool = True,
    resize: int = 256,
    crop: int = 224,
    geometry: str = "torchvision",
) -> Summary:
    """Generate the requested cells; see the module docstring. Returns the run's :class:`Summary`.

    Raises FileNotFoundError/ValueError for a bad ``src`` or bad settings, and OutputError for
    an ``out`` that cannot be written, before writing.
    ``summary.failed`` lists the unreadable source images (a ``--strict`` stop also lands there).
    """
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    backend = backend or ("torch" if _device_kind(device) == "cuda" else "numpy")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"--backend must be 'numpy' or 'torch', got {backend!r}")
    if _device_kind(device) not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if backend == "numpy" and _device_kind(device) != "cpu":
        raise ValueError("the numpy backend runs on the CPU; use --backend torch for --device cuda")
    if _device_kind(device) == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for but torch sees no CUDA device")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    from .corruptions.numpy_backend import MIN_SIDE

    if crop < MIN_SIDE:
        raise ValueError(f"--crop must be >= {MIN_SIDE} (the corruptions' smallest side): {crop}")
    if resize < crop:
        raise ValueError(f"--resize ({resize}) must be >= --crop ({crop}): the crop must fit")
    if geometry not in GEOMETRIES:
        raise ValueError(f"--geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")

    check_output_folder(out)
    check_outside(out, src)
    _, samples = index_folder(src)
    samples = select_subset(samples, limit)
    cells = [(c, int(s)) for c in corruptions for s in severities]
    settings = Settings(
        seed=seed,
        backend=backend,
        device=device,
        batch_size=batch_size,
        images=len(samples),
        resize=resize,
        crop=crop,
        geometry=geometry,
    )

    summary = Summary()
    for c, s in cells:
        summary.stale_temp_removed += len(remove_temp_files(out / c / str(s)))
    for w in check_or_write_provenance(out, cells, settings):
        print(f"warning: {w}", file=sys.stderr)

    print(
        f"ImageNet-C: {len(samples)} images from {src} (fingerprint {fingerprint(samples)}) x "
        f"{len(corruptions)} corruptions x {len(severities)} severities -> {out} "
        f"[{backend} on {device}, seed {seed}, Resize({resize}) + CenterCrop({crop}), "
        f"{geometry} rounding]",
        file=sys.stderr,
    )
    run = _generate_torch if backend == "torch" else _generate_numpy
    t0 = time.perf_counter()
    with tqdm(total=len(samples), unit="img", disable=not progress, dynamic_ncols=True) as bar:
        try:
            run(samples, cells, out, settings, workers, strict, summary, bar)
        except _StrictStop:
            summary.stopped_early = True
        except KeyboardInterrupt:
            summary.interrupted = summary.stopped_early = True
    # no worker process can have written files the counts miss: one process (numpy,
    # --workers 0), or the torch backend's threads, all joined unless interrupted mid-batch
    summary.counts_complete = (backend == "numpy" and workers == 0) or (
        backend == "torch" and not summary.interrupted
    )
    summary.seconds = time.perf_counter() - t0
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustbench_assemble.make_imagenet_c",
        description=(
            "Generate ImageNet-C (Resize 256 + CenterCrop 224 unless --resize/--crop say "
            "otherwise, corruption, JPEG q85) from an "
            "ImageNet val folder <wnid>/<file>.JPEG into <out>/<corruption>/<severity>/<wnid>/. "
            "Resumable: rerun the same command after an interruption."
        ),
    )
    p.add_argument("--src", required=True, help="ImageNet val folder with one sub-folder per wnid")
    p.add_argument("--out", default="corruptions", help="output root (default: ./corruptions)")
    p.add_argument(
        "--corruptions",
        default="common",
        help="'common' (the 15 of mCE, default), 'all' (19), 'extra' (4) or a,b,...",
    )
    p.add_argument("--severities", default="all", help="e.g. 1,3 (default: 1,2,3,4,5)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument(
        "--workers",
        type=int,
        default=available_cores(),
        help="worker processes (numpy) or I/O threads (torch); 0 = in-process "
        "(default: the CPUs available)",
    )
    p.add_argument(
        "--device", default="cpu", help="cpu (default) or cuda[:N] (implies --backend torch)"
    )
    p.add_argument(
        "--backend",
        choices=("numpy", "torch"),
        default=None,
        help="numpy: per-image reference code (default on cpu); torch: batched corrupt_batch "
        "(default on cuda). Random corruptions differ between the two; deterministic ones are "
        "identical on the CPU (within a gray level on CUDA).",
    )
    p.add_argument("--batch-size", type=int, default=64, help="torch backend batch (default 64)")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only N images, spread round-robin over the sorted classes (same subset as the "
        "evaluation's --limit)",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resize", type=int, default=256, help="short side before the crop (256)")
    p.add_argument("--crop", type=int, default=224, help="centre crop: the frame size (224)")
    p.add_argument(
        "--geometry",
        default="torchvision",
        help="rounding of the resize and crop: torchvision (the released ImageNet-C) or clovaai "
        "(assembled-cnn's CE_validation_generator; with --resize 292 --crop 256: its "
        "validation_292_256)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 failed images, 2 bad arguments)."""
    args = build_parser().parse_args(argv)
    try:
        corruptions = resolve_names(args.corruptions)
        severities = resolve_severities(args.severities)
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be a positive integer, got {args.limit}")
        summary = generate(
            args.src,
            args.out,
            corruptions=corruptions,
            severities=severities,
            seed=args.seed,
            workers=args.workers,
            device=args.device,
            backend=args.backend,
            batch_size=args.batch_size,
            limit=args.limit,
            strict=args.strict,
            progress=not args.no_progress,
            resize=args.resize,
            crop=args.crop,
            geometry=args.geometry,
        )
    except (FileNotFoundError, NotADirectoryError, ValueError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.text(), file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
