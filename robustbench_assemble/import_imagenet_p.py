"""Convert the released ImageNet-P MP4 tree into our HDF5 files.

    python -m robustbench_assemble.import_imagenet_p --src ImageNet-P/ --out perturbations/ \
        [--perturbations NAME ...] [--difficulties 1 2 3] [--workers N]

Reads ``<src>/<name>[_2|_3]/<wnid>/<stem>.mp4`` (Zenodo 3565846) with PyAV and writes
``<out>/<name>[_2|_3].h5`` in the :mod:`robustbench_assemble.perturbations.storage` format
(``source = "mp4"``, ``seed = -1``, filenames ``<wnid>/<stem>``). The decoded frames are stored
losslessly, so evaluating the HDF5 file equals evaluating the MP4 tree. Resumable like
make_imagenet_p (rerun the command; finished files are skipped, partial ones continued).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .atomic import OutputError, check_output_folder
from .datasets.imagenet_p import MP4Sequences, available_datasets, read_mp4
from .perturbations import resolve_difficulties, resolve_names
from .perturbations.codec import RELEASED_CODEC
from .perturbations.params import num_frames
from .perturbations.storage import (
    SequenceWriter,
    encode_chunk,
    existing_complete,
    h5_path,
    producer_pool,
    write_sequences,
)


def decode(job: tuple[int, str, int]) -> tuple[int, bytes]:
    """Worker: decode one MP4 and deflate it; the frame count must match the perturbation."""
    index, path, frames = job
    video = read_mp4(path)
    if video.shape != (frames, 224, 224, 3):
        raise ValueError(f"{path}: expected {frames} frames of 224x224x3, got {video.shape}")
    return index, encode_chunk(video)


def import_tree(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    perturbations: Sequence[str] | str | None = None,
    difficulties: Sequence[int] | None = None,
    workers: int = 0,
    progress: bool = True,
) -> list[Path]:
    """Import every selected MP4 dataset under ``src``; returns the HDF5 paths."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise FileNotFoundError(f"--src {src}: folder does not exist")
    check_output_folder(out)  # inside --src is fine: the reader finds <name>.h5 beside the MP4s
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    names = set(resolve_names(perturbations))
    diffs = set(resolve_difficulties(difficulties))
    found = [(n, d) for n, d, kind in available_datasets(src) if kind == "mp4"]
    chosen = [(n, d) for n, d in found if n in names and d in diffs]
    if not chosen:
        raise FileNotFoundError(
            f"no selected ImageNet-P MP4 folders under {src} (found: "
            f"{', '.join(f'{n}:{d}' for n, d in found) or 'none'}); expected "
            "<src>/<perturbation>[_2|_3]/<wnid>/<name>.mp4"
        )
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with producer_pool(workers) as pool:
        for name, d in chosen:
            path = h5_path(out, name, d)
            settings = {"source": "mp4", "seed": -1, "codec": RELEASED_CODEC}
            videos = MP4Sequences(src / path.stem)
            if existing_complete(path, settings, videos.filenames):
                written.append(path)
                continue
            writer = SequenceWriter(
                path,
                perturbation=name,
                difficulty=d,
                filenames=videos.filenames,
                labels=videos.labels,
                classes=videos.classes,
                seed=None,
                source="mp4",
                codec=RELEASED_CODEC,
            )
            t = num_frames(name)
            jobs = [(i, str(videos.paths[i]), t) for i in writer.todo]
            results = map(decode, jobs) if pool is None else pool.imap_unordered(decode, jobs)
            written.append(
                write_sequences(writer, results, total=len(videos), unit="video", progress=progress)
            )
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustbench_assemble.import_imagenet_p",
        description="Convert the released ImageNet-P MP4 files into HDF5.",
    )
    p.add_argument("--src", required=True, help="the extracted ImageNet-P folder (MP4 tree)")
    p.add_argument(
        "--out",
        default="perturbations",
        help="output folder for <perturbation>[_d].h5 (default: ./perturbations)",
    )
    p.add_argument(
        "--perturbations",
        nargs="+",
        default=["all"],
        help="names (space- or comma-separated) or all/test/validation (default: all)",
    )
    p.add_argument(
        "--difficulties",
        nargs="+",
        default=["1", "2", "3"],
        help="difficulties to import, space- or comma-separated (default: 1 2 3; noise "
        "difficulties 2 and 3 are their own <name>_2 / <name>_3 datasets, the other "
        "perturbations have difficulty 1 only)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="decoder processes (default: all CPU cores)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = import_tree(
            args.src,
            args.out,
            perturbations=args.perturbations,  # comma lists too: resolve_names splits them
            difficulties=args.difficulties,
            workers=args.workers,
            progress=not args.no_progress,
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
