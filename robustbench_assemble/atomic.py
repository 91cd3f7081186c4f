"""Atomic file writes: a file either exists complete or not at all.

Long runs (dataset generation, evaluation) are resumed by skipping outputs that already exist,
which is only safe if no output can ever be half-written. Every writer here puts the bytes in
a temporary file *in the destination folder* (same filesystem, so the rename is atomic) and
then ``os.replace``s it onto the final name. A run killed mid-write leaves at most a temporary
file, recognisable by :func:`is_temp_file` and removed by :func:`remove_temp_files`.

Temporary names are ``.<final name>.<random hex>.tmp``: hidden, and with an extension no
image/JSON reader accepts, so a half-written file is never mistaken for data.

Two processes writing the *same* final path at once is not supported (the last rename wins,
but :func:`remove_temp_files` run by one may delete the other's temporary file).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary name next to ``path`` (same folder): ``.<name>.<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temp_file(name: str | os.PathLike) -> bool:
    """True for names made by :func:`temp_path_for` (left behind only by a killed writer)."""
    name = Path(name).name
    parts = name.split(".")
    # "", <final name parts...>, <12 hex>, "tmp"
    return (
        name.startswith(".")
        and name.endswith(TEMP_SUFFIX)
        and len(parts) >= 4
        and len(parts[-2]) == 12
        and all(c in "0123456789abcdef" for c in parts[-2])
    )


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[IO[bytes]]:
    """Open a binary temporary file next to ``path``; on success it is renamed onto ``path``.

    On any exception inside the ``with`` block the temporary file is deleted and ``path`` is
    left untouched (the old content, if any, survives). ``fsync=True`` also flushes the data
    to disk before the rename, which protects against power loss, not only against a killed
    process, at a cost of a few milliseconds per file. The file is created with the usual
    permissions (``0o666`` minus the umask), unlike ``tempfile.mkstemp``'s ``0o600``.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, fsync=fsync) as f:
        f.write(data)


def atomic_write_text(
    path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False
) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_writer`)."""
    atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, fsync: bool = True, **kwargs: Any
) -> None:
    """Serialise ``obj`` as JSON (plus a final newline) and write it atomically.

    ``fsync`` defaults to True: JSON files here are few and precious (results, provenance).
    Extra keyword arguments go to :func:`json.dumps` (e.g. ``sort_keys=True``,
    ``allow_nan=False``). Serialisation happens before anything touches the disk, so an
    unserialisable object leaves no trace.
    """
    text = json.dumps(obj, indent=indent, **kwargs) + "\n"
    atomic_write_text(path, text, fsync=fsync)


class OutputError(OSError):
    """An output file or folder could not be written (read-only disk, a file where a folder
    belongs, disk full...): a user-facing error whose message names the path."""


def check_output_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as an output folder that exists or can be made, else an error naming ``flag``.

    Checked before any work: a file at ``path``, or at a folder above it, would otherwise
    surface as a bare ``[Errno 20] Not a directory`` from deep inside a long run, and a
    read-only folder as an ``[Errno 30]`` traceback at the first write.
    """
    path = Path(path)
    for folder in (path, *path.parents):
        try:
            exists = folder.exists()
        except PermissionError:  # a folder above that cannot be searched
            raise OutputError(f"{flag} {path}: cannot reach {folder} (no permission)") from None
        if exists:
            if not folder.is_dir():
                what = "exists" if folder == path else f"{folder} exists"
                raise NotADirectoryError(f"{flag} {path}: {what} and is not a folder")
            # access() answers False on a read-only file system even for root
            if not os.access(folder, os.W_OK | os.X_OK):
                where = "" if folder == path else f" (in {folder})"
                raise OutputError(
                    f"{flag} {path}: cannot write there{where}: read-only or no permission"
                )
            break
    return path


def check_outside(out: str | os.PathLike, src: str | os.PathLike, out_flag: str = "--out",
                  src_flag: str = "--src") -> None:  # fmt: skip
    """Refuse an output folder at or inside the source folder: a later run would index the
    generated folders as class folders of the source and corrupt its own output again."""
    out_r, src_r = Path(out).resolve(), Path(src).resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise ValueError(
            f"{out_flag} {out} is inside {src_flag} {src}: a later run would read the generated "
            f"folders as class folders; choose an {out_flag} outside {src_flag}"
        )


@contextlib.contextmanager
def output_errors(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an OSError of writing ``path`` as :class:`OutputError` naming it."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        # os.replace(temp, final) names the final path second; mkdir names the blocking path
        culprit = exc.filename2 if exc.filename2 is not None else exc.filename
        if isinstance(exc, FileExistsError | NotADirectoryError):
            reason = "a file is where a folder belongs"
        else:
            reason = exc.strerror or str(exc)
        where = f" ({culprit})" if culprit is not None and str(culprit) != str(path) else ""
        raise OutputError(f"cannot write {path}: {reason}{where}") from None


def remove_temp_files(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Delete temporary files left in ``folder`` by killed writers; return what was removed.

    Call this at the start of a resumed run, before any writer of that run starts. A missing
    ``folder`` is fine (nothing to clean).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append(Path(entry.path))
                elif is_temp_file(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
    return sorted(removed)
