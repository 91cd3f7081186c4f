"""Evaluate a classifier on ImageNet-P: flip probability and top-5 distance per dataset.

The reference (``ImageNet-P/test.py``) feeds every decoded 224x224 frame through
``ToTensor() + Normalize(mean, std)`` -- no resize -- and keeps, per video, the top-1 class
and the full ranking of every frame. Here the frames are normalised with the model's own
:class:`~robustbench_assemble.models.registry.Preprocessing` (ImageNet mean/std for
torchvision models: the reference's), adapted by an explicit ``resize_policy`` when the model
does not take 224 inputs, and only the top-5 classes of every frame are kept: the top-5
distance caps every rank beyond 5 at 6, so the top 5 determine it exactly (see
:func:`robustbench_assemble.metrics.top5_distance`). FP and T5D come from
:mod:`robustbench_assemble.metrics`.

A non-noise perturbation's difficulties 1..3 are strides over the same frames: its videos are
predicted once and all requested difficulties are scored from those predictions.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from .atomic import atomic_writer
from .datasets.imagenet import Sample, select_subset
from .datasets.imagenet_p import open_imagenet_p
from .metrics import flip_probability, rankings_from_scores, top5_distance
from .models.registry import Preprocessing
from .models.transforms import DEFAULT_RESIZE_POLICY, adapt_frames, normalize_batch
from .perturbations.params import (
    dataset_name,
    is_noise,
    resolve_difficulties,
    resolve_names,
    source_difficulty,
)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CACHE_VERSION = 1


def _collate(batch):
    frames = torch.from_numpy(np.stack([np.asarray(f) for f, _ in batch]))
    return frames, torch.tensor([label for _, label in batch])


def predict_videos(
    model: torch.nn.Module,
    dataset,
    indices: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    batch_size: int = 256,
    workers: int = 0,
    resize_policy: str = DEFAULT_RESIZE_POLICY,
    progress: bool = True,
    desc: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 (n, T) and top-5 (n, T, 5) classes of every frame of the selected videos.

    ``batch_size`` counts frames; whole videos are batched (at least one per step).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    pre: Preprocessing = getattr(model, "preprocessing", None) or Preprocessing()
    frames_per_video = dataset.frames_per_sequence
    videos_per_batch = max(1, batch_size // frames_per_video)
    loader = DataLoader(
        Subset(dataset, list(indices)),
        batch_size=videos_per_batch,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    dtype = PRECISIONS[precision]
    autocast = precision != "fp32"
    top5_all: list[np.ndarray] = []
    model.eval()
    with (
        torch.inference_mode(),
        tqdm(total=len(indices), desc=desc, unit="video", disable=not progress) as bar,
    ):
        for frames, _ in loader:
            n, t = frames.shape[:2]
            x = frames.to(device, non_blocking=True).reshape(n * t, *frames.shape[2:])
            x = normalize_batch(x.permute(0, 3, 1, 2), pre)
            x = adapt_frames(x, pre, resize_policy, dataset="imagenet_p")
            with torch.autocast(device.type, dtype=dtype, enabled=autocast):
                logits = model(x)
            scores = logits.float().cpu().numpy()
            top5_all.append(rankings_from_scores(scores, 5).reshape(n, t, 5))
            bar.update(n)
    top5 = np.concatenate(top5_all).astype(np.int16)
    return top5[..., 0].copy(), top5


def _cache_file(cache_dir: Path, name: str, difficulty: int) -> Path:
    return cache_dir / f"imagenet_p_{dataset_name(name, difficulty)}.npz"


def _load_cache(path: Path, filenames: list[str], source: str) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or str(z["source"]) != source:
                return None
            if list(z["filenames"]) != filenames:
                return None
            return z["top5"]
    except (OSError, KeyError, ValueError):
        return None


def _save_cache(path: Path, top5: np.ndarray, filenames: list[str], source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(
        buf,
        version=CACHE_VERSION,
        top5=top5,
        filenames=np.array(filenames),
        source=np.array(source),
    )
    with atomic_writer(path) as f:
        f.write(buf.getvalue())


def evaluate_imagenet_p(
    model: torch.nn.Module,
    root: str | os.PathLike,
    *,
    perturbations: Sequence[str] | str | None = None,
    difficulties: Sequence[int] | None = (1,),
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    batch_size: int = 256,
    workers: int = 0,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    resize_policy: str = DEFAULT_RESIZE_POLICY,
    progress: bool = True,
) -> dict[tuple[str, int], dict]:
    """FP and T5D of ``model`` on every selected (perturbation, difficulty) under ``root``.

    Args:
        model: a classifier returning (N, 1000) logits; its ``preprocessing`` attribute (if any)
            gives mean/std/channel order and input size, else ImageNet mean/std at 224.
        root: an ImageNet-P folder holding our HDF5 files and/or the released MP4 tree
            (see :func:`robustbench_assemble.datasets.imagenet_p.open_imagenet_p`).
        perturbations: names, 'all', 'test', 'validation' or None (all 14).
        difficulties: 1..3 (default (1,), the published protocol); noise difficulties are other
            datasets (``<name>_2``), others are frame strides over the same videos.
        device, precision: where and how to run the model ('fp32', 'fp16', 'bf16' autocast).
        batch_size: frames per forward pass (whole videos per batch, at least one).
        workers: DataLoader worker processes reading/decoding videos.
        limit: evaluate only the first N videos of the class-interleaved subset
            (:func:`robustbench_assemble.datasets.imagenet.select_subset`).
        cache_dir: where per-dataset top-5 predictions are cached (atomic ``.npz`` files, one
            per ``<name>[_d]``); a rerun reuses a cache whose video list and source match, so an
            interrupted evaluation resumes at the first unfinished dataset. Use one folder per
            model and settings (the cache does not record the model).
        classes: label order of an MP4 tree (HDF5 files carry their own).
        resize_policy: see :data:`robustbench_assemble.models.transforms.RESIZE_POLICIES`.

    Returns:
        ``{(perturbation, difficulty): {"flip_probability": FP, "top5_distance": T5D,
        "n_videos": n, "frames_per_video": T, "source": path, "codec": what the frames went
        through (:mod:`robustbench_assemble.perturbations.codec`)}}``; FP and T5D are raw (fractions
        and mean rank distance), not yet divided by AlexNet's.
    """
    names = resolve_names(perturbations)
    diffs = resolve_difficulties(difficulties)
    cache = Path(cache_dir) if cache_dir is not None else None
    results: dict[tuple[str, int], dict] = {}
    plan = []
    for name in names:
        by_source: dict[int, list[int]] = {}
        for d in diffs:
            by_source.setdefault(source_difficulty(name, d), []).append(d)
        for src_d, scored in by_source.items():
            # every dataset is opened before the first is evaluated: a missing one (say
            # gaussian_noise_3) is an error now, not after minutes of evaluating the others
            plan.append((name, src_d, scored, open_imagenet_p(root, name, src_d, classes=classes)))
    for name, src_d, scored, dataset in plan:
        samples = [Sample(f, Path(f), label) for f, label in zip(dataset.filenames, dataset.labels)]
        chosen = {s.relpath for s in select_subset(samples, limit)}
        indices = [i for i, f in enumerate(dataset.filenames) if f in chosen]
        filenames = [dataset.filenames[i] for i in indices]
        where = str(getattr(dataset, "path", None) or dataset.folder)
        source = f"{where}|{dataset.fingerprint}"  # a regenerated file is not its cache
        cache_file = _cache_file(cache, name, src_d) if cache is not None else None
        top5 = _load_cache(cache_file, filenames, source) if cache_file else None
        if top5 is None:
            _, top5 = predict_videos(
                model,
                dataset,
                indices,
                device=device,
                precision=precision,
                batch_size=batch_size,
                workers=workers,
                resize_policy=resize_policy,
                progress=progress,
                desc=dataset_name(name, src_d),
            )
            if cache_file is not None:
                _save_cache(cache_file, top5, filenames, source)
        getattr(dataset, "close", lambda: None)()  # this process's file handle, if opened
        for d in scored:
            stride = 1 if is_noise(name) else d
            results[(name, d)] = {
                "flip_probability": flip_probability(top5[..., 0], name, stride),
                "top5_distance": top5_distance(top5, name, stride),
                "n_videos": len(indices),
                "frames_per_video": int(top5.shape[1]),
                "source": where,
                "codec": dataset.codec,
                "origin": dataset.origin,
            }
    return results
