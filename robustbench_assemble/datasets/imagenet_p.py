"""Reading ImageNet-P: our HDF5 files and the released MP4 tree, behind one interface.

``open_imagenet_p(root, perturbation, difficulty)`` returns a torch ``Dataset`` whose item i
is ``(frames, label)``: frames a (T, 224, 224, 3) uint8 RGB array, label the class index.
Both kinds also expose ``filenames`` (``<wnid>/<name>``), ``labels`` and ``name``.

- HDF5 (:mod:`robustbench_assemble.perturbations.storage`): ``<root>/<name>[_2|_3].h5``.
- MP4 release (Zenodo 3565846): ``<root>/<name>[_2|_3]/<wnid>/<stem>.mp4``, decoded with PyAV
  to RGB24, as the reference's ``VideoFolder`` did with OpenCV (both use FFmpeg's swscale).

A non-noise perturbation at difficulty 2 or 3 reads the difficulty-1 data: the difficulty is a
frame stride applied by the metrics, not another dataset (REFERENCE.md §2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
from torch.utils.data import Dataset

from ..perturbations.codec import RELEASED_CODEC
from ..perturbations.params import dataset_name, num_frames, parse_dataset_name, source_difficulty
from ..perturbations.storage import PARTIAL_SUFFIX, h5_path, is_complete, stored_attr
from .imagenet import class_order

MP4_EXTENSION = ".mp4"
#: HDF5 attributes that say which frames a file holds (with its size: its fingerprint).
_IDENTITY_ATTRS = ("perturbation", "difficulty", "seed", "source", "generator", "codec",
                   "package_version", "format_version")  # fmt: skip


def _digest(items) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(f"{item}\n".encode())
    return h.hexdigest()[:16]


def _text(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class HDF5Sequences(Dataset):
    """Sequences of one finished HDF5 file; the file is opened lazily (one handle per process)."""

    kind = "hdf5"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ImageNet-P file {self.path} does not exist")
        if not is_complete(self.path):
            raise ValueError(
                f"{self.path} is not a complete ImageNet-P HDF5 file (interrupted run? rerun "
                "make_imagenet_p / import_imagenet_p to finish it)"
            )
        with h5py.File(self.path, "r") as f:
            self.name = str(f.attrs["perturbation"])
            self.difficulty = int(f.attrs["difficulty"])
            self.frames_per_sequence = int(f.attrs["frames_per_sequence"])
            self.filenames = _text(f["filenames"][()])
            self.labels = [int(x) for x in f["labels"][()]]
            self.classes = _text(f["classes"][()])
            self.codec = str(stored_attr(f, "codec"))
            identity = {k: str(stored_attr(f, k)) for k in _IDENTITY_ATTRS}
        identity["bytes"] = str(self.path.stat().st_size)
        #: what the frames are: generation settings and file size (part of prediction caches)
        self.fingerprint = _digest(sorted(identity.items()))
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.filenames)

    def _frames(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():  # new process (DataLoader worker)
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["frames"]

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"sequence {index} out of range for {len(self)} sequences")
        return self._frames()[index], self.labels[index]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """All frames of an MP4 as (T, H, W, 3) uint8 RGB (PyAV / FFmpeg decode)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path}: cannot decode video ({exc})") from exc
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return np.stack(frames)


def write_mp4(
    path: str | os.PathLike, frames: np.ndarray, *, noise: bool, preset: str = "veryslow"
) -> None:
    """Encode frames as the release did: libx264 at 1 fps, ``-tune grain`` for noise, else
    ``-crf 20``, from RGB input (FFmpeg then picks yuv444p for libx264). Used to measure the
    release's size and to test the MP4 reader; the release itself was made with the ffmpeg CLI.
    """
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape}")
    options = {"preset": preset}
    options.update({"tune": "grain"} if noise else {"crf": "20"})
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(1, 1), options=options)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class MP4Sequences(Dataset):
    """The released ``<root>/<dataset>/<wnid>/<stem>.mp4`` tree of one dataset."""

    kind = "mp4"

    def __init__(self, folder: str | os.PathLike, classes: Sequence[str] | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"ImageNet-P folder {self.folder} does not exist")
        self.name, self.difficulty = parse_dataset_name(self.folder.name)
        self.frames_per_sequence = num_frames(self.name)
        present = sorted(
            e.name for e in os.scandir(self.folder) if e.is_dir() and not e.name.startswith(".")
        )
        if not present:
            raise FileNotFoundError(f"no <wnid> folders in {self.folder}")
        self.classes = list(classes) if classes is not None else class_order(present)
        label_of = {c: i for i, c in enumerate(self.classes)}
        unknown = [w for w in present if w not in label_of]
        if unknown:
            raise ValueError(f"{self.folder}: class folders not in the class list: {unknown[:5]}")
        self.paths: list[Path] = []
        self.filenames: list[str] = []
        self.labels: list[int] = []
        for wnid in present:
            for name in sorted(os.listdir(self.folder / wnid)):
                if name.lower().endswith(MP4_EXTENSION) and not name.startswith("."):
                    self.paths.append(self.folder / wnid / name)
                    self.filenames.append(f"{wnid}/{name[: -len(MP4_EXTENSION)]}")
                    self.labels.append(label_of[wnid])
        if not self.paths:
            raise FileNotFoundError(f"no .mp4 files under {self.folder}/<wnid>/")
        self.codec = RELEASED_CODEC

    @property
    def fingerprint(self) -> str:
        """Relative paths and byte sizes of the videos (part of prediction caches)."""
        return _digest((f, p.stat().st_size) for f, p in zip(self.filenames, self.paths))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        frames = read_mp4(self.paths[index])
        if len(frames) != self.frames_per_sequence:
            raise ValueError(
                f"{self.paths[index]}: {len(frames)} frames, expected "
                f"{self.frames_per_sequence} for {self.name}"
            )
        return frames, self.labels[index]


def find_dataset(root: str | os.PathLike, perturbation: str, difficulty: int = 1) -> Path:
    """The HDF5 file or MP4 folder holding (perturbation, difficulty) under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet-P folder {root} does not exist")
    h5 = h5_path(root, perturbation, difficulty)
    if h5.is_file():
        return h5
    folder = root / dataset_name(perturbation, difficulty)
    if folder.is_dir():
        return folder
    hint = (
        " (an unfinished .partial file exists)" if Path(str(h5) + PARTIAL_SUFFIX).exists() else ""
    )
    raise FileNotFoundError(
        f"no ImageNet-P data for {perturbation} difficulty {difficulty} under {root}: expected "
        f"{h5.name} or the MP4 folder {folder.name}/<wnid>/*.mp4{hint}"
    )


def open_imagenet_p(
    root: str | os.PathLike,
    perturbation: str,
    difficulty: int = 1,
    classes: Sequence[str] | None = None,
) -> HDF5Sequences | MP4Sequences:
    """Open (perturbation, difficulty) under ``root``: HDF5 file first, else the MP4 folder.

    ``classes`` fixes the label order of an MP4 tree (default: its sorted wnid folders, right for
    the full 1000-class release); HDF5 files carry their own class list.
    """
    source_difficulty(perturbation, difficulty)  # validates both
    path = find_dataset(root, perturbation, difficulty)
    if path.suffix == ".h5":
        return HDF5Sequences(path)
    return MP4Sequences(path, classes)


def available_datasets(root: str | os.PathLike) -> list[tuple[str, int, str]]:
    """(perturbation, difficulty, 'hdf5' | 'mp4') for every dataset found under ``root``."""
    root = Path(root)
    found: list[tuple[str, int, str]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        stem, kind = (
            (entry.name[:-3], "hdf5") if entry.name.endswith(".h5") else (entry.name, "mp4")
        )
        if kind == "mp4" and not entry.is_dir():
            continue
        try:
            name, d = parse_dataset_name(stem)
        except ValueError:
            continue
        found.append((name, d, kind))
    return found
