"""Index an ImageNet val folder (``<wnid>/<file>``) and select the evaluation subset.

Class indices follow torchvision's ``ImageFolder``: the sorted wnid folder names, so index i is
the i-th class of every ImageNet-1k model. The same indexing reads the per-cell folders of
ImageNet-C (:mod:`robustbench_assemble.datasets.imagenet_c`), and :func:`select_subset` is the
one definition of ``--limit`` shared by the generator and the evaluation, so a limited
ImageNet-C and a limited clean evaluation see the same photos (matched by relative path).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ..images import IMAGE_EXTENSIONS, ImageReadError, load_rgb, resize_center_crop


@dataclass(frozen=True)
class Sample:
    """One image: ``relpath`` is ``<wnid>/<file>`` (POSIX separators), ``label`` its class index."""

    relpath: str
    path: Path
    label: int

    @property
    def wnid(self) -> str:
        return self.relpath.split("/", 1)[0]


def is_image_file(name: str) -> bool:
    """An accepted image name: a known extension (case-insensitive) and not hidden.

    Hidden files are skipped (unlike ImageFolder) so that macOS ``._x.JPEG`` resource forks and
    temporary files of an interrupted writer are never read as images.
    """
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def find_classes(root: str | os.PathLike) -> list[str]:
    """The sorted class folder names (wnids) under ``root``; clear errors for a wrong folder."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder; expected a folder of <wnid>/ folders")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise FileNotFoundError(
            f"no class folders in {root}; expected the ImageNet val layout <wnid>/<file>.JPEG "
            "(reorganise a flat val folder into one folder per class first)"
        )
    return classes


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class wnids in sorted order: class index i of every ImageNet model
    (torchvision's and timm's label order; the list equals timm's ``imagenet_synsets.txt``)."""
    text = resources.files(__package__).joinpath("imagenet_wnids.txt").read_text()
    wnids = tuple(text.split())
    assert len(wnids) == 1000 and list(wnids) == sorted(set(wnids)), "corrupt wnid list"
    return wnids


def class_order(present: Sequence[str], num_classes: int | None = None) -> list[str]:
    """The label order for the class folders ``present``.

    Why: a folder holding only some ImageNet classes (a quick subset) must keep ImageNet's class
    indices, not number its own folders 0..K-1, or a 1000-class model scores ~0 silently. So:
    ImageNet-1k's 1000 sorted wnids when every folder is one of them and the model has 1000
    outputs (``num_classes`` 1000, or None: no model yet); else the folders' own sorted order
    (torchvision ``ImageFolder``'s rule, for other datasets), which must then give one folder per
    model output.
    """
    present = sorted(present)
    wnids = imagenet_wnids()
    if num_classes in (None, len(wnids)) and set(present) <= set(wnids):
        return list(wnids)
    if num_classes is not None and len(present) != num_classes:
        raise ValueError(
            f"{len(present)} class folders for a model with {num_classes} outputs, and they "
            f"are not all ImageNet-1k wnids (e.g. {present[0]!r}): class indices cannot be "
            "inferred; give a folder with one class folder per model output"
        )
    return present


def index_folder(
    root: str | os.PathLike, classes: Sequence[str] | None = None
) -> tuple[list[str], list[Sample]]:
    """Index ``root/<wnid>/...`` -> (classes, samples sorted by relative path).

    ``classes`` fixes the label order (e.g. the clean val set's 1000 wnids, so that an
    ImageNet-C folder holding only some classes still gets the model's labels); by default
    it is :func:`class_order` of the folders present (ImageNet-1k's order when they are
    ImageNet wnids, even a few of them). Files are found recursively, as ImageFolder does.
    A class folder without images, or a folder that is not in ``classes``, is an error naming it.
    """
    root = Path(root)
    present = find_classes(root)
    if classes is None:
        classes = class_order(present)
    else:
        classes = list(classes)
        index = set(classes)
        unknown = [c for c in present if c not in index]
        if unknown:
            raise ValueError(
                f"{root} has class folder(s) not in the given class list: "
                f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} "
                f"({len(classes)} classes expected)"
            )
    label_of = {c: i for i, c in enumerate(classes)}
    samples: list[Sample] = []
    for wnid in present:
        found = []
        for dirpath, dirnames, filenames in os.walk(root / wnid, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if is_image_file(name):
                    rel = Path(dirpath, name).relative_to(root).as_posix()
                    found.append(Sample(rel, root / rel, label_of[wnid]))
        if not found:
            raise FileNotFoundError(
                f"class folder {root / wnid} holds no image files "
                f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)})"
            )
        samples.extend(found)
    samples.sort(key=lambda s: s.relpath)
    return classes, samples


def interleave_classes(samples: Iterable[Sample]) -> list[Sample]:
    """Round-robin order: the first image of every class (sorted wnids), then every second...

    Within a class, images are taken in sorted relative-path order. Any prefix of this order is
    spread over as many classes as possible.
    """
    by_class: dict[str, list[Sample]] = {}
    for s in sorted(samples, key=lambda s: s.relpath):
        by_class.setdefault(s.wnid, []).append(s)
    queues = [by_class[w] for w in sorted(by_class)]
    out: list[Sample] = []
    depth = 0
    while queues:
        queues = [q for q in queues if len(q) > depth]
        out.extend(q[depth] for q in queues)
        depth += 1
    return out


def select_subset(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """The ``--limit`` subset: the first ``limit`` images of :func:`interleave_classes`.

    So ``--limit 1000`` on ImageNet val takes the first image (sorted file name) of each of the
    1000 classes, ``--limit 5000`` five per class, and a small limit covers many classes rather
    than the first class only. The result is sorted by relative path. ``None`` keeps everything;
    a limit above the number of images keeps everything too.
    """
    if limit is None:
        return sorted(samples, key=lambda s: s.relpath)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit (--limit) must be a positive integer or None, got {limit!r}")
    chosen = interleave_classes(samples)[:limit]
    return sorted(chosen, key=lambda s: s.relpath)


def fingerprint(samples: Iterable[Sample]) -> str:
    """A short stable hash (16 hex) of the relative paths and byte sizes of ``samples``.

    Results record it so a number can be traced to the exact files it was computed on;
    it does not depend on where the folder lives or on the order of ``samples``.
    """
    h = hashlib.sha256()
    for rel, size in sorted((s.relpath, s.path.stat().st_size) for s in samples):
        h.update(f"{rel}\t{size}\n".encode())
    return h.hexdigest()[:16]


def to_chw_tensor(array: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 array -> 3xHxW uint8 tensor (contiguous, owning its memory)."""
    if not array.flags.writeable:  # np.asarray(PIL image) is read-only; torch wants writable
        array = array.copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _batch_tensor(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised uint8 tensor; in shared memory on a DataLoader worker (as the default
    collate allocates), so sending it to the main process copies nothing."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


class SampleDataset(Dataset):
    """(uint8 3xHxW tensor, label) pairs over a list of :class:`Sample`; subclasses say how one
    file becomes an HxWx3 uint8 array (:meth:`image`). ``transform``, if given, is applied to
    the uint8 tensor (normalisation belongs to the evaluation harness)."""

    samples: list[Sample]
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def image(self, sample: Sample) -> np.ndarray:
        raise NotImplementedError

    def image_into(self, sample: Sample, out: np.ndarray) -> bool:
        """Decode ``sample`` straight into ``out`` (H x W x 3 uint8) if this dataset can and
        the image has that size; False: use :meth:`image`. Why: :meth:`batch` saves a copy."""
        return False

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = self.samples[index]
        x = to_chw_tensor(self.image(s))
        if self.transform is not None:
            x = self.transform(x)
        return x, s.label

    def batch(
        self, indices: Sequence[int], out: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Items ``indices`` as one uint8 N x H x W x 3 tensor (channels last) and the labels.

        Why: the evaluation loader's fast path. Images are decoded straight into the batch
        (:meth:`image_into`) or copied there once (in shared memory on a DataLoader worker,
        which is what crosses to the main process), with no per-image CHW transposition: the
        model runs channels_last anyway.
        ``out`` (a flat uint8 tensor, e.g. a reused shared-memory buffer) receives the batch
        when it is large enough (the result is then a view of it); otherwise a new tensor is
        allocated. None when a ``transform`` is set (it works on CHW tensors): use
        ``__getitem__`` then.
        """
        if self.transform is not None:
            return None
        samples = [self.samples[i] for i in indices]
        first = self.image(samples[0])
        if first.ndim != 3 or first.shape[2] != 3:
            raise ImageReadError(f"image {samples[0].path} decodes to {first.shape}, not H x W x 3")
        shape = (len(samples), *first.shape)
        size = int(np.prod(shape))
        if out is not None and out.dtype == torch.uint8 and out.numel() >= size:
            images = out.view(-1)[:size].view(shape)
        else:
            images = _batch_tensor(shape)
        rows = images.numpy()
        rows[0] = first
        for k, s in enumerate(samples[1:], 1):
            if self.image_into(s, rows[k]):
                continue
            a = self.image(s)
            if a.shape != first.shape:
                raise ImageReadError(
                    f"image {s.path} decodes to {a.shape[1]}x{a.shape[0]}, the batch's first "
                    f"image ({samples[0].path}) to {shape[2]}x{shape[1]}: one batch needs one "
                    "size (a cell holds frames of one size: 224x224 as released)"
                )
            rows[k] = a
        return images, torch.tensor([s.label for s in samples])

    def item_nbytes(self) -> int:
        """Bytes of one item as :meth:`batch` stores it (the first; 0 for an empty dataset or
        when :meth:`batch` does not apply). Why: the evaluation loader sizes its reused batch
        buffers with it (a larger item later falls back to a fresh buffer)."""
        if not self.samples or self.transform is not None:
            return 0
        return int(self.image(self.samples[0]).nbytes)

    @property
    def relpaths(self) -> list[str]:
        return [s.relpath for s in self.samples]

    def fingerprint(self) -> str:
        """:func:`fingerprint` of the selected files."""
        return fingerprint(self.samples)


class ImageNetVal(SampleDataset):
    """Clean ImageNet val images as (uint8 3xHxW tensor after Resize+CenterCrop, label).

    ``resize``/``crop`` default to the ImageNet-C protocol (256 -> 224); a model evaluated at
    another size (the assembled ResNets: 292 -> 256) passes its own. ``transform``, if given,
    is applied to the uint8 tensor (normalisation belongs to the evaluation harness).
    ``classes`` fixes the label order (default: the folder's sorted wnids); ``limit`` selects
    the :func:`select_subset` images.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        resize: int = 256,
        crop: int = 224,
        classes: Sequence[str] | None = None,
        limit: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        self.classes, all_samples = index_folder(self.root, classes)
        self.samples = select_subset(all_samples, limit)
        self.resize, self.crop, self.transform = resize, crop, transform

    def image(self, sample: Sample) -> np.ndarray:
        return resize_center_crop(load_rgb(sample.path), self.resize, self.crop)
