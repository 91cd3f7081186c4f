"""Where cell images come from: ImageNet-C files, on-the-fly corruption or the smoke sample.

A *source* turns a :class:`~.cache.Cell` into :class:`CellData`: a Dataset of (uint8 3xHxW
tensor, label) decoded on CPU workers, an optional device-side transform (on-the-fly
corruption) and a fingerprint of the data the numbers depend on (part of the cache key).

- ``files``: the 224x224 JPEGs of an ImageNet-C tree (generated or released layout), decoded
  as they are (no resize, no crop: the reference evaluates them with ToTensor + Normalize);
  clean images from the val folder with the model's Resize + CenterCrop.
- ``on-the-fly``: each val image -> Resize(256) + CenterCrop(224) on a worker, then
  ``corrupt_batch`` on the evaluation device, then (by default) a JPEG save and reload at
  quality 85 in memory (``jpeg_round_trip``), as the released files were saved: on the CPU
  deterministic corruptions then give the generator's files exactly (``corrupt_batch`` is
  bit-identical there; on a GPU within a level before the save); random ones draw other noise
  (torch's generator, per batch), with the reference's distributions. Without the save (``none``)
  cells move by several points (docs/BENCHMARKS.md).
- ``smoke``: the embedded five-photo sample of :mod:`.smoke`, corrupted on the fly.

With ``--limit N`` every cell (clean included) uses the same :func:`select_subset` images.

``--decode gpu`` (files source, ImageNet-C cells only): workers read the JPEG bytes and the
main process decodes each batch with nvjpeg (:class:`JpegDecoder`). Default ``cpu`` decodes
with PIL, the reference's decoder; nvjpeg's pixels differ (H100: 30 % of values, mean 0.6
levels, max 51; docs/BENCHMARKS.md), so ``decode`` is part of the cache key. Clean images
keep PIL (their Resize + CenterCrop on PIL images is the protocol).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..datasets.imagenet import (
    Sample,
    class_order,
    find_classes,
    fingerprint,
    index_folder,
    select_subset,
)
from ..datasets.imagenet_c import (
    ImageNetC,
    available_cells,
    cell_candidates,
    find_cell,
    frame_size,
)
from ..images import (
    JPEG_QUALITY,
    RELEASED_FRAMES,
    ImageReadError,
    frame_record,
    load_rgb,
    resize_center_crop,
)
from .cache import Cell
from .loop import BatchDecoder, DeviceTransform
from .smoke import SMOKE_DESCRIPTION, load_smoke_sample, smoke_fingerprint

SOURCES = ("files", "on-the-fly")
#: JPEG decoders of the ImageNet-C files: PIL on CPU workers, or nvjpeg on the CUDA device.
DECODERS = ("cpu", "gpu")

#: PIL image -> uint8 3xHxW tensor at the model's input size (its clean preprocessing).
CleanTransform = Callable[[Image.Image], torch.Tensor]


@dataclass
class CellData:
    """What the loop needs for one cell."""

    dataset: Dataset
    fingerprint: str
    device_transform: DeviceTransform | None = None
    #: True for 224x224 ImageNet-C frames (the resize policy applies), False for clean images
    #: already at the model's input size.
    frames: bool = True
    extra_key: dict = field(default_factory=dict)
    #: decodes batches in the main process (``--decode gpu``); None: workers decode (PIL).
    decoder: BatchDecoder | None = None
    #: the decoder that produced the pixels (cache key: nvjpeg's pixels are not PIL's).
    decode: str = "cpu"


#: (resize, crop, rounding) of the frames ImageNet-C corrupts: Resize(256) + CenterCrop(224)
#: with torchvision's rounding (``images.GEOMETRIES``).
FrameGeometry = tuple[int, int, str]
FRAME_GEOMETRY: FrameGeometry = (
    RELEASED_FRAMES["resize"],
    RELEASED_FRAMES["crop"],
    RELEASED_FRAMES["geometry"],
)


def generator_frames(cell: Path) -> dict | None:
    """The frame geometry make_imagenet_c recorded for a cell folder
    (``<corruption>/<severity>.json``, key ``frames``; records older than that key are the
    default 256/224 torchvision frames), or None for files without a record (released data)."""
    record = cell.parent / f"{cell.name}.json"
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{record}: unreadable generator record ({exc})") from None
    return data.get("frames", RELEASED_FRAMES) if isinstance(data, dict) else None


def frame_tensor(image: Image.Image, geometry: FrameGeometry = FRAME_GEOMETRY) -> torch.Tensor:
    """RGB PIL image -> Resize + CenterCrop (default 256/224, the generator's input) -> uint8."""
    return (
        torch.from_numpy(resize_center_crop(image, *geometry).copy()).permute(2, 0, 1).contiguous()
    )


class CleanFiles(Dataset):
    """Val images with the model's clean preprocessing, as uint8 tensors (decoded on workers)."""

    def __init__(self, samples: Sequence[Sample], transform: CleanTransform) -> None:
        self.samples, self.transform = list(samples), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = self.samples[index]
        return self.transform(load_rgb(s.path)), s.label


class FrameFiles(Dataset):
    """Val images as the uint8 frames ImageNet-C corrupts (for on-the-fly corruption):
    Resize(256) + CenterCrop(224), or the model's own sizes under resize policy ``native``."""

    def __init__(self, samples: Sequence[Sample], geometry: FrameGeometry = FRAME_GEOMETRY) -> None:
        self.samples, self.geometry = list(samples), geometry

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = self.samples[index]
        return frame_tensor(load_rgb(s.path), self.geometry), s.label


class InMemory(Dataset):
    """A few (tensor, label) pairs held in memory (the smoke sample)."""

    def __init__(self, items: Sequence[tuple[torch.Tensor, int]]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.items[index]


def read_jpeg_bytes(path: str | os.PathLike) -> torch.Tensor:
    """The bytes of a file as a 1-D uint8 tensor (what nvjpeg decodes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


class JpegBytes(Dataset):
    """The files of ``samples`` as (compressed bytes, label): workers only read the file."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = self.samples[index]
        return read_jpeg_bytes(s.path), s.label


def _decode_jpegs(chunks: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """torchvision's decode_jpeg to RGB (batched nvjpeg on CUDA; libjpeg-turbo on CPU)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision >= 0.29 marks its decoders deprecated
        return decode_jpeg(chunks, mode=ImageReadMode.RGB, device=device)


class JpegDecoder:
    """Batches of JPEG bytes -> one uint8 NCHW batch decoded on ``device`` (``--decode gpu``).

    A worker concatenates a batch's files into one uint8 tensor + lengths (one shared-memory
    block, ~10x smaller than the decoded pixels); the main process splits it into views and
    decodes them all in one call (batched nvjpeg on CUDA). A file that fails is named.
    """

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.paths = [s.path for s in samples]

    def collate(
        self, items: list[tuple[torch.Tensor, int, int]]
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
        data, labels, indices = zip(*items, strict=True)
        lengths = torch.tensor([d.numel() for d in data], dtype=torch.int64)
        return (torch.cat(data), lengths), torch.tensor(labels), torch.tensor(indices)

    def decode(
        self,
        payload: tuple[torch.Tensor, torch.Tensor],
        indices: torch.Tensor,
        device: torch.device,
    ) -> torch.Tensor:
        data, lengths = payload
        chunks = list(torch.split(data, lengths.tolist()))
        try:
            images = _decode_jpegs(chunks, device)
        except RuntimeError:
            self._raise_for_bad_file(chunks, indices, device)
            raise
        shape = images[0].shape
        for image, i in zip(images, indices.tolist(), strict=True):
            if image.shape != shape:
                raise ImageReadError(
                    f"image {self.paths[i]} decodes to {tuple(image.shape)}, the batch's first "
                    f"image to {tuple(shape)}: ImageNet-C frames must all have one size"
                )
        return torch.stack(images)

    def _raise_for_bad_file(
        self, chunks: list[torch.Tensor], indices: torch.Tensor, device: torch.device
    ) -> None:
        """Decode one by one to name the file that made the batch fail."""
        for chunk, i in zip(chunks, indices.tolist(), strict=True):
            try:
                _decode_jpegs([chunk], device)
            except RuntimeError as exc:
                raise ImageReadError(
                    f"cannot read image {self.paths[i]} with decode_jpeg on {device.type} "
                    f"(--decode gpu): {str(exc).splitlines()[0]}; --decode cpu uses PIL"
                ) from exc


def check_gpu_decode(device: torch.device) -> None:
    """Fail fast (clear ValueError) if ``--decode gpu`` cannot run on ``device``."""
    if device.type != "cuda":
        raise ValueError(
            f"--decode gpu decodes JPEGs with nvjpeg on a CUDA device; the device is {device} "
            "(use --decode cpu)"
        )
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 30, 200)).save(buf, "JPEG", quality=85)
    try:
        _decode_jpegs([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)], device)
    except RuntimeError as exc:
        raise ValueError(
            f"--decode gpu: torchvision cannot decode JPEGs on {device} "
            f"({str(exc).splitlines()[0]}); use --decode cpu"
        ) from exc


def batch_seed(seed: int, cell: Cell, first_index: int) -> int:
    """Seed of the generator that corrupts one batch: (seed, corruption, severity, first index).

    On-the-fly random corruptions therefore depend on the seed, the device type (CPU and CUDA
    generators differ), the batch size and the number of processes; all are in the cache key.
    """
    text = f"{seed}|{cell.corruption}|{cell.severity}|{first_index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)


def on_the_fly(
    cell: Cell, seed: int, device: torch.device, jpeg_quality: int | None = JPEG_QUALITY
) -> DeviceTransform:
    """The device transform that applies ``corrupt_batch`` to a uint8 batch, then the
    release's JPEG save and reload at ``jpeg_quality`` (None: no save)."""
    from ..corruptions import corrupt_batch, jpeg_round_trip

    def transform(images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator(device=device)
        generator.manual_seed(batch_seed(seed, cell, int(indices[0])))
        out = corrupt_batch(images, cell.corruption, cell.severity, generator=generator)
        return out if jpeg_quality is None else jpeg_round_trip(out, jpeg_quality)

    return transform


def _jpeg_words(jpeg_quality: int | None) -> str:
    if jpeg_quality is None:
        return "no JPEG save"
    return f"saved and reloaded as JPEG q{jpeg_quality} in memory"


class Source:
    """Base class: ``cell(c)`` -> :class:`CellData`; ``check(cells)`` fails fast on missing data."""

    kind: str = ""
    description: str = ""
    has_clean: bool = True
    #: side of the corrupted frames the model sees (files: read by :meth:`check`)
    frame_size: int = FRAME_GEOMETRY[1]
    #: how the frames were made: {"resize", "crop", "geometry"}, None when not recorded
    #: (released files; make_imagenet_c writes it next to each cell)
    frame_geometry: dict | None = None
    #: quality of the in-memory JPEG save of on-the-fly frames (None: none, or files)
    jpeg_quality: int | None = None

    def check(self, cells: Sequence[Cell]) -> None:  # pragma: no cover - trivial default
        return None

    def cell(self, cell: Cell) -> CellData:
        raise NotImplementedError


class ValFolder:
    """An ImageNet val folder indexed once: classes (the model's label order, see
    :func:`~robustbench_assemble.datasets.imagenet.class_order`) and the --limit subset."""

    def __init__(
        self, root: str | os.PathLike, limit: int | None, num_classes: int | None = None
    ) -> None:
        self.root = Path(root)
        try:
            classes = class_order(find_classes(self.root), num_classes)
        except ValueError as exc:
            raise ValueError(f"--data {self.root}: {exc}") from exc
        self.classes, samples = index_folder(self.root, classes)
        self.samples = select_subset(samples, limit)
        self.fingerprint = fingerprint(self.samples)

    @property
    def relpaths(self) -> list[str]:
        return [s.relpath for s in self.samples]


class FilesSource(Source):
    """ImageNet-C JPEG files (+ clean val images when ``val`` is given)."""

    kind = "files"

    def __init__(
        self,
        imagenet_c: str | os.PathLike,
        val: ValFolder | None,
        limit: int | None,
        clean_transform: CleanTransform,
        num_classes: int = 1000,
        decode: str = "cpu",
    ) -> None:
        if decode not in DECODERS:
            raise ValueError(f"--decode {decode!r}: expected one of {', '.join(DECODERS)}")
        self.decode = decode
        self.root = Path(imagenet_c)
        if not self.root.is_dir():
            raise FileNotFoundError(f"--imagenet-c {self.root}: folder does not exist")
        self.val, self.limit, self.clean_transform = val, limit, clean_transform
        self.has_clean = val is not None
        self.num_classes = num_classes
        self._classes: list[str] | None = val.classes if val is not None else None
        self.description = (
            f"ImageNet-C files under {self.root}"
            + (f", clean images from {val.root}" if val is not None else " (no clean images)")
            + (", ImageNet-C JPEGs decoded with nvjpeg on the GPU" if decode == "gpu" else "")
        )

    def classes(self, any_cell: Cell) -> list[str]:
        """The label order: the val folder's, else :func:`class_order` of a cell's wnids."""
        if self._classes is None:
            folder = find_cell(self.root, any_cell.corruption, any_cell.severity)
            try:
                self._classes = class_order(find_classes(folder), self.num_classes)
            except ValueError as exc:
                raise ValueError(f"--imagenet-c {folder}: {exc}; or pass --data VAL_DIR") from exc
        return self._classes

    def check(self, cells: Sequence[Cell]) -> None:
        """Every cell exists, and all hold frames of one size (:attr:`frame_size`) made one way
        (:attr:`frame_geometry`, from make_imagenet_c's record next to each cell, if any)."""
        wanted = [c for c in cells if not c.is_clean]
        missing = [
            c
            for c in wanted
            if not any(p.is_dir() for p in cell_candidates(self.root, c.corruption, c.severity))
        ]
        if missing:  # all of them in one message, not one run per missing cell
            present = available_cells(self.root)
            have = "; ".join(f"{n} {','.join(map(str, s))}" for n, s in present.items())
            shown = ", ".join(f"{c.corruption} s{c.severity}" for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise FileNotFoundError(
                f"--imagenet-c {self.root}: {len(missing)} of the {len(wanted)} requested cells "
                f"are missing ({shown}{more}); present: {have or 'none'}. Select present ones "
                "with --corruptions / --severities, or generate the rest with "
                "python -m robustbench_assemble.make_imagenet_c"
            )
        sizes: dict[int, Path] = {}
        made: dict[str, tuple[dict | None, Path]] = {}
        for c in cells:
            if not c.is_clean:
                folder = find_cell(self.root, c.corruption, c.severity)
                sizes.setdefault(frame_size(folder), folder)
                record = generator_frames(folder)
                made.setdefault(json.dumps(record, sort_keys=True), (record, folder))
        if len(sizes) > 1:
            listed = ", ".join(f"{n}x{n} in {folder}" for n, folder in sorted(sizes.items()))
            raise ValueError(f"--imagenet-c {self.root} mixes frame sizes: {listed}")
        if len(made) > 1:
            listed = "; ".join(f"{r or 'no record'} in {folder}" for r, folder in made.values())
            raise ValueError(f"--imagenet-c {self.root} mixes frames made differently: {listed}")
        if sizes:
            self.frame_size = next(iter(sizes))
            self.frame_geometry = next(iter(made.values()))[0]

    def cell(self, cell: Cell) -> CellData:
        if cell.is_clean:
            if self.val is None:
                raise ValueError("clean accuracy needs --data VAL_DIR")
            ds = CleanFiles(self.val.samples, self.clean_transform)
            return CellData(ds, self.val.fingerprint, frames=False)
        if self.val is not None:
            ds = ImageNetC(
                self.root,
                cell.corruption,
                cell.severity,
                self.val.classes,
                relpaths=self.val.relpaths,
            )
        else:
            ds = ImageNetC(
                self.root, cell.corruption, cell.severity, self.classes(cell), limit=self.limit
            )
        if self.decode == "gpu":
            return CellData(
                JpegBytes(ds.samples),
                ds.fingerprint(),
                frames=True,
                decoder=JpegDecoder(ds.samples),
                decode="gpu",
            )
        return CellData(ds, ds.fingerprint(), frames=True)


class OnTheFlySource(Source):
    """Val images corrupted with ``corrupt_batch`` on the evaluation device."""

    kind = "on-the-fly"

    def __init__(
        self,
        val: ValFolder,
        clean_transform: CleanTransform,
        seed: int,
        device: torch.device,
        geometry: FrameGeometry = FRAME_GEOMETRY,
        jpeg_quality: int | None = JPEG_QUALITY,
    ) -> None:
        self.val, self.clean_transform, self.seed, self.device = val, clean_transform, seed, device
        self.geometry, self.frame_size = geometry, geometry[1]
        self.frame_geometry = frame_record(*geometry)
        self.jpeg_quality = jpeg_quality
        self.description = (
            f"{val.root}, Resize({geometry[0]}) + CenterCrop({geometry[1]}) ({geometry[2]} "
            f"rounding), corrupted on the fly on {device.type} (seed {seed}), "
            + _jpeg_words(jpeg_quality)
        )

    def check(self, cells: Sequence[Cell]) -> None:
        _require_corrupt_batch()

    def cell(self, cell: Cell) -> CellData:
        if cell.is_clean:
            return CellData(
                CleanFiles(self.val.samples, self.clean_transform),
                self.val.fingerprint,
                frames=False,
            )
        return _corrupted_on_the_fly(
            self, FrameFiles(self.val.samples, self.geometry), self.val.fingerprint, cell
        )


class SmokeSource(Source):
    """The embedded five-photo sample (:mod:`.smoke`), corrupted on the fly."""

    kind = "on-the-fly"
    description = SMOKE_DESCRIPTION

    def __init__(
        self,
        clean_transform: CleanTransform,
        seed: int,
        device: torch.device,
        geometry: FrameGeometry = FRAME_GEOMETRY,
        jpeg_quality: int | None = JPEG_QUALITY,
    ) -> None:
        photos = load_smoke_sample()
        self.fingerprint = "smoke-" + smoke_fingerprint(photos)
        self.clean = InMemory([(clean_transform(im), label) for im, label in photos])
        self.frames = InMemory([(frame_tensor(im, geometry), label) for im, label in photos])
        self.seed, self.device, self.geometry = seed, device, geometry
        self.jpeg_quality = jpeg_quality
        self.frame_size = geometry[1]
        self.frame_geometry = frame_record(*geometry)

    def check(self, cells: Sequence[Cell]) -> None:
        _require_corrupt_batch()

    def cell(self, cell: Cell) -> CellData:
        if cell.is_clean:
            return CellData(self.clean, self.fingerprint, frames=False)
        return _corrupted_on_the_fly(self, self.frames, self.fingerprint, cell)


def _corrupted_on_the_fly(
    source: OnTheFlySource | SmokeSource, frames: Dataset, data_fingerprint: str, cell: Cell
) -> CellData:
    """A corrupted cell of an on-the-fly source: its frames, corrupted (and saved) on the
    device, keyed by everything the corruption depends on."""
    return CellData(
        frames,
        data_fingerprint,
        on_the_fly(cell, source.seed, source.device, source.jpeg_quality),
        frames=True,
        extra_key={
            "seed": source.seed,
            "frame_geometry": list(source.geometry),
            "jpeg_quality": source.jpeg_quality,
        },
    )


def _require_corrupt_batch() -> None:
    try:
        from ..corruptions import corrupt_batch  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            "on-the-fly corruption needs robustbench_assemble.corruptions.corrupt_batch, "
            "which is not available in this installation; use --imagenet-c DIR (files)"
        ) from exc


def pil_to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """HxWx3 PIL -> uint8 3xHxW tensor."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
