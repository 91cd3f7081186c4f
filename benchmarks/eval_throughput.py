"""Throughput and memory of the evaluation harness against the model's pure forward pass.

    python benchmarks/eval_throughput.py [--data VAL_DIR] [--model resnet50] [--device cuda]
        [--precision bf16] [--batch-size 256] [--workers 16] [--images 1000] [--repeat 8]

1. Writes the first ``--images`` photos of ``--data`` (default: the shared 1,000-image sample)
   as 224x224 JPEG q85 frames in a temporary ImageNet-C-like cell, as ImageNet-C stores them.
2. Harness: :func:`robustbench_assemble.eval.loop.evaluate_cell` on that cell (files on disk ->
   DataLoader workers -> uint8 pinned copy -> device normalisation -> model), the cell repeated
   ``--repeat`` times; images/s over the whole call (worker start-up included).
3. Pure forward: the same model, batch size and precision on batches already normalised on the
   device, the same number of images; images/s.
4. Streaming: the harness in a fresh subprocess on 100 and 400 images (``--mem-sizes``); peak
   RSS of the main process and (CUDA) max allocated memory should not grow with the size.

Prints a table and one JSON line. Model weights do not matter for timing: untrained models are
evaluated as they are (random init).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared/data/imagenet-sample/val"


class Repeat(Dataset):
    """``dataset`` ``times`` times over (for a long enough timing on a small sample)."""

    def __init__(self, dataset: Dataset, times: int) -> None:
        self.dataset, self.times = dataset, times

    def __len__(self) -> int:
        return len(self.dataset) * self.times  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        return self.dataset[i % len(self.dataset)]  # type: ignore[arg-type]


def write_frames(data: Path, n: int, out: Path) -> Path:
    """The first n images (select_subset order) as 224 q85 JPEGs in ``out/contrast/1/<wnid>/``."""
    from PIL import Image

    from robustbench_assemble.datasets.imagenet import index_folder, select_subset
    from robustbench_assemble.images import load_benchmark_image

    _, samples = index_folder(data)
    for s in select_subset(samples, n):
        target = out / "contrast" / "1" / s.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(load_benchmark_image(s.path)).save(
            target, "JPEG", quality=85, optimize=True
        )
    return out


def setup(args):
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.distributed import resolve_device
    from robustbench_assemble.eval.loop import prepare_model
    from robustbench_assemble.eval.modelio import load_model

    device = resolve_device(args.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        io = load_model(args.model, resize_policy="as-is")
    model = prepare_model(io.model, device)
    classes = find_classes(args.data)
    cell = ImageNetC(args.frames, "contrast", 1, classes)
    return device, io, model, cell


def run_harness(args, device, io, model, dataset) -> tuple[float, int]:
    from robustbench_assemble.eval.loop import evaluate_cell

    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    counts = evaluate_cell(
        model, dataset, device=device, prepare=io.frame_prepare, batch_size=args.batch_size,
        workers=args.workers, precision=args.precision, progress=False,
    )  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, counts.n


def run_forward(args, device, io, model, n_images: int) -> float:
    from robustbench_assemble.eval.loop import autocast

    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (args.batch_size, 3, 224, 224), dtype=torch.uint8, generator=g)
    x = io.frame_prepare(x8.to(device)).contiguous(memory_format=torch.channels_last)
    n_batches = max(1, -(-n_images // args.batch_size))
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            with autocast(device, args.precision):
                model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n_batches):
            with autocast(device, args.precision):
                logits = model(x)
            logits.float().argmax(1)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n_batches * args.batch_size / (time.perf_counter() - t0)


def memory_probe(args) -> dict:
    """Evaluate ``--images`` frames once; report this process's peak memory."""
    device, io, model, cell = setup(args)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, n = run_harness(args, device, io, model, cell)
    return {
        "images": n,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cuda_max_allocated_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.type == "cuda"
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--device", default=None)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--images", type=int, default=None, help="frames written (cuda 1000, cpu 64)")
    p.add_argument("--repeat", type=int, default=None, help="passes over them (cuda 10, cpu 1)")
    p.add_argument("--mem-sizes", default="100,400", help="dataset sizes of the memory probe")
    p.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    args.batch_size = args.batch_size or (256 if cuda else 32)
    args.images = args.images or (1000 if cuda else 64)
    args.repeat = args.repeat or (10 if cuda else 1)
    if args.probe:
        print(json.dumps(memory_probe(args)))
        return 0
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data}: folder not found")

    sizes = [int(s) for s in args.mem_sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        args.frames = write_frames(args.data, max([args.images, *sizes]), Path(tmp) / "frames")
        device, io, model, cell = setup(args)
        from torch.utils.data import Subset

        data = Repeat(Subset(cell, range(min(args.images, len(cell)))), args.repeat)
        run_harness(args, device, io, model, Subset(cell, range(args.batch_size)))  # warm-up
        seconds, n = run_harness(args, device, io, model, data)
        harness = n / seconds
        forward = run_forward(args, device, io, model, n)
        probes = []
        for size in sizes:
            cmd = [sys.executable, __file__, "--probe", "--frames", str(args.frames)]
            cmd += ["--data", str(args.data), "--model", args.model, "--precision", args.precision]
            cmd += ["--batch-size", str(args.batch_size), "--workers", str(args.workers)]
            cmd += ["--images", str(size)] + (["--device", args.device] if args.device else [])
            # the probe reads a cell of exactly `size` frames
            sub = Path(tmp) / f"frames{size}"
            write_subset(args.frames, sub, size)
            cmd[cmd.index("--frames") + 1] = str(sub)
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            probes.append(json.loads(out.strip().splitlines()[-1]))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"\n{args.model} {args.precision} batch {args.batch_size} workers {args.workers} on {name}"
    )
    print(f"  harness (files -> loader -> device -> model): {harness:8.1f} img/s ({n} images)")
    print(f"  pure forward (preloaded device tensors):      {forward:8.1f} img/s")
    print(f"  harness / forward: {harness / forward:.3f}")
    for pr in probes:
        print(
            f"  {pr['images']:5d} images: peak RSS {pr['peak_rss_mb']:8.1f} MB, "
            f"CUDA max allocated {pr['cuda_max_allocated_mb']} MB"
        )
    result = {
        "model": args.model, "device": name, "precision": args.precision,
        "batch_size": args.batch_size, "workers": args.workers, "images": n,
        "harness_img_s": round(harness, 1), "forward_img_s": round(forward, 1),
        "ratio": round(harness / forward, 3), "memory": probes,
    }  # fmt: skip
    print(json.dumps(result))
    return 0


def write_subset(frames: Path, out: Path, n: int) -> None:
    """Hard-link the first n frames (sorted) into another cell folder."""
    src = frames / "contrast" / "1"
    files = sorted(src.glob("*/*"))[:n]
    for f in files:
        target = out / "contrast" / "1" / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)


if __name__ == "__main__":
    sys.exit(main())
