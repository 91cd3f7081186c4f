"""The ImageNet-P HDF5 format: one file per (perturbation, difficulty), written resumably.

Layout of ``<out>/<name>[_2|_3].h5`` (the release's folder names, plus ``.h5``):

- ``frames``: (N, T, 224, 224, 3) uint8, one chunk per sequence, deflate (gzip) level 1;
- ``labels``: (N,) int64 class index (sorted wnids of the source, as torchvision ImageFolder);
- ``wnids``, ``filenames``: (N,) str, the class folder and the val path ``<wnid>/<file>``;
- ``classes``: the sorted wnid list the labels index into;
- ``completed``: (N,) bool, set after each sequence is on disk;
- attributes: ``perturbation``, ``difficulty``, ``frames_per_sequence``, ``seed`` (-1 when
  imported), ``source`` ("generated" / "mp4"), ``generator`` (which code drew the frames:
  ``"numpy-2"`` for the CPU generator, ``"torch-cuda"`` for the batched GPU path, ``"none"``
  for imports; random frames differ between them), ``codec`` (the video compression the frames
  went through: the release's libx264 settings, the released MP4s, or none; absent in files
  written before it existed, which are lossless), ``package_version``, ``format_version``,
  ``compression``, ``complete``.

A run writes ``<file>.h5.partial`` (HDF5 in SWMR mode, so a killed writer leaves a readable
file), marks each sequence in ``completed`` after its chunk, and renames the file to its
final name only once every sequence is present and ``complete`` is set. A rerun continues a
partial file whose settings and file list match, and restarts one that cannot be opened; a
finished file is kept if its settings match the run's, and is an error if they do not.
Chunks are deflated by the producers (``encode_chunk``) and stored with
``write_direct_chunk``, so compression runs in parallel and the single writer only copies bytes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.pool
import os
import signal
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .._version import __version__, code_fingerprint
from ..atomic import temp_path_for
from .codec import CODEC_ATTRS, RELEASED_CODEC
from .params import CROP, dataset_name, num_frames

FORMAT_VERSION = 1
#: deflate level: measured on real sequences, level 1 stores 84-88 % of lzf's size at 2.5x lzf's
#: write time, and levels 4-6 save < 3 % more at 1.3-2.5x the time (docs/BENCHMARKS.md).
COMPRESSION_LEVEL = 1
PARTIAL_SUFFIX = ".partial"


def h5_path(out: str | os.PathLike, name: str, difficulty: int = 1) -> Path:
    """``<out>/<name>.h5`` or ``<out>/<name>_<d>.h5`` (noise difficulties 2 and 3 only)."""
    return Path(out) / f"{dataset_name(name, difficulty)}.h5"


def partial_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def encode_chunk(frames: np.ndarray) -> bytes:
    """Deflate one sequence as the HDF5 gzip filter stores it (zlib stream of the C-order bytes)."""
    return zlib.compress(np.ascontiguousarray(frames, dtype=np.uint8).tobytes(), COMPRESSION_LEVEL)


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a finished ImageNet-P HDF5 file."""
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and bool(np.all(f["completed"][()]))
    except (OSError, KeyError):
        return False


def stored_attr(f: h5py.File, key: str):
    """Attribute ``key`` of an ImageNet-P file, with the default of files that predate it
    (``codec``: imports hold the released MP4s' frames, generated files lossless ones)."""
    value = f.attrs.get(key)
    if value is None and key == "codec":
        value = RELEASED_CODEC if stored_attr(f, "source") == "mp4" else CODEC_ATTRS["none"]
    if isinstance(value, np.generic):  # np.int64(0) -> 0, for comparisons and messages
        value = value.item()
    return value.decode() if isinstance(value, bytes) else value


def existing_complete(
    path: Path, expected: dict | None = None, filenames: Sequence[str] | None = None
) -> bool:
    """True if ``path`` is a finished file (skip it). A half-valid file at the final name is an
    error (writers only ever create ``.partial`` files, so this means foreign or damaged data),
    and so is a finished file made with other ``expected`` settings (seed, codec, ...) or
    another image list (``filenames``: another --src or --limit): keeping it would silently
    mix settings in one output folder."""
    if not path.exists():
        return False
    if not is_complete(path):
        raise ValueError(f"{path} exists but is not a complete ImageNet-P file; remove it")
    with h5py.File(path, "r") as f:
        for key, value in (expected or {}).items():
            if stored_attr(f, key) != value:
                raise ValueError(
                    f"{path} exists, made with {key}={stored_attr(f, key)!r}; this run has "
                    f"{key}={value!r}: delete it or use another --out"
                )
        if filenames is not None:
            stored = [x.decode() if isinstance(x, bytes) else x for x in f["filenames"][()]]
            if stored != list(filenames):
                raise ValueError(
                    f"{path} exists with another image list ({len(stored)} files) than this "
                    f"run ({len(filenames)}): same --src and --limit, or another --out"
                )
    return True


def _producer_init(initializer: Callable[[], None] | None) -> None:
    """Worker start: Ctrl-C is the main process's to handle (it stops the pool; the partial
    file resumes), then the caller's own set-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()


@contextlib.contextmanager
def producer_pool(
    workers: int, initializer: Callable[[], None] | None = None
) -> Iterator[mp.pool.Pool | None]:
    """The spawned worker processes that compute chunks for :func:`write_sequences` (None for
    ``workers == 0``: the caller produces in-process). On an interrupt or error the pool is
    terminated, not drained, so Ctrl-C stops at once; either way it is joined."""
    if not workers:
        yield None
        return
    pool = mp.get_context("spawn").Pool(workers, _producer_init, (initializer,))
    try:
        yield pool
    except BaseException:
        pool.terminate()  # interrupted or failed: do not wait for queued sequences
        raise
    finally:
        pool.close()
        pool.join()


def write_sequences(
    writer: SequenceWriter,
    results: Iterable[tuple[int, bytes | np.ndarray]],
    *,
    total: int,
    unit: str,
    progress: bool,
) -> Path:
    """Write ``(index, chunk)`` results as they arrive, with a progress bar, then finish the file.

    The writer is closed in every case, so an interrupted run leaves a resumable ``.partial``.
    """
    try:
        with tqdm(
            total=total,
            initial=total - len(writer.todo),
            desc=writer.path.name,
            unit=unit,
            disable=not progress,
        ) as bar:
            for index, chunk in results:
                writer.write(index, chunk)
                bar.update()
        return writer.finish()
    finally:
        writer.close()


class WriterBusyError(RuntimeError):
    """Another process is writing the same dataset (its lock is held)."""


def _lock(path: Path) -> tuple[int, Path] | None:
    """An exclusive lock on ``.<name>.lock`` next to ``path``, held by this process until
    :func:`_unlock` (which deletes the lock file): two runs writing one dataset would each
    reopen (or salvage and delete) the other's ``.partial`` file. The operating system drops
    the lock when a process dies, so a killed run leaves no stale lock. None where ``fcntl``
    does not exist (not POSIX)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    lock_path = path.with_name(f".{path.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WriterBusyError(
                f"{path}: another process is writing it (lock {lock_path}); wait for it to "
                "finish, or use another --out"
            ) from None
        except OSError as exc:  # a file system without flock (some NFS/Lustre/FUSE mounts)
            os.close(fd)
            lock_path.unlink(missing_ok=True)
            warnings.warn(
                f"{lock_path}: cannot lock ({exc.strerror}); run one writer per --out here",
                UserWarning,
                stacklevel=3,
            )
            return None
        try:  # the holder before us may have deleted the file we locked: lock the new one
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                return fd, lock_path
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlock(lock: tuple[int, Path] | None) -> None:
    if lock is not None:
        fd, lock_path = lock
        lock_path.unlink(missing_ok=True)  # while still held: nobody can lock it meanwhile
        os.close(fd)  # closing the descriptor releases the flock


class SequenceWriter:
    """Create or continue ``<path>.partial``; :meth:`finish` renames it to ``path``.

    ``todo`` lists the sequence indices still missing (all of them for a new file). One
    writer per dataset at a time: a second process gets :class:`WriterBusyError`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        perturbation: str,
        difficulty: int,
        filenames: Sequence[str],
        labels: Sequence[int],
        classes: Sequence[str],
        seed: int | None,
        source: str = "generated",
        generator: str = "none",
        codec: str = CODEC_ATTRS["none"],
    ) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.frames = num_frames(perturbation)
        self.expected = {
            "perturbation": perturbation,
            "difficulty": int(difficulty),
            "frames_per_sequence": self.frames,
            "seed": -1 if seed is None else int(seed),
            "source": source,
            "generator": generator,
            "codec": codec,
            "format_version": FORMAT_VERSION,
        }
        self.filenames = list(filenames)
        self.file: h5py.File | None = None
        self._lock = _lock(self.path)
        try:
            self._open(labels, classes)
        except BaseException:  # release the lock (and the file) of a writer that failed to start
            self.close()
            raise

    def _open(self, labels: Sequence[int], classes: Sequence[str]) -> None:
        """Continue ``.partial`` (or salvage it) or create it; set :attr:`todo`. Lock held."""
        if self.path.exists():  # finished by another run between the caller's check and the lock
            raise WriterBusyError(
                f"{self.path} was finished by another run while this one started; rerun to "
                "check it against this run's settings"
            )
        salvaged: dict[int, bytes] = {}
        if self.partial.exists():
            try:
                self._open_existing()
            except (OSError, RuntimeError):
                # a killed SWMR writer leaves the file marked "open for writing": read what it
                # completed (SWMR read still works) and rewrite those sequences into a new file
                salvaged = self._salvage()
        if self.file is None:
            self._create(labels, classes)
            for index, chunk in salvaged.items():
                self.write(index, chunk)
        done = self.file["completed"][()]
        self.todo = [int(i) for i in np.flatnonzero(~done)]
        self.file.swmr_mode = True

    def _open_existing(self) -> None:
        f = h5py.File(self.partial, "r+", libver="latest")
        try:
            self._check_settings(f)
        except BaseException:
            f.close()
            raise
        self.file = f

    def _check_settings(self, f: h5py.File) -> None:
        for key, value in self.expected.items():
            if stored_attr(f, key) != value:
                raise ValueError(
                    f"{self.partial} was started with {key}={stored_attr(f, key)!r}, this run "
                    f"has {key}={value!r}: delete it (or use another --out) to start over"
                )
        code = stored_attr(f, "code_fingerprint")
        if code is not None and code != code_fingerprint():
            warnings.warn(
                f"{self.partial} was started by other code (fingerprint {code}, now "
                f"{code_fingerprint()}): its sequences may come from two versions of the "
                "generator; delete it to start over",
                UserWarning,
                stacklevel=5,  # __init__ -> _open -> _open_existing or _salvage -> here
            )
        stored = [s.decode() if isinstance(s, bytes) else s for s in f["filenames"][()]]
        if stored != self.filenames:
            raise ValueError(
                f"{self.partial} holds another image list ({len(stored)} files) than this "
                f"run ({len(self.filenames)}): same --src and --limit are needed to resume; "
                "delete it to start over"
            )

    def _salvage(self) -> dict[int, bytes]:
        """Completed chunks of a partial file that cannot be reopened for writing."""
        chunks: dict[int, bytes] = {}
        try:
            with h5py.File(self.partial, "r", swmr=True) as f:
                self._check_settings(f)
                done = f["completed"][()]
                frames = f["frames"]
                for i in np.flatnonzero(done):
                    mask, data = frames.id.read_direct_chunk((int(i), 0, 0, 0, 0))
                    if mask == 0 and len(zlib.decompress(data)) == int(np.prod(frames.chunks)):
                        chunks[int(i)] = data
        except (OSError, RuntimeError, KeyError, zlib.error) as exc:
            warnings.warn(
                f"{self.partial}: unreadable partial file ({exc}); starting over", stacklevel=4
            )
            chunks = {}
        self.partial.unlink()
        return chunks

    def _create(self, labels: Sequence[int], classes: Sequence[str]) -> None:
        n = len(self.filenames)
        if n == 0:
            raise ValueError("no images to write")
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} files")
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        # built under a temporary name and renamed once its settings are written: a Ctrl-C in
        # between must not leave a .partial without them (the next run could not resume it)
        tmp = temp_path_for(self.partial)
        try:
            with h5py.File(tmp, "w", libver="latest") as f:
                self._layout(f, labels, classes)
            os.replace(tmp, self.partial)
        finally:
            tmp.unlink(missing_ok=True)
        self.file = h5py.File(self.partial, "r+", libver="latest")

    def _layout(self, f: h5py.File, labels: Sequence[int], classes: Sequence[str]) -> None:
        n = len(self.filenames)
        shape = (n, self.frames, CROP, CROP, 3)
        f.create_dataset(
            "frames",
            shape=shape,
            dtype=np.uint8,
            chunks=(1, *shape[1:]),
            compression="gzip",
            compression_opts=COMPRESSION_LEVEL,
        )
        text = h5py.string_dtype()
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        f.create_dataset("filenames", data=np.array(self.filenames, dtype=object), dtype=text)
        wnids = [p.split("/", 1)[0] for p in self.filenames]
        f.create_dataset("wnids", data=np.array(wnids, dtype=object), dtype=text)
        f.create_dataset("classes", data=np.array(list(classes), dtype=object), dtype=text)
        f.create_dataset("completed", data=np.zeros(n, dtype=bool))
        for key, value in self.expected.items():
            f.attrs[key] = value
        f.attrs["package_version"] = __version__
        f.attrs["code_fingerprint"] = code_fingerprint()  # the version string is per release
        f.attrs["compression"] = f"gzip level {COMPRESSION_LEVEL}, one chunk per sequence"
        f.attrs["complete"] = False

    def write(self, index: int, chunk: bytes | np.ndarray) -> None:
        """Store sequence ``index`` (encoded bytes from :func:`encode_chunk`, or frames)."""
        assert self.file is not None
        if isinstance(chunk, np.ndarray):
            expect = (self.frames, CROP, CROP, 3)
            if chunk.shape != expect or chunk.dtype != np.uint8:
                raise ValueError(
                    f"sequence must be {expect} uint8, got {chunk.shape} {chunk.dtype}"
                )
            chunk = encode_chunk(chunk)
        self.file["frames"].id.write_direct_chunk((index, 0, 0, 0, 0), chunk)
        self.file["frames"].flush()
        self.file["completed"][index] = True
        self.file["completed"].flush()

    def finish(self) -> Path:
        """Check every sequence is present, mark the file complete, rename it into place."""
        assert self.file is not None
        missing = int(np.sum(~self.file["completed"][()]))
        self.file.close()
        self.file = None
        if missing:
            raise RuntimeError(f"{self.partial}: {missing} sequences are still missing")
        with h5py.File(self.partial, "r+") as f:
            f.attrs["complete"] = True
        os.replace(self.partial, self.path)
        self.close()
        return self.path

    def __del__(self) -> None:  # a writer dropped without close(): release its lock
        with contextlib.suppress(Exception):
            _unlock(self._lock)

    def close(self) -> None:
        """Close the file and release the dataset's lock (also after an error)."""
        if self.file is not None:
            self.file.close()
            self.file = None
        _unlock(self._lock)
        self._lock = None
