"""numba's ``njit`` with its on-disk cache where a cache folder can be written, without it
elsewhere.

Why: with ``cache=True`` numba looks for a writable cache folder when a function is decorated,
i.e. when our kernel modules are imported: ``NUMBA_CACHE_DIR``, ``__pycache__`` beside the
module, then the user's cache folder. With none of them (a read-only install run by a user
without a writable home, as in some containers) numba raises "no locator available" and the
package could not even be imported. Without the cache, each process compiles the kernels it
uses instead (seconds), and the results are the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numba

_warned = False


def njit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``, falling back to ``cache=False`` (with one warning per
    process) when ``cache=True`` finds no writable cache folder."""

    def decorate(fn: Callable) -> Callable:
        global _warned
        try:
            return numba.njit(**options)(fn)
        except RuntimeError as exc:
            if not options.get("cache") or "no locator available" not in str(exc):
                raise
            if not _warned:
                _warned = True
                warnings.warn(
                    "numba finds no writable cache folder (set NUMBA_CACHE_DIR to one): the "
                    "compiled kernels are not cached, so each process compiles them again",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return numba.njit(**{**options, "cache": False})(fn)

    return decorate
