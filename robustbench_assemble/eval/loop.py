"""Streaming evaluation of a run's cells: images -> DataLoader workers -> device -> model -> counts.

Nothing but three integers per cell survives a batch, so memory does not grow with the
dataset. One loader serves several cells (:func:`evaluate_cells`; batches never straddle two
cells), so workers start once for them and the next cell decodes while a cell's last batches
compute. Workers decode JPEGs straight into one uint8 batch (NHWC, in a shared-memory buffer
that the loader reuses, :class:`_BatchRing`, for datasets with a ``batch`` method; else the
per-image CHW path; ImageNet-C frames with simplejpeg, PIL's pixels); the batch is copied to the
device (non-blocking on CUDA, a quarter of the bytes of float32; straight from the ring, whose
pages the main process locks for CUDA, :meth:`_BatchRing.pin`), where
optional on-the-fly corruption, the resize policy and normalisation run; the model runs under
``torch.inference_mode``, in ``channels_last`` and, if asked, under bf16/fp16 autocast.
With a :class:`BatchDecoder` (``--decode gpu``) workers only read the compressed bytes and the
main process decodes the whole batch on the device (a tenth of the bytes through worker IPC).

The loop does not wait for each batch: on CUDA the copy of batch i+1 runs on a side stream
while batch i computes, at most :data:`MAX_BATCHES_AHEAD` batches are queued, and counts stay
on the device until the cell ends (one sync a cell).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import math
import mmap
import os
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from torch.utils.data._utils.pin_memory import pin_memory
from tqdm.auto import tqdm

from .distributed import DistContext, shard_indices

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: uint8 NCHW batch on the device -> float NCHW model input.
Prepare = Callable[[torch.Tensor], torch.Tensor]
#: (uint8 NCHW batch on the device, dataset indices of the batch) -> uint8 NCHW batch.
DeviceTransform = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class BatchDecoder(Protocol):
    """Decodes batches in the main process (workers only read): see ``sources.JpegDecoder``."""

    def collate(self, items: list[tuple[Any, int, int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(payload, label, index) items -> (batch payload, labels, indices) on a worker."""
        ...

    def decode(self, payload: Any, indices: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Batch payload -> uint8 NCHW batch on ``device``."""
        ...


@dataclass(frozen=True)
class Counts:
    """Images seen and top-1 / top-5 hits of one cell."""

    n: int = 0
    correct1: int = 0
    correct5: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.n + other.n, self.correct1 + other.correct1, self.correct5 + other.correct5
        )

    @property
    def top1(self) -> float:
        """Top-1 accuracy as a fraction (NaN for an empty cell)."""
        return self.correct1 / self.n if self.n else float("nan")

    @property
    def top5(self) -> float:
        return self.correct5 / self.n if self.n else float("nan")

    def as_list(self) -> list[int]:
        return [self.n, self.correct1, self.correct5]

    def to_dict(self) -> dict[str, int]:
        return {"n": self.n, "correct1": self.correct1, "correct5": self.correct5}

    @classmethod
    def from_dict(cls, d: dict) -> Counts:
        n, c1, c5 = (int(d[k]) for k in ("n", "correct1", "correct5"))
        if not 0 <= c1 <= c5 <= n:
            raise ValueError(f"inconsistent counts {d}")
        return cls(n, c1, c5)


def check_precision(precision: str, device: torch.device) -> str:
    """fp32 anywhere; bf16 on CUDA and CPU; fp16 only on CUDA (CPU fp16 autocast is refused)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"--precision fp16 needs a CUDA device (got {device}); use bf16 or fp32 on the CPU"
        )
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` (a no-op for fp32)."""
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPES[precision])


@dataclass
class CellJob:
    """One cell for :func:`evaluate_cells`: its dataset and how its batches become model input."""

    dataset: Dataset
    prepare: Prepare
    device_transform: DeviceTransform | None = None
    decoder: BatchDecoder | None = None
    desc: str = ""


class _BatchRing:
    """Batch buffers in shared memory, allocated once per loader and reused round-robin.

    Why: a fresh shared-memory tensor per batch costs its worker an allocation plus a page
    fault and a zeroed page every 4 KB (37.6 MB at batch 250: 22 ms against 3 ms to fill a
    reused buffer, a fifth of the batch's decode time on the 2-core machine), and the main
    process a new mapping that faults again. Workers write batch i into slot
    ``i % slots`` and send only the slot number.

    Reuse is safe because the loader never has more than ``workers * prefetch_factor``
    batches requested but not yet handed to the loop (P), and it requests batch j + P when it
    hands over batch j, into the slot of batch j - RING_SPARE_SLOTS. So a batch's slot stays
    intact until ``RING_SPARE_SLOTS`` (2) more batches have been handed over
    (tests/test_eval.py reads each batch that late while workers race ahead, and one batch
    later as the negative control). The loop is done with a slot by then: on the CPU it has
    computed on it before asking for the next batch; on CUDA the asynchronous copy out of a
    pinned ring is waited for one batch later (:class:`_SlotGuard`), and a ring that is not
    pinned is copied out at once (the DataLoader's pin-memory thread, or the loop itself).

    On CUDA the main process page-locks the ring (:meth:`pin`) so that the device copies
    batches straight out of it: without that, every batch is first copied into pinned memory
    by the DataLoader's pin-memory thread (37.6 MB at batch 250, on every batch, in the process
    that also drives the GPU; pytorch/pytorch#78018). Pinning happens after the workers have
    forked (CUDA may keep locked pages out of children) and is undone before the ring is freed.
    It is done slot by slot, when a slot first brings a batch: locking pages the main process
    has not touched yet costs ~0.3 ms per MB (H100 host: 495 ms for a 1.6 GB ring at once,
    before the first batch, while the GPU idled), so an estimated ~12 ms per slot at batch
    250. A registration blocks the CUDA calls of the process but not the work already queued
    (vllm-project/vllm#51414 measures the stall against the chunk size), so the GPU can go on
    with the batches queued before while the main thread locks the next slot. Slots start on
    page boundaries for that reason.
    """

    _live: weakref.WeakValueDictionary[int, _BatchRing] = weakref.WeakValueDictionary()
    _ids = itertools.count()

    def __init__(self, slots: int, slot_bytes: int) -> None:
        # whole pages per slot, the first on a page boundary: each slot is page-locked on its
        # own (the file_system sharing strategy puts the data 64 bytes into its mapping)
        self.slots = slots
        self.slot_bytes = -(-max(1, slot_bytes) // mmap.PAGESIZE) * mmap.PAGESIZE
        nbytes = slots * self.slot_bytes
        storage = torch.UntypedStorage._new_shared(nbytes + mmap.PAGESIZE)
        whole = torch.empty(0, dtype=torch.uint8).set_(storage)
        start = -whole.data_ptr() % mmap.PAGESIZE
        self.buffer = whole[start : start + nbytes]
        self.id = next(self._ids)
        _BatchRing._live[self.id] = self  # the main process's pin thread finds it by id
        self.locked: set[int] = set()  # slots page-locked for CUDA
        self.refused = False  # CUDA refused a slot: the rest are copied from pageable memory

    @property
    def pinned(self) -> bool | None:
        """True: the slots tried are page-locked; False: CUDA refused; None: none tried."""
        return False if self.refused else (True if self.locked else None)

    def pin(self, k: int, device: torch.device) -> bool:
        """Page-lock slot ``k`` for CUDA copies (main process, the first time the slot brings
        a batch); False if CUDA refuses, with a warning: the loop then copies the batches of
        slots not locked yet from pageable memory (slower)."""
        if k in self.locked:
            return True
        if self.refused:
            return False
        err = _cuda_host_register(self.slot(k).data_ptr(), self.slot_bytes, device)
        if err:
            self.refused = True
            warnings.warn(
                f"could not page-lock the loader's batch buffers for CUDA (cudaHostRegister "
                f"error {err}): batches are copied from pageable memory, which is slower",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        self.locked.add(k)
        return True

    def unpin(self, device: torch.device) -> None:
        """Undo :meth:`pin` for every locked slot (after every copy out of them finished)."""
        failed = [k for k in sorted(self.locked)
                  if _cuda_host_unregister(self.slot(k).data_ptr(), device)]  # fmt: skip
        if failed:
            warnings.warn(f"could not unlock {len(failed)} of the loader's batch buffers",
                          RuntimeWarning, 2)  # fmt: skip
        self.locked.clear()
        self.refused = False

    def slot(self, k: int) -> torch.Tensor:
        """Slot ``k`` as a flat uint8 tensor."""
        return self.buffer[k * self.slot_bytes : (k + 1) * self.slot_bytes]

    @classmethod
    def view(cls, ring_id: int, slot: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The batch of ``shape`` in ``slot`` of the live ring ``ring_id`` (main process)."""
        flat = cls._live[ring_id].slot(slot)
        return flat[: math.prod(shape)].view(shape)


def _cuda_host_register(ptr: int, nbytes: int, device: torch.device) -> int:
    """``cudaHostRegister`` (portable), as torch's own shared-memory staging does; the CUDA
    error code (0: success)."""
    flags = 1  # cudaHostRegisterPortable
    with torch.cuda.device(device):
        return _consumed(int(torch.cuda.cudart().cudaHostRegister(ptr, nbytes, flags)), device)


def _cuda_host_unregister(ptr: int, device: torch.device) -> int:
    """``cudaHostUnregister``; the CUDA error code (0: success)."""
    with torch.cuda.device(device):
        return _consumed(int(torch.cuda.cudart().cudaHostUnregister(ptr)), device)


def _consumed(err: int, device: torch.device) -> int:
    """A failed CUDA runtime call stays the thread's last error and would resurface at the
    next kernel launch as that kernel's failure: one throwaway launch consumes it."""
    if err:
        with contextlib.suppress(RuntimeError):
            torch.ones(1, device=device).add_(1)
    return err


class _SlotGuard:
    """Waits for the copies out of a pinned ring before the loader may hand their slots out
    again (:class:`_BatchRing`: a slot is reused once ``RING_SPARE_SLOTS`` more batches have
    been handed over). One entry per batch handed over: the event of its copy out of the
    ring, or None (nothing read from a pinned ring). ``done()`` before fetching the next
    batch leaves only the last ``RING_SPARE_SLOTS - 1`` batches pending: the previous batch's
    copy (issued a whole iteration ago) is waited for, so the loop rarely waits at all."""

    def __init__(self) -> None:
        self.pending: collections.deque = collections.deque()  # oldest first

    def add(self, event: Any | None) -> None:
        self.pending.append(event)

    def done(self) -> None:
        while len(self.pending) > max(0, RING_SPARE_SLOTS - 1):
            event = self.pending.popleft()
            if event is not None:
                _wait(event)


def _wait(event: Any) -> None:
    """Wait for a CUDA event by polling (sleeping, so other threads of the process run)."""
    while not event.query():
        time.sleep(2e-4)


@dataclass
class _Batch:
    """What a loader worker sends: one cell's batch. ``images`` is uint8 NCHW, or NHWC when
    ``channels_last`` (the fast path of datasets with a ``batch`` method), or a decoder's
    payload; or None when the batch lies in ``slot`` of :class:`_BatchRing` ``ring``
    (``shape``: its NHWC shape)."""

    cell: int
    images: Any
    labels: torch.Tensor
    indices: torch.Tensor
    channels_last: bool = False
    ring: int | None = None
    slot: int = 0
    shape: tuple[int, ...] = ()

    def host_images(self) -> Any:
        """The images on the host (a view into the ring for ring batches)."""
        if self.ring is None:
            return self.images
        return _BatchRing.view(self.ring, self.slot, self.shape)

    def __getstate__(self) -> dict:
        # labels and indices travel inside the pickle, by value (2 KB at batch 250). Why: a
        # tensor is sent as a shared-memory file descriptor, which the receiving thread
        # fetches over a socket from the worker's resource-sharer thread, a round trip to a
        # busy, niced process per tensor and batch, in the main thread when no pin-memory
        # thread runs (ring batches on CUDA). Images (not in a ring) still go by descriptor.
        state = dict(self.__dict__)
        for key in ("labels", "indices"):
            t = state[key].detach().cpu().contiguous()
            raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()  # any dtype, C order
            state[key] = (raw, t.dtype, tuple(t.shape))
        return state

    def __setstate__(self, state: dict) -> None:
        for key in ("labels", "indices"):
            raw, dtype, shape = state[key]
            flat = (
                torch.frombuffer(bytearray(raw), dtype=torch.uint8)
                if raw
                else torch.empty(0, dtype=torch.uint8)  # frombuffer refuses an empty buffer
            )
            state[key] = flat.view(dtype).reshape(shape)
        self.__dict__.update(state)

    def pin_memory(self) -> _Batch:  # called by the DataLoader's pin-memory thread
        return _Batch(
            self.cell,
            pin_memory(self.host_images()),  # a ring slot is free again once copied
            self.labels.pin_memory(),
            self.indices,
            self.channels_last,
        )


@dataclass(frozen=True)
class _Request:
    """What the batch sampler sends a worker: dataset indices and the ring slot to fill."""

    indices: list[int]
    slot: int | None = None


class _Cells(Dataset):
    """The cells of a run as one dataset (global index = cell offset + index), fetched a batch
    at a time: one loader, whose workers stay up across cells, serves the whole run."""

    def __init__(self, jobs: Sequence[CellJob]) -> None:
        self.datasets = [j.dataset for j in jobs]
        self.decoders = [j.decoder for j in jobs]
        self.offsets = [0]
        for d in self.datasets:
            self.offsets.append(self.offsets[-1] + len(d))  # type: ignore[arg-type]
        self.ring: _BatchRing | None = None

    def item_nbytes(self) -> int:
        """Largest first-item size over the cells that batch into a buffer (0: none do)."""
        sizes = [
            ds.item_nbytes()
            for ds, dec in zip(self.datasets, self.decoders, strict=True)
            if dec is None and hasattr(ds, "item_nbytes")
        ]
        return max(sizes, default=0)

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int):  # pragma: no cover - the loader uses __getitems__
        return self.__getitems__([index])

    def __getitems__(self, request: _Request | list[int]) -> _Batch:
        if not isinstance(request, _Request):
            request = _Request(list(request))
        indices = request.indices
        cell = bisect.bisect_right(self.offsets, indices[0]) - 1
        local = [i - self.offsets[cell] for i in indices]
        ds, decoder = self.datasets[cell], self.decoders[cell]
        index = torch.tensor(local)
        if decoder is not None:
            items = [(*ds[i], i) for i in local]
            payload, labels, _ = decoder.collate(items)
            return _Batch(cell, payload, labels, index)
        ring = self.ring if request.slot is not None else None
        out = ring.slot(request.slot) if ring is not None else None
        fast = ds.batch(local, out=out) if hasattr(ds, "batch") else None
        if fast is not None:
            images, labels = fast
            if out is not None and images.data_ptr() == out.data_ptr():  # in the ring
                shape = tuple(images.shape)
                return _Batch(cell, None, labels, index, True, ring.id, request.slot, shape)
            return _Batch(cell, images, labels, index, channels_last=True)
        images, labels = default_collate([ds[i] for i in local])
        return _Batch(cell, images, labels, index)


class _CellBatches(Sampler[_Request]):
    """Each cell's share for this rank (:func:`shard_indices`), in batches that never straddle
    two cells, cell after cell (generated lazily: no per-image list for the whole run)."""

    def __init__(self, offsets: list[int], batch_size: int, rank: int, world_size: int) -> None:
        self.shares = []
        for lo, hi in itertools.pairwise(offsets):
            mine = shard_indices(hi - lo, rank, world_size)
            self.shares.append(range(lo + mine.start, lo + mine.stop, mine.step))
        self.batch_size = batch_size
        self.slots: int | None = None  # batch i -> ring slot i % slots (None: no ring)

    def __iter__(self) -> Iterator[_Request]:
        i = 0
        for mine in self.shares:
            for k in range(0, len(mine), self.batch_size):
                slot = i % self.slots if self.slots else None
                yield _Request(list(mine[k : k + self.batch_size]), slot)
                i += 1

    def __len__(self) -> int:
        return sum(-(-len(mine) // self.batch_size) for mine in self.shares)


def _identity(batch: _Batch) -> _Batch:
    return batch


#: Niceness added to loader workers. Why: workers decoding on every core starve the main
#: thread, which launches the model's kernels; the GPU then waits on the CPU.
WORKER_NICENESS = 10


def _lower_priority(_: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.nice(WORKER_NICENESS)


#: Batches each worker may have requested ahead (DataLoader's ``prefetch_factor``).
PREFETCH_FACTOR = 4
#: Ring slots beyond the batches the loader may have requested ahead (:class:`_BatchRing`).
RING_SPARE_SLOTS = 2


def _ring_slots(workers: int) -> int:
    """Slots of the :class:`_BatchRing` of a loader with ``workers`` workers: the batches it
    may have requested ahead, plus the spare ones."""
    return max(1, workers * PREFETCH_FACTOR + RING_SPARE_SLOTS)


def make_loader(
    jobs: Sequence[CellJob],
    *,
    batch_size: int,
    workers: int,
    device: torch.device,
    ctx: DistContext | None = None,
    reuse_buffers: bool = True,
    pin_ring: bool = True,
) -> DataLoader:
    """One sharded, pinned (on CUDA), prefetching loader of :class:`_Batch` over all ``jobs``.

    ``reuse_buffers``: workers write batches into a :class:`_BatchRing` (False: a new
    shared-memory tensor per batch, the baseline of benchmarks/eval_throughput.py).
    ``pin_ring``: on CUDA, ring batches reach the loop as they are, for
    :func:`evaluate_batches` to copy straight out of the page-locked ring (False: the
    DataLoader's pin-memory thread copies each into pinned memory first, the old path).
    """
    ctx = ctx or DistContext(device=device)
    cells = _Cells(jobs)
    prefetch = PREFETCH_FACTOR if workers > 0 else None
    sampler = _CellBatches(cells.offsets, batch_size, ctx.rank, ctx.world_size)
    item_nbytes = cells.item_nbytes() if reuse_buffers and len(sampler) else 0
    if item_nbytes:
        # P + spare slots (see _BatchRing), or one per batch if there are fewer batches;
        # a slot holds the largest batch this rank will see
        slots = min(_ring_slots(workers), len(sampler))
        largest = min(batch_size, max(len(share) for share in sampler.shares))
        cells.ring = _BatchRing(slots, largest * item_nbytes)
        sampler.slots = slots
    return DataLoader(
        cells,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda" and not (cells.ring is not None and pin_ring),
        prefetch_factor=prefetch,
        persistent_workers=False,
        collate_fn=_identity,
        worker_init_fn=_lower_priority if workers > 0 else None,
    )


class _ToDevice:
    """Host -> device copies; on CUDA on a side stream, so the copy of the next batch overlaps
    the model's work on the current one (the compute stream waits only for its own batch)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if self.stream is None:
            return t.to(self.device)
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.stream):
            out = t.to(self.device, non_blocking=True)
        compute.wait_stream(self.stream)
        out.record_stream(compute)  # memory allocated on the side stream, used on compute
        return out

    def copied(self) -> Any:
        """A CUDA event that completes when the copies issued so far have read their source."""
        event = torch.cuda.Event()
        event.record(self.stream)
        return event


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode, on ``device``, channels_last (weights stay fp32; autocast casts on the fly)."""
    return model.eval().to(device=device, memory_format=torch.channels_last)


#: Batches the main thread may queue on the GPU ahead of the one running.
MAX_BATCHES_AHEAD = 2


def _bound_run_ahead(in_flight: collections.deque, device: torch.device) -> None:
    """Record this batch's event; wait (sleeping, so the loader's threads run) while more than
    :data:`MAX_BATCHES_AHEAD` batches are queued on the GPU. Why: an unbounded main thread
    only fills CUDA's launch queue and holds every queued batch's device memory."""
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    in_flight.append(event)
    while len(in_flight) > MAX_BATCHES_AHEAD:
        _wait(in_flight.popleft())


@dataclass
class LoopStats:
    """Where the main thread of :func:`evaluate_batches` spent its time (seconds): waiting for
    the loader's next batch (``data_wait_s``: the loader is the bottleneck), for the GPU to
    drain its queue (``gpu_wait_s``: the device is), and the rest (copies, launches).
    A run logs it at its end (``runner.log_waits``); benchmarks/eval_throughput.py prints it."""

    batches: int = 0
    total_s: float = 0.0
    data_wait_s: float = 0.0
    gpu_wait_s: float = 0.0
    ring_pinned: bool | None = None  # the loader's ring was page-locked (None: no ring used)
    pin_s: float = 0.0  # page-locking ring slots (part of the rest, not of the waits)
    first_batch_s: float = 0.0  # until each loader's first batch: start-up (in data_wait_s)


def evaluate_cells(
    model: nn.Module,
    jobs: Sequence[CellJob],
    *,
    device: torch.device,
    batch_size: int = 64,
    workers: int = 0,
    precision: str = "fp32",
    ctx: DistContext | None = None,
    progress: bool = True,
    on_cell: Callable[[int, Counts], None] | None = None,
    reuse_buffers: bool = True,
    pin_ring: bool = True,
    stats: LoopStats | None = None,
) -> list[Counts]:
    """Top-1/top-5 counts of ``model`` on this rank's share of each job's dataset.

    One loader serves all cells, so its workers start once and the next cell's images are
    decoding while the last batches of a cell compute. ``on_cell(i, counts)`` is called as
    soon as cell ``i`` is complete, in cell order on every rank (so it may all-reduce and
    cache). Each dataset yields (uint8 3xHxW tensor, label) (or what its job's ``decoder``
    collates). ``model`` must already be prepared with :func:`prepare_model`. The counts are
    this process's only: sum them over ranks with :func:`~.distributed.all_reduce_sum`.
    ``reuse_buffers``, ``pin_ring``: see :func:`make_loader`; ``stats``: see
    :func:`evaluate_batches`.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    check_precision(precision, device)
    ctx = ctx or DistContext(device=device)
    if not jobs:
        return []
    loader = make_loader(
        jobs,
        batch_size=batch_size,
        workers=workers,
        device=device,
        ctx=ctx,
        reuse_buffers=reuse_buffers,
        pin_ring=pin_ring,
    )
    return evaluate_batches(
        model, jobs, loader, device=device, precision=precision, ctx=ctx,
        progress=progress, on_cell=on_cell, stats=stats,
    )  # fmt: skip


def evaluate_batches(
    model: nn.Module,
    jobs: Sequence[CellJob],
    batches: Iterable[_Batch],
    *,
    device: torch.device,
    precision: str = "fp32",
    ctx: DistContext | None = None,
    progress: bool = True,
    on_cell: Callable[[int, Counts], None] | None = None,
    stats: LoopStats | None = None,
) -> list[Counts]:
    """The device half of :func:`evaluate_cells`: counts of ``model`` on ``batches`` (what
    :func:`make_loader` yields, cells in order). Separate so that
    benchmarks/eval_throughput.py can time it on preloaded batches, without the loader.
    ``stats``, if given, receives where the time went (:class:`LoopStats`)."""
    check_precision(precision, device)
    ctx = ctx or DistContext(device=device)
    results: list[Counts] = []

    def close_cells(upto: int, current: int, totals: torch.Tensor | None) -> None:
        """Cells before ``upto`` are complete: ``current`` gets ``totals`` (one sync), cells
        this rank had no images of get zeros."""
        while len(results) < upto:
            i = len(results)
            counts = Counts(*(int(v) for v in totals.tolist())) if i == current else Counts()
            results.append(counts)
            if on_cell is not None:
                on_cell(i, counts)

    to_device = _ToDevice(device)
    in_flight: collections.deque = collections.deque()  # CUDA events of queued batches
    guard = _SlotGuard()  # copies still reading a pinned ring's slot
    rings: list[_BatchRing] = []  # rings this call page-locked (unlocked at the end)
    totals = None  # n, top-1, top-5 of the current cell, on the device until the cell ends
    current = -1
    stats = stats if stats is not None else LoopStats()
    start = clock = time.perf_counter()
    first = True
    # the bar is given no iterable: tqdm.auto's class calls iter() on one when it is created
    # (tqdm/tqdm#1598), which on a DataLoader starts a second set of workers that prefetch
    # batches nobody reads (into the same ring slots)
    total = len(batches) if hasattr(batches, "__len__") else None
    bar = tqdm(total=total, unit="batch", leave=False, disable=not (progress and ctx.is_main))
    try:
        with torch.inference_mode():
            for batch in batches:
                arrived = time.perf_counter()
                stats.data_wait_s += arrived - clock
                if first:
                    first = False  # start-up summed over the loaders of a run
                    stats.first_batch_s += arrived - start
                if batch.cell != current:
                    close_cells(batch.cell, current, totals)
                    current = batch.cell
                    totals = torch.zeros(3, dtype=torch.int64, device=device)
                    bar.set_description(jobs[current].desc)
                job = jobs[current]
                labels = to_device(batch.labels)
                copied = None  # the event of a copy out of a pinned ring
                if job.decoder is not None:
                    images = job.decoder.decode(batch.images, batch.indices, device)
                else:
                    images, copied = _copy_images(batch, to_device, rings, stats)
                    if batch.channels_last:
                        images = images.permute(0, 3, 1, 2)  # NCHW view, channels_last strides
                if job.device_transform is not None:
                    images = job.device_transform(images.contiguous(), batch.indices)
                x = job.prepare(images).contiguous(memory_format=torch.channels_last)
                with autocast(device, precision):
                    logits = model(x)
                logits = logits.float()
                k = min(5, logits.shape[1])
                top = logits.topk(k, dim=1).indices
                totals[0] += labels.numel()
                totals[1] += (logits.argmax(dim=1) == labels).sum()
                totals[2] += (top == labels[:, None]).any(dim=1).sum()
                stats.batches += 1
                bar.update()
                clock = time.perf_counter()
                if device.type == "cuda":
                    guard.add(copied)
                    guard.done()  # before the loader may hand out the slot again
                    _bound_run_ahead(in_flight, device)
                    now = time.perf_counter()
                    stats.gpu_wait_s, clock = stats.gpu_wait_s + now - clock, now
        close_cells(len(jobs), current, totals)
    finally:
        bar.close()
        try:
            if rings:
                torch.cuda.synchronize(device)  # no copy reads a ring any more
        finally:
            for ring in rings:
                ring.unpin(device)
    stats.total_s += time.perf_counter() - start
    return results


def _copy_images(
    batch: _Batch, to_device: _ToDevice, rings: list[_BatchRing], stats: LoopStats
) -> tuple[torch.Tensor, Any | None]:
    """A host batch's images on the device, and the event of the copy if it reads a pinned
    ring asynchronously (None: the source is free when this returns). A ring batch on CUDA is
    copied straight out of its slot once the slot is page-locked (on its first batch, i.e.
    after the workers forked). Copies from pageable memory (a ring CUDA refused; the labels)
    return once CUDA has staged the source, so they free it at once."""
    pinned = False
    if batch.ring is not None and to_device.stream is not None:
        ring = _BatchRing._live[batch.ring]
        if not any(r is ring for r in rings):
            rings.append(ring)  # unlocked at the end of the loop
        t0 = time.perf_counter()
        pinned = ring.pin(batch.slot, to_device.device)
        stats.pin_s += time.perf_counter() - t0
        if stats.ring_pinned is not False:  # a refusal stays on record for the run
            stats.ring_pinned = ring.pinned
    images = to_device(batch.host_images())
    return images, to_device.copied() if pinned else None


def evaluate_cell(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device,
    prepare: Prepare,
    batch_size: int = 64,
    workers: int = 0,
    precision: str = "fp32",
    ctx: DistContext | None = None,
    device_transform: DeviceTransform | None = None,
    decoder: BatchDecoder | None = None,
    desc: str = "",
    progress: bool = True,
    reuse_buffers: bool = True,
    pin_ring: bool = True,
    stats: LoopStats | None = None,
) -> Counts:
    """:func:`evaluate_cells` for one cell."""
    job = CellJob(dataset, prepare, device_transform, decoder, desc)
    (counts,) = evaluate_cells(
        model,
        [job],
        device=device,
        batch_size=batch_size,
        workers=workers,
        precision=precision,
        ctx=ctx,
        progress=progress,
        reuse_buffers=reuse_buffers,
        pin_ring=pin_ring,
        stats=stats,
    )
    return counts
