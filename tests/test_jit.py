"""The package imports and its kernels run where numba finds no writable cache folder."""

from __future__ import annotations

import numpy as np
import pytest


def test_njit_falls_back_to_no_cache_when_no_cache_folder_is_writable(monkeypatch):
    from numba.core import caching

    from robustbench_assemble import jit

    def twice(x):
        return 2 * x

    # numba's own failure: every locator declines (read-only __pycache__, no writable home)
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed across versions
    monkeypatch.setattr(impl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator available"):
        __import__("numba").njit(cache=True)(twice)
    monkeypatch.setattr(jit, "_warned", False)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        compiled = jit.njit(cache=True, nogil=True)(twice)
    assert compiled(np.arange(3)).tolist() == [0, 2, 4]
    jit.njit(cache=True)(lambda x: x)  # warned once per process only (no second warning)


def test_njit_keeps_other_errors(monkeypatch):
    import numba

    from robustbench_assemble import jit

    def broken(**options):
        raise RuntimeError("some other numba failure")

    monkeypatch.setattr(numba, "njit", broken)
    with pytest.raises(RuntimeError, match="some other numba failure"):
        jit.njit(cache=True)(lambda x: x)
