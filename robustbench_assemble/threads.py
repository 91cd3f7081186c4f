"""A CPU thread pool for compiled kernels that release the GIL (numba ``nogil``, OpenCV).

Why one module: the ImageNet-C engine (``corrupt_batch`` on the CPU) and the ImageNet-P
generator both split independent work (images, frames, pixel ranges) over threads, and both
need the same guarantee: every item is computed by one call with the same arguments whatever
the thread count, so outputs do not depend on it (tested in both engines).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

_PREFIX = "robustbench-cpu"
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_PID = -1
_POOL_LOCK = threading.Lock()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _workers(n: int, threads: int) -> int:
    """Threads to use for ``n`` items: 1 inside a pool thread, so that a nested call runs
    inline instead of waiting on a pool whose threads are all busy waiting (a deadlock)."""
    if threading.current_thread().name.startswith(_PREFIX):
        return 1
    return max(1, min(int(n), int(threads)))


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool kept between calls: starting threads costs ~0.2 ms per call, 3-5 % of a
    warp sequence. Replaced after a fork (the parent's threads do not exist in the child) or
    when more workers are asked for."""
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid() or _POOL_SIZE < workers:
            old = _POOL if _POOL_PID == os.getpid() else None
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_PREFIX)
            _POOL_SIZE, _POOL_PID = workers, os.getpid()
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


def split_range(fn: Callable[[int, int], object], n: int, threads: int) -> None:
    """``fn(lo, hi)`` over ``[0, n)`` cut into ``threads`` contiguous ranges, one per thread.

    The kernels release the GIL, so the ranges (images, frames, pixels) run in parallel; each
    range's values are computed exactly as in a single call, so the result does not depend
    on ``threads``. The calling thread takes the first range.
    """
    workers = _workers(n, threads)
    if workers == 1:
        if n > 0:
            fn(0, n)
        return
    bounds = np.linspace(0, n, workers + 1).astype(np.int64).tolist()
    pool = _pool(workers - 1)
    futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, workers)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def run_frames(fn: Callable[[int], object], order: Sequence[int], threads: int) -> None:
    """``fn(t)`` for every ``t`` in ``order``, on ``threads`` threads that each take the next
    frame when done (frames of one sequence differ in cost: scale's zoomed-out frames are
    mostly black, gaussian_blur's kernels grow), so no thread waits on another's share.

    Each frame is computed by one call whatever the thread count: the output does not depend
    on it. Put the costly frames first. The calling thread works too.
    """
    items = [int(t) for t in order]
    workers = _workers(len(items), threads)
    if workers == 1:
        for t in items:
            fn(t)
        return
    lock = threading.Lock()
    it = iter(items)

    def worker() -> None:
        while True:
            with lock:
                t = next(it, None)
            if t is None:
                return
            fn(t)

    pool = _pool(workers - 1)
    futures = [pool.submit(worker) for _ in range(workers - 1)]
    try:
        worker()
    finally:
        for f in futures:
            f.result()


def map_threads(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``threads`` threads of the kept pool (for steps
    that release the GIL: OpenCV, Pillow, compiled kernels), results in ``items`` order."""
    workers = _workers(len(items), threads)
    if workers == 1:
        return [fn(x) for x in items]
    return list(_pool(workers).map(fn, items))
