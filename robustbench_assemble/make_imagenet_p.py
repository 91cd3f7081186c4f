"""Generate ImageNet-P from an ImageNet val folder into HDF5 (one file per dataset).

    python -m robustbench_assemble.make_imagenet_p --src VAL_DIR --out perturbations/ \
        [--perturbations NAME ...] [--difficulties 1 2 3] [--seed 0] [--workers N] [--limit N] \
        [--device cpu|cuda] [--batch-size 16] [--codec x264|none]

Each val image becomes one sequence per (perturbation, difficulty) with
:func:`robustbench_assemble.perturbations.make_sequence`; the files follow
:mod:`robustbench_assemble.perturbations.storage`. Non-noise perturbations have a single
sequence for every difficulty (the difficulty is a frame stride at evaluation time), so their
difficulties 2 and 3 map to the one ``<name>.h5``, as the release has no ``rotate_2`` folder.

Stored as released: by default every sequence goes through the release's video compression
(ffmpeg libx264 with the reference's settings) and is stored as decoded, because AlexNet's
published flip probabilities were measured on those frames and the codec moves FP (noise:
-20 to -40 %, docs/FIDELITY.md; :mod:`robustbench_assemble.perturbations.codec`; the HDF5
attribute ``codec`` records it). ``--codec none`` stores the lossless frames (faster; the
evaluation then notes that its mFR is not comparable to the published AlexNet baseline).

Deterministic: the random draws of a sequence depend only on ``--seed``, the image's relative
path, the perturbation and the difficulty (not on worker count or order). Resumable: rerun the
same command after an interruption; finished files are skipped, a partial one is continued.
Parallel: ``--workers`` processes compute and compress sequences, this process writes them.

``--device cuda`` computes the perturbations that have a torch path (noise, brightness and
the warps: ``TORCH_PERTURBATIONS``) on the GPU, ``--batch-size`` images per call; the others
still run the CPU generator in the workers. CUDA frames are deterministic per seed on a given
GPU stack but are not the CPU's: noise comes from ``torch.Generator`` instead of numpy (other
draws, same distributions) and the warps are float ``grid_sample`` emulations of PIL / OpenCV
(<= 1 gray level on < 2 % of pixels, docs/FIDELITY.md). The HDF5 attribute ``generator``
records which was used, and a partial file is only continued by the same one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .atomic import OutputError, check_output_folder, check_outside
from .datasets.imagenet import index_folder, select_subset
from .images import load_rgb
from .perturbations import make_sequence, resolve_difficulties, resolve_names, sequence_seed
from .perturbations.codec import CODEC_ATTRS, CODECS, apply_codec, check_codec, ffmpeg_executable
from .perturbations.params import source_difficulty
from .perturbations.storage import (
    SequenceWriter,
    encode_chunk,
    existing_complete,
    h5_path,
    producer_pool,
    write_sequences,
)

#: index, path, relpath, perturbation, difficulty, seed, codec
Job = tuple[int, str, str, str, int, int, str]

#: ``generator`` attribute of files written by the CPU generator (2: exact-distribution noise
#: sampler and compiled kernels; files of the earlier noise stream are not continued).
CPU_GENERATOR = "numpy-2"
CUDA_GENERATOR = "torch-cuda"
DEVICES = ("cpu", "cuda")


def produce(job: Job) -> tuple[int, bytes]:
    """Worker: one sequence, deflated for ``write_direct_chunk``."""
    index, path, relpath, name, difficulty, seed, codec = job
    frames = make_sequence(
        load_rgb(path), name, difficulty, seed=sequence_seed(seed, relpath, name, difficulty)
    )
    return index, encode_chunk(apply_codec(frames, name, codec))


def _init_worker() -> None:
    """One process per core: no nested thread pools (make_sequence splits its frames over
    ``torch.get_num_threads()`` threads, and tilt sets OpenCV's pool to as many)."""
    import cv2
    import torch  # already imported by the package: OMP_NUM_THREADS would be too late

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def dataset_jobs(names: Sequence[str], difficulties: Sequence[int]) -> list[tuple[str, int]]:
    """The distinct (perturbation, source difficulty) files to write, in a stable order."""
    out: list[tuple[str, int]] = []
    for name in names:
        for d in difficulties:
            key = (name, source_difficulty(name, d))
            if key not in out:
                out.append(key)
    return out


def _results(jobs: list[Job], pool) -> Iterator[tuple[int, bytes]]:
    if pool is None:
        yield from map(produce, jobs)
    else:
        yield from pool.imap_unordered(produce, jobs, chunksize=1)


def _load(job: Job):
    """Worker: decode one photo (the CUDA path computes, the workers decode and compress)."""
    return load_rgb(job[1])


def _encode(item: tuple[int, object, str, str]) -> tuple[int, bytes]:
    """Worker: (index, frames, perturbation, codec) -> the stored chunk."""
    index, frames, name, codec = item
    return index, encode_chunk(apply_codec(frames, name, codec))


def _cuda_results(
    jobs: list[Job], pool, batch_size: int, device: str
) -> Iterator[tuple[int, bytes]]:
    """Batches of ``batch_size`` images through ``make_sequence_batch`` on ``device``."""
    from .perturbations.torch_backend import make_sequence_batch

    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        images = list(map(_load, batch)) if pool is None else pool.map(_load, batch)
        _, _, _, name, difficulty, seed, codec = batch[0]
        seeds = [sequence_seed(seed, job[2], name, difficulty) for job in batch]
        frames = make_sequence_batch(images, name, difficulty, seeds, device=device).cpu().numpy()
        items = [(job[0], frames[k], name, codec) for k, job in enumerate(batch)]
        yield from map(_encode, items) if pool is None else pool.imap(_encode, items)


def check_device(device: str) -> str:
    """``'cpu'`` or ``'cuda'`` (``'cuda:N'`` too); cuda must be available."""
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    return device


def generate(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    perturbations: Sequence[str] | str | None = None,
    difficulties: Sequence[int] | None = None,
    seed: int = 0,
    workers: int = 0,
    limit: int | None = None,
    progress: bool = True,
    device: str = "cpu",
    batch_size: int = 16,
    codec: str = "x264",
) -> list[Path]:
    """Write (or finish) the HDF5 files; returns their paths. ``workers=0`` runs in-process.

    ``device='cuda'``: perturbations with a torch path are computed on the GPU in batches of
    ``batch_size`` images (see the module docstring for how those frames differ).
    ``codec``: ``"x264"`` stores every sequence as the release's MP4 decodes (see
    :mod:`robustbench_assemble.perturbations.codec`), ``"none"`` the lossless frames.
    """
    check_codec(codec)
    if codec != "none":
        ffmpeg_executable()  # fail before any work if ffmpeg is missing
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative int, got {seed!r}")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive int, got {batch_size!r}")
    device = check_device(device)
    torch_names: tuple[str, ...] = ()
    if device != "cpu":
        from .perturbations.torch_backend import TORCH_PERTURBATIONS

        torch_names = TORCH_PERTURBATIONS
    names = resolve_names(perturbations)
    diffs = resolve_difficulties(difficulties)
    check_output_folder(out)
    check_outside(out, src)
    classes, samples = index_folder(src)
    samples = select_subset(samples, limit)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    filenames = [s.relpath for s in samples]
    with producer_pool(workers, _init_worker) as pool:
        for name, d in dataset_jobs(names, diffs):
            on_gpu = name in torch_names
            path = h5_path(out, name, d)
            settings = {
                "seed": seed,
                "generator": CUDA_GENERATOR if on_gpu else CPU_GENERATOR,
                "codec": CODEC_ATTRS[codec],
            }
            if existing_complete(path, settings, filenames):
                written.append(path)
                continue
            writer = SequenceWriter(
                path,
                perturbation=name,
                difficulty=d,
                filenames=filenames,
                labels=[s.label for s in samples],
                classes=classes,
                **settings,
            )
            jobs = [
                (i, str(samples[i].path), samples[i].relpath, name, d, seed, codec)
                for i in writer.todo
            ]
            results = (
                _cuda_results(jobs, pool, batch_size, device) if on_gpu else _results(jobs, pool)
            )
            written.append(
                write_sequences(writer, results, total=len(samples), unit="seq", progress=progress)
            )
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustbench_assemble.make_imagenet_p",
        description="Generate ImageNet-P sequences from an ImageNet val folder into HDF5.",
    )
    p.add_argument("--src", required=True, help="val folder laid out as <wnid>/<file>.JPEG")
    p.add_argument(
        "--out",
        default="perturbations",
        help="output folder for <perturbation>[_d].h5 (default: ./perturbations)",
    )
    p.add_argument(
        "--perturbations",
        nargs="+",
        default=["all"],
        help="names (space- or comma-separated), or 'all' / 'test' / 'validation' (default: "
        "all 14)",
    )
    p.add_argument(
        "--difficulties",
        nargs="+",
        default=["1", "2", "3"],
        help="1..3, space- or comma-separated (default: 1 2 3, as released: the noise "
        "perturbations get one file per difficulty, <name>.h5, <name>_2.h5, <name>_3.h5; the "
        "others one file that every difficulty reads with its own frame stride)",
    )
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="producer processes (0: none; default: all CPU cores)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="first N images of the class-interleaved subset"
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu (default) or cuda: GPU for the perturbations with a torch path",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="images per GPU call with --device cuda (default 16)",
    )
    p.add_argument(
        "--codec",
        default="x264",
        choices=CODECS,
        help="x264 (default): store each sequence as the released MP4 decodes (ffmpeg libx264 "
        "with the release's settings, then decoded), as AlexNet's published flip "
        "probabilities were measured; none: lossless frames (faster, not the release)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = generate(
            args.src,
            args.out,
            perturbations=args.perturbations,  # comma lists too: resolve_names splits them
            difficulties=args.difficulties,
            seed=args.seed,
            workers=args.workers,
            limit=args.limit,
            progress=not args.no_progress,
            device=args.device,
            batch_size=args.batch_size,
            codec=args.codec,
        )
    except (ValueError, FileNotFoundError, NotADirectoryError, RuntimeError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
