"""Throughput (and FLOPs) of the assembled family relative to resnet50, measured in one run.

CPU (short, default)::

    python benchmarks/models.py --batch-size 4 --iters 3

GPU (the paper measured fp32, batch 64 on a P40; ratios are what compare across hardware)::

    python benchmarks/models.py --device cuda --precision bf16 --channels-last --batch-size 64

``--flops`` adds multiply-adds from ``torch.utils.flop_counter`` at 224 and 256 (FLOPs / 2, the
paper's convention). Prints a Markdown table; ``--json PATH`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from robustbench_assemble.models.registry import registered

# Paper Table 7: img/s on one P40 (fp32, batch 64) and FLOPs (multiply-adds, 224 unless noted).
PAPER = {
    "resnet50": (536, 4.1),
    "resnet50d": (493, 4.4),
    "resnet50d_se": (420, None),
    "resnet50d_sk": (359, 6.2),
    "resnet50d_sk_bl": (359, 5.4),
    "resnet50d_sk_bl_aa": (312, 7.2),
    "assemble_r50": (312, None),
    "assemble_r152": (143, 15.8),
}
DEFAULT_MODELS = list(PAPER) + ["mobilenet_v1", "se_mobilenet_v1", "se_mobilenet_v1_r2"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    model: torch.nn.Module,
    size: int,
    batch: int,
    iters: int,
    warmup: int,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool,
) -> float:
    """Images per second of ``model`` in eval mode (no grad), after ``warmup`` batches."""
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        _sync(device)
        elapsed = time.perf_counter() - t0
    return batch * iters / elapsed


def macs(model: torch.nn.Module, size: int) -> float:
    """Multiply-adds of one forward pass at ``size`` (FlopCounterMode counts 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, size, size, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return fc.get_total_flops() / 2


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", type=int, default=224, help="input side for the throughput")
    ap.add_argument("--flops", action="store_true", help="also count MACs at 224 and 256")
    ap.add_argument("--json", default=None, help="write the rows to this file (atomically)")
    args = ap.parse_args(argv)

    reg = registered()
    unknown = [m for m in args.models if m not in reg]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; registered: {sorted(reg)}")
    if "resnet50" not in args.models:
        args.models = ["resnet50", *args.models]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    rows = []
    for name in args.models:
        torch.manual_seed(0)
        model = reg[name].builder(num_classes=1000).eval().to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        row = {"model": name, "params_M": sum(p.numel() for p in model.parameters()) / 1e6}
        row["img_s"] = throughput(
            model,
            args.size,
            args.batch_size,
            args.iters,
            args.warmup,
            device,
            dtype,
            args.channels_last,
        )
        if args.flops:
            row["gmacs_224"] = macs(model, 224) / 1e9
            row["gmacs_256"] = macs(model, 256) / 1e9
        rows.append(row)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    base = next(r["img_s"] for r in rows if r["model"] == "resnet50")
    for r in rows:
        r["ratio"] = r["img_s"] / base
        paper = PAPER.get(r["model"])
        r["paper_ratio"] = paper[0] / PAPER["resnet50"][0] if paper else None
        r["paper_gmacs"] = paper[1] if paper else None

    env = (
        f"device={device}"
        f" ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}),"
        f" precision={args.precision}, channels_last={args.channels_last},"
        f" batch={args.batch_size}, iters={args.iters}, size={args.size},"
        f" threads={torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(env)
    head = "| model | params (M) | img/s | / resnet50 | paper / resnet50 |"
    sep = "|---|---:|---:|---:|---:|"
    if args.flops:
        head += " GMACs 224 | GMACs 256 | paper GFLOPs |"
        sep += "---:|---:|---:|"
    print(head)
    print(sep)
    for r in rows:
        pr = f"{r['paper_ratio']:.3f}" if r["paper_ratio"] else "-"
        line = (
            f"| {r['model']} | {r['params_M']:.2f} | {r['img_s']:.1f} | {r['ratio']:.3f} | {pr} |"
        )
        if args.flops:
            pg = f"{r['paper_gmacs']}" if r["paper_gmacs"] else "-"
            line += f" {r['gmacs_224']:.2f} | {r['gmacs_256']:.2f} | {pg} |"
        print(line)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=1)
        os.replace(tmp, args.json)
    return rows


if __name__ == "__main__":
    main()
