"""Resumable per-cell cache: ``<out>/<model>/cache/<cell>.json``, one small file per cell.

Each file holds the counts of one finished cell (clean, or one corruption x severity) and the
*key* they were computed with: model and weights hash, precision, limit, source, seed, resize
policy, the model's preprocessing (``--clean-resize``) and the data fingerprint. A file is
reused only when its key equals the current key exactly, so a run killed at any point (even
SIGKILL) and started again ends with the numbers of an uninterrupted run, and changing any
setting that could change a number recomputes.
Files are written atomically (temp name + ``os.replace``); a killed writer leaves at most a
hidden ``.tmp`` file, which is ignored and removed at the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_json, remove_temp_files
from .loop import Counts

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True, order=True)
class Cell:
    """One evaluation unit: clean (``corruption=None``) or a (corruption, severity) pair."""

    corruption: str | None = None
    severity: int | None = None

    @property
    def is_clean(self) -> bool:
        return self.corruption is None

    @property
    def name(self) -> str:
        """``clean`` or ``<corruption>-<severity>`` (also the cache file stem)."""
        return "clean" if self.is_clean else f"{self.corruption}-{self.severity}"

    def __str__(self) -> str:
        return "clean" if self.is_clean else f"{self.corruption} s{self.severity}"


CLEAN = Cell()


class CellCache:
    """Read/write finished cells under ``directory`` (``None``: caching disabled)."""

    def __init__(self, directory: str | os.PathLike | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def path(self, cell: Cell) -> Path:
        if self.directory is None:
            raise ValueError("cache disabled")
        return self.directory / f"{cell.name}.json"

    def clean_up(self) -> None:
        """Remove temporary files a killed run left behind."""
        if self.directory is not None:
            remove_temp_files(self.directory, recursive=False)

    def load(self, cell: Cell, key: dict[str, Any]) -> Counts | None:
        """The cached counts of ``cell`` if computed with exactly ``key``; else None."""
        if self.directory is None:
            return None
        path = self.path(cell)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("format") != CACHE_FORMAT or entry.get("cell") != cell.name:
                return None
            if entry.get("key") != _jsonable(key):
                log.info("cache %s was computed with other settings; recomputing", path.name)
                return None
            return Counts.from_dict(entry["counts"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable cache file %s (%s)", path, exc)
            return None

    def store(self, cell: Cell, key: dict[str, Any], counts: Counts) -> None:
        """Write ``cell``'s counts and key atomically."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        entry = {
            "format": CACHE_FORMAT,
            "cell": cell.name,
            "corruption": cell.corruption,
            "severity": cell.severity,
            "counts": counts.to_dict(),
            "key": _jsonable(key),
        }
        atomic_write_json(self.path(cell), entry, fsync=True)


def _jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists), so keys compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes, bytes).

    Identifies the weights actually evaluated, whatever their origin (a --weights file, a
    package's pretrained file, or a seeded random init), so the cache never mixes two models.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
