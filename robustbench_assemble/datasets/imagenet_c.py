"""Read ImageNet-C trees: find a (corruption, severity) cell and serve its images (224x224 as
released; other square sizes, e.g. assembled-cnn's 256, as they are).

Two layouts are accepted under one ``root``:

- as written by ``make_imagenet_c`` (and the reference ``make_imagenet_c.py``):
  ``<root>/<corruption>/<severity>/<wnid>/<file>.JPEG``;
- as the released tars (Zenodo 2235448) extract, with a category level:
  ``<root>/<category>/<corruption>/<severity>/<wnid>/<file>.JPEG``, categories noise, blur,
  weather, digital, extra (:data:`~robustbench_assemble.corruptions.params.CATEGORIES`).

The files are decoded as they are: no resize and no crop. The reference evaluates the 224x224
JPEGs with ToTensor + Normalize only; resizing them again changes the results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from ..corruptions.params import CATEGORIES, CORRUPTIONS, SEVERITIES, check_name, check_severity
from ..images import fast_jpeg_rgb, load_rgb
from .imagenet import Sample, SampleDataset, index_folder, select_subset

JPEG_SUFFIXES = (".jpeg", ".jpg")


def corrupted_relpath(relpath: str) -> str:
    """Relative path of the ImageNet-C file made from the val image ``relpath``.

    The source name is kept (``n01440764/ILSVRC2012_val_00000293.JPEG``), as in the released
    data; a source that is not a JPEG by name (``x.png``) gets ``.JPEG`` appended
    (``x.png.JPEG``), because the file holds JPEG bytes. ImageNet val is all ``.JPEG``.
    """
    p = PurePosixPath(relpath)
    return relpath if p.suffix.lower() in JPEG_SUFFIXES else f"{relpath}.JPEG"


def cell_candidates(root: str | os.PathLike, corruption: str, severity: int) -> list[Path]:
    """The folders a cell may live in: our layout first, then the released one."""
    root = Path(root)
    check_name(corruption)
    severity = check_severity(severity)
    return [
        root / corruption / str(severity),
        root / CATEGORIES[corruption] / corruption / str(severity),
    ]


def find_cell(root: str | os.PathLike, corruption: str, severity: int) -> Path:
    """The folder of one (corruption, severity) cell under ``root``, in either layout.

    Raises FileNotFoundError naming the folders tried (and the severities that do exist for
    that corruption, if any), or ValueError if both layouts hold the cell (ambiguous).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet-C folder {root} does not exist")
    candidates = cell_candidates(root, corruption, severity)
    found = [c for c in candidates if c.is_dir()]
    if len(found) == 2:
        raise ValueError(
            f"{corruption} severity {severity} exists twice under {root}: {found[0]} and "
            f"{found[1]}; keep one layout"
        )
    if found:
        return found[0]
    present = available_cells(root).get(corruption, ())
    hint = (
        f"; {corruption} has severities {', '.join(map(str, present))} only"
        if present
        else f"; {corruption} is absent altogether"
    )
    raise FileNotFoundError(
        f"{corruption} severity {severity} not found under {root}: tried "
        f"{candidates[0]} and {candidates[1]}{hint} "
        "(generate it with python -m robustbench_assemble.make_imagenet_c)"
    )


def frame_size(cell: str | os.PathLike) -> int:
    """Side of the square frames in a cell folder, read from one file's header (224 for the
    released data; 256 for clovaai/assembled-cnn's ``validation_292_256``). ValueError for an
    empty cell or frames that are not square."""
    cell = Path(cell)
    for wnid in sorted(d for d in cell.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for f in sorted(wnid.iterdir()):
            if f.suffix.lower() in JPEG_SUFFIXES and not f.name.startswith("."):
                try:
                    with Image.open(f) as im:
                        width, height = im.size
                except (OSError, SyntaxError) as exc:
                    raise ValueError(f"{f}: cannot read image ({exc})") from exc
                if width != height:
                    raise ValueError(f"{f}: ImageNet-C frames are square, this is {width}x{height}")
                return width
    raise ValueError(f"{cell}: no JPEG files in its class folders")


def available_cells(root: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Corruption -> severities present under ``root`` (either layout), in reference order."""
    root = Path(root)
    out: dict[str, tuple[int, ...]] = {}
    for name in CORRUPTIONS:
        sev = tuple(
            s for s in SEVERITIES if any(c.is_dir() for c in cell_candidates(root, name, s))
        )
        if sev:
            out[name] = sev
    return out


def index_cell(
    root: str | os.PathLike,
    corruption: str,
    severity: int,
    classes: Sequence[str],
    *,
    limit: int | None = None,
    relpaths: Sequence[str] | None = None,
) -> tuple[Path, list[Sample]]:
    """(cell folder, its samples) with labels from ``classes``; optionally a subset.

    ``relpaths`` are the *clean* val relative paths to keep (e.g. the clean evaluation's
    :func:`select_subset`), matched through :func:`corrupted_relpath`; every one must be in the
    cell. Otherwise ``limit`` applies :func:`select_subset` to the cell's own files, which
    picks the same images as on a clean val folder holding the same files.
    """
    cell = find_cell(root, corruption, severity)
    _, samples = index_folder(cell, classes)
    if relpaths is not None:
        if limit is not None:
            raise ValueError("give either relpaths or limit, not both")
        by_rel = {s.relpath: s for s in samples}
        wanted = [corrupted_relpath(r) for r in relpaths]
        missing = [r for r in wanted if r not in by_rel]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(wanted)} requested images are missing from {cell}, "
                f"e.g. {', '.join(missing[:3])} (was it generated with a smaller --limit?)"
            )
        samples = sorted((by_rel[r] for r in wanted), key=lambda s: s.relpath)
    else:
        samples = select_subset(samples, limit)
    return cell, samples


class ImageNetC(SampleDataset):
    """One (corruption, severity) cell as (uint8 3xSxS tensor, label) pairs, not resized (S =
    224 as released).

    ``classes`` is the model's class order (normally :func:`~.imagenet.find_classes` of the
    clean val folder), so labels line up even if the cell holds only some classes.
    ``transform``, if given, is applied to the uint8 tensor.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        corruption: str,
        severity: int,
        classes: Sequence[str],
        *,
        limit: int | None = None,
        relpaths: Sequence[str] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        self.corruption, self.severity = corruption, int(severity)
        self.classes = list(classes)
        self.cell, self.samples = index_cell(
            root, corruption, severity, self.classes, limit=limit, relpaths=relpaths
        )
        self.transform = transform

    #: Decode YCbCr JPEGs with :func:`~..images.fast_jpeg_rgb` (same pixels as PIL, faster);
    #: False: PIL only (the baseline of benchmarks/eval_throughput.py).
    fast_jpeg: bool = True

    def image(self, sample: Sample) -> np.ndarray:  # frames as stored: no resize
        fast = fast_jpeg_rgb(sample.path) if self.fast_jpeg else None
        return fast if fast is not None else np.asarray(load_rgb(sample.path), dtype=np.uint8)

    def image_into(self, sample: Sample, out: np.ndarray) -> bool:
        return self.fast_jpeg and fast_jpeg_rgb(sample.path, out) is not None
