"""torch.distributed helpers: one process per GPU under ``torchrun``, exact sharded counts.

The evaluation only ever sums integer counts across processes, so the protocol is small:
each rank evaluates the images ``rank::world_size`` of a cell (no padding, no duplicates,
unlike ``DistributedSampler``), the per-rank counts are all-reduced with a sum, and rank 0
alone reads/writes the cache and the result files. A single process (no ``WORLD_SIZE`` or
``WORLD_SIZE=1``) never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the number of processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(
    spec: str | None, local_rank: int = 0, distributed: bool = False
) -> torch.device:
    """``--device`` -> torch.device: default CUDA when available; one GPU per rank under torchrun.

    A bad spec or an unavailable CUDA device is a ValueError naming it.
    """
    if spec in (None, "", "auto"):
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(
            f"--device {spec!r} is not a torch device (e.g. cpu, cuda, cuda:1)"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {spec}: CUDA is not available on this machine")
        if distributed:
            device = torch.device("cuda", local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    elif device.type in ("mps", "xpu"):
        backend = torch.backends.mps if device.type == "mps" else getattr(torch, "xpu", None)
        if backend is None or not backend.is_available():
            raise ValueError(f"--device {spec}: {device.type} is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"--device {spec!r}: expected cpu or cuda[:N]")
    return device


def init_distributed(device_spec: str | None = None) -> DistContext:
    """Read torchrun's environment; with WORLD_SIZE > 1 join the group (env:// rendezvous).

    NCCL for CUDA devices, gloo otherwise (CPU runs and the tests).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=resolve_device(device_spec))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(device_spec, local_rank, distributed=True)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return DistContext(rank, world_size, local_rank, device, backend)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (if we are in one)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[int], ctx: DistContext) -> list[int]:
    """Sum integer counts over all ranks (int64, exact); identity in a single process."""
    if not ctx.distributed:
        return [int(v) for v in values]
    device = ctx.device if ctx.backend == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [int(v) for v in t.tolist()]


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. which cells the cache already holds)."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.backend == "nccl" else None)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def shard_indices(n: int, rank: int, world_size: int) -> range:
    """The dataset indices of one rank: ``rank, rank + world_size, ...`` (all ranks: each once)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    return range(rank, n, world_size)
