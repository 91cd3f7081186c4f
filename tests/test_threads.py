"""The shared CPU thread pool (robustbench_assemble/threads.py): results in order, every item
once, and nested calls from pool threads that run instead of deadlocking."""

from __future__ import annotations

import threading

from robustbench_assemble.threads import available_cores, map_threads, run_frames, split_range


def test_map_threads_keeps_order_for_any_thread_count():
    items = list(range(23))
    for threads in (1, 2, 4):
        assert map_threads(lambda x: x * x, items, threads) == [x * x for x in items]
    assert map_threads(lambda x: x, [], 3) == []


def test_nested_calls_from_pool_threads_finish():
    """A frame that itself splits its pixels over threads: with a single kept pool, the inner
    call must not wait on pool threads that are all busy running the outer frames."""
    seen: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def frame(t: int) -> None:
        def part(lo: int, hi: int) -> None:
            with lock:
                seen.append((t, lo, hi))

        split_range(part, 8, 3)
        assert map_threads(lambda x: x + t, [1, 2, 3], 3) == [1 + t, 2 + t, 3 + t]

    done = threading.Event()

    def outer() -> None:
        run_frames(frame, range(6), 3)
        done.set()

    threading.Thread(target=outer, daemon=True).start()
    assert done.wait(30), "nested thread-pool calls deadlocked"
    for t in range(6):
        covered = sorted(i for f, lo, hi in seen if f == t for i in range(lo, hi))
        assert covered == list(range(8))


def test_available_cores_is_positive():
    assert available_cores() >= 1
