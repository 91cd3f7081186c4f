"""Streaming evaluation of one cell: images -> DataLoader workers -> device -> model -> counts.

Nothing but three integers survives a batch, so memory does not grow with the dataset.
Workers decode JPEGs to uint8 tensors on the CPU; the uint8 batch is copied to the device
(pinned memory, non-blocking on CUDA: a quarter of the bytes of float32), where optional
on-the-fly corruption, the resize policy and normalisation run; the model runs under
``torch.inference_mode``, in ``channels_last`` and, if asked, under bf16/fp16 autocast.
With a :class:`BatchDecoder` (``--decode gpu``) workers only read the compressed bytes and the
main process decodes the whole batch on the device (a tenth of the bytes through worker IPC).

Nothing in the loop waits for the GPU: on CUDA the copy of batch i+1 runs on a side stream
while batch i computes, and counts stay on the device until the cell ends (one sync a cell).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .distributed import DistContext, ShardSampler

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


class _Indexed(Dataset):
    """Adds the dataset index to each item, so on-the-fly corruption can seed by image."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return x, y, index


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    device: torch.device,
    ctx: DistContext | None = None,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """Sharded, pinned (on CUDA), prefetching loader of (uint8 images, labels, indices)
    (or of a decoder's payloads, with its ``collate_fn``)."""
    ctx = ctx or DistContext(device=device)
    sampler = ShardSampler(len(dataset), ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    return DataLoader(
        _Indexed(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
        drop_last=False,
        collate_fn=collate_fn,
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


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode, on ``device``, channels_last (weights stay fp32; autocast casts on the fly)."""
    return model.eval().to(device=device, memory_format=torch.channels_last)


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
) -> Counts:
    """Top-1/top-5 counts of ``model`` on this rank's share of ``dataset``.

    ``dataset`` yields (uint8 3xHxW tensor, label). ``model`` must already be prepared with
    :func:`prepare_model`. The counts are this process's only: sum them over ranks with
    :func:`~.distributed.all_reduce_sum`. With ``decoder``, ``dataset`` yields what its
    ``collate`` expects and ``decoder.decode`` makes the uint8 batch on the device.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    check_precision(precision, device)
    ctx = ctx or DistContext(device=device)
    loader = make_loader(
        dataset,
        batch_size=batch_size,
        workers=workers,
        device=device,
        ctx=ctx,
        collate_fn=decoder.collate if decoder is not None else None,
    )
    to_device = _ToDevice(device)
    n = torch.zeros((), dtype=torch.int64, device=device)
    c1 = torch.zeros((), dtype=torch.int64, device=device)
    c5 = torch.zeros((), dtype=torch.int64, device=device)
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not (progress and ctx.is_main))
    with torch.inference_mode():
        for payload, labels, indices in bar:
            labels = to_device(labels)
            if decoder is not None:
                images = decoder.decode(payload, indices, device)
            else:
                images = to_device(payload)
            if device_transform is not None:
                images = device_transform(images, indices)
            x = prepare(images).contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                logits = model(x)
            logits = logits.float()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            c1 += (logits.argmax(dim=1) == labels).sum()
            c5 += (top == labels[:, None]).any(dim=1).sum()
            n += labels.numel()
    return Counts(int(n), int(c1), int(c5))
