"""Throughput and memory of the evaluation harness against the model's pure forward pass.

    python benchmarks/eval_throughput.py [--data VAL_DIR] [--model resnet50] [--device cuda]
        [--precision bf16] [--batch-size 250] [--workers 12,16] [--images 250] [--repeat 100]
        [--cells 5] [--decode cpu,pil,gpu] [--buffers reuse,reuse-copy,fresh] [--loader-only]
        [--mem-sizes 100,400]

1. Writes the first ``--images`` photos of ``--data`` (default: the shared 1,000-image sample)
   as 224x224 JPEG q85 frames, as ImageNet-C stores them, and makes ``--cells`` cells of
   ``images x repeat / cells`` frames each (the frames read over and over; on CUDA by default
   250 x 100 = 25,000 images in 5 cells, like 5 severities of one corruption).
2. Decode cost on one core of this machine: ms per frame of the harness's decoder (``cpu``:
   simplejpeg's libjpeg-turbo, PIL's pixels exactly; what bounds the loader: cores / that =
   its ceiling), of PIL alone (``pil``, the baseline) and of reading the bytes (``gpu``).
3. For each ``--decode`` mode (``cpu`` what runs use; ``pil`` the PIL-only baseline; ``gpu``
   nvjpeg, only on CUDA) and each ``--workers`` count: (a) loader:
   the bare DataLoader of the harness over all cells, iterated and dropped; (b) harness:
   :func:`robustbench_assemble.eval.loop.evaluate_cells` over all cells (files -> workers ->
   device -> [nvjpeg] -> normalisation -> model -> counts), the way a run evaluates them: one
   loader for the run, worker start-up included.
   With ``cpu`` and ``pil`` each is timed per ``--buffers`` mode, interleaved: workers writing
   into the loader's reused shared-memory batch buffers (``reuse``, what runs use: on CUDA the
   main process page-locks them and copies batches straight out of them), the same with the
   DataLoader's pin-memory thread copying every batch into pinned memory first
   (``reuse-copy``, CUDA only, the path before the ring was page-locked), and a new
   shared-memory tensor per batch (``fresh``, the baseline). On CUDA the bare loader of
   ``reuse`` hands over batches without any copy (the loop copies them), that of
   ``reuse-copy`` and ``fresh`` includes the pin-memory thread's. Each harness run also
   reports where its main thread waited (``loop.LoopStats``: for the loader's next batch, for
   the GPU), its start-up (until the first batch), the time spent page-locking ring slots,
   and its rate from the first batch on (start-up left out: a run's loader serves 5 cells
   of 50,000 images, 10x this benchmark's default, so its start-up weighs 10x less). With
   ``--cell-by-cell`` also (c): :func:`evaluate_cell` once per cell (a new loader per cell,
   as before 2026-11-26). ``--loader-only`` skips (b)-(d) and the memory
   probe.
4. (d) Pure forward: the same model, batch size and precision on a batch already normalised on
   the device, the same number of images. (e) The harness's device half
   (:func:`~robustbench_assemble.eval.loop.evaluate_batches`: copy, normalisation, model,
   counts) on one cell's batches preloaded in (pinned) host memory, replayed for every cell,
   no loader running: the main process's own ceiling, so (d) -> (e) is its per-batch overhead
   and (e) -> (b) what running beside the loader costs (decode ``cpu``). (f) CUDA: the cost
   of page-locking a ring of the size the first ``--workers`` count uses, slot by slot, its
   pages written by a child process and untouched by this one, as in a run (once per
   loader, i.e. per 5 cells of a run).
5. Streaming: the harness (decode cpu) in a fresh subprocess on 100 and 400 images
   (``--mem-sizes``, empty to skip); peak RSS of the main process and (CUDA) max allocated
   memory should not grow with the size.

Prints a table and one JSON line. Model weights do not matter for timing: untrained models are
evaluated as they are (random init).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared/data/imagenet-sample/val"


def write_frames(data: Path, n: int, out: Path) -> Path:
    """The first n images (select_subset order) as 224 q85 JPEGs in ``out/contrast/1/<wnid>/``."""
    from PIL import Image

    from robustbench_assemble.datasets.imagenet import index_folder, select_subset
    from robustbench_assemble.images import load_benchmark_image

    def one(s) -> None:
        target = out / "contrast" / "1" / s.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(load_benchmark_image(s.path)).save(
            target, "JPEG", quality=85, optimize=True
        )

    _, samples = index_folder(data)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # PIL releases the GIL
        list(pool.map(one, select_subset(samples, n)))
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


def jobs_for(io, cells, decode: str):
    """The harness's CellJobs for ImageNetC ``cells`` under ``decode``."""
    from robustbench_assemble.eval.loop import CellJob
    from robustbench_assemble.eval.sources import JpegBytes, JpegDecoder

    if decode == "gpu":
        return [
            CellJob(JpegBytes(c.samples), io.frame_prepare, decoder=JpegDecoder(c.samples))
            for c in cells
        ]
    jobs = []
    for c in cells:
        c = copy.copy(c)
        c.fast_jpeg = decode == "cpu"  # "pil": PIL only, the baseline
        jobs.append(CellJob(c, io.frame_prepare))
    return jobs


def make_cells(cell, frames, per_cell: int, n_cells: int):
    """``n_cells`` copies of ``cell`` reading ``per_cell`` of ``frames`` (cycled) each."""
    out = []
    for _ in range(n_cells):
        c = copy.copy(cell)
        c.samples = [frames[i % len(frames)] for i in range(per_cell)]
        out.append(c)
    return out


def decode_cost(cell, frames) -> dict:
    """ms per frame on one core: the harness's decode, PIL's, and reading the bytes."""
    from robustbench_assemble.eval.sources import read_jpeg_bytes

    pil = copy.copy(cell)
    pil.fast_jpeg = False
    out = {}
    for name, fn in (
        ("decode_ms", cell.image),
        ("pil_decode_ms", pil.image),
        ("read_bytes_ms", lambda s: read_jpeg_bytes(s.path)),
    ):
        fn(frames[0])
        t0 = time.perf_counter()
        for s in frames:
            fn(s)
        out[name] = round((time.perf_counter() - t0) / len(frames) * 1e3, 4)
    return out


#: --buffers mode -> (reuse_buffers, pin_ring) of make_loader / evaluate_cells.
BUFFER_MODES = {"reuse": (True, True), "reuse-copy": (True, False), "fresh": (False, True)}


def run_loader(args, device, jobs, workers: int, buffers: str = "reuse") -> float:
    """Images/s of the bare DataLoader (batches fetched, nothing else)."""
    from robustbench_assemble.eval.loop import make_loader

    reuse, pin_ring = BUFFER_MODES[buffers]
    loader = make_loader(jobs, batch_size=args.batch_size, workers=workers, device=device,
                         reuse_buffers=reuse, pin_ring=pin_ring)  # fmt: skip
    t0 = time.perf_counter()
    n = sum(len(b.labels) for b in loader)
    return n / (time.perf_counter() - t0)


def run_harness(args, device, model, jobs, workers: int, cell_by_cell=False, buffers="reuse"):
    """(seconds, images, :class:`~robustbench_assemble.eval.loop.LoopStats`) of the harness."""
    from robustbench_assemble.eval.loop import LoopStats, evaluate_cell, evaluate_cells

    reuse, pin_ring = BUFFER_MODES[buffers]
    stats = LoopStats()
    kw = dict(device=device, batch_size=args.batch_size, workers=workers,
              precision=args.precision, progress=False, reuse_buffers=reuse,
              pin_ring=pin_ring, stats=stats)  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    if cell_by_cell:
        counts = [
            evaluate_cell(model, j.dataset, prepare=j.prepare, decoder=j.decoder, **kw)
            for j in jobs
        ]
    else:
        counts = evaluate_cells(model, jobs, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sum(c.n for c in counts), stats


def pin_cost(args, workers: int) -> dict:
    """Milliseconds to page-lock (and unlock) a ring of the size a loader with ``workers``
    workers allocates at ``--batch-size`` for 224 frames (CUDA), slot by slot as the loop
    does, its pages written by a child process (as the workers do) and not yet touched by
    this one."""
    from robustbench_assemble.eval import loop

    slots = loop._ring_slots(workers)
    ring = loop._BatchRing(slots, args.batch_size * 224 * 224 * 3)
    pid = os.fork()
    if pid == 0:  # the child writes with numpy only: no torch thread pool, no CUDA after fork
        ring.buffer.numpy()[:] = 1
        os._exit(0)
    os.waitpid(pid, 0)
    cuda = torch.device("cuda")
    t0 = time.perf_counter()
    ok = all(ring.pin(k, cuda) for k in range(slots))
    t1 = time.perf_counter()
    ring.unpin(cuda)
    t2 = time.perf_counter()
    mb = ring.buffer.numel() / 2**20
    return {"ring_mb": round(mb, 1), "slots": slots, "pinned": ok,
            "pin_ms": round((t1 - t0) * 1e3, 1), "unpin_ms": round((t2 - t1) * 1e3, 1)}  # fmt: skip


def run_device_loop(args, device, model, jobs, n_images: int) -> float:
    """Images/s of the harness's device half (:func:`evaluate_batches`: host -> device copy,
    normalisation, model, counts) on batches preloaded in (pinned) host memory, no loader
    running: the main process's ceiling. Loader -> harness losses beyond it are contention."""
    from robustbench_assemble.eval.loop import evaluate_batches, make_loader

    first = jobs[:1]  # one cell's batches, replayed for every cell
    loader = make_loader(first, batch_size=args.batch_size, workers=min(2, args.workers[0]),
                         device=device, reuse_buffers=False)  # fmt: skip
    preloaded = list(loader)
    per_cell = sum(len(b.labels) for b in preloaded)
    n_cells = max(1, n_images // per_cell)
    batches = [dataclasses.replace(b, cell=k) for k in range(n_cells) for b in preloaded]
    kw = dict(device=device, precision=args.precision, progress=False)
    evaluate_batches(model, first, batches[: len(preloaded)], **kw)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    counts = evaluate_batches(model, first * n_cells, batches, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sum(c.n for c in counts) / (time.perf_counter() - t0)


def run_forward(args, device, io, model, n_images: int) -> float:
    """Images/s of the model alone on one preloaded, normalised device batch."""
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
    seconds, n, _ = run_harness(args, device, model, jobs_for(io, [cell], "cpu"), args.workers[0])
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
    p.add_argument("--batch-size", type=int, default=None, help="cuda 250, cpu 32")
    p.add_argument("--workers", default=None, help="comma list (default: the CLI's default)")
    p.add_argument("--images", type=int, default=None, help="frames written (cuda 250, cpu 64)")
    p.add_argument("--repeat", type=int, default=None, help="passes over them (cuda 100, cpu 2)")
    p.add_argument("--cells", type=int, default=None, help="cells they form (cuda 5, cpu 2)")
    p.add_argument(
        "--decode", default=None, help="decoders to time (cuda: cpu,pil,gpu; cpu: cpu,pil)"
    )
    p.add_argument("--mem-sizes", default="100,400", help="dataset sizes of the memory probe")
    p.add_argument("--cell-by-cell", action="store_true", help="also time evaluate_cell per cell")
    p.add_argument(
        "--buffers",
        default=None,
        help="decode cpu/pil: batch buffers reused (the ring; on CUDA copied straight out of it), "
        "reused but copied by the pin-memory thread (reuse-copy, CUDA), and/or fresh per batch "
        "(default cuda: reuse,reuse-copy,fresh; cpu: reuse,fresh)",
    )
    p.add_argument(
        "--loader-only", action="store_true", help="time decoding and the bare loader only"
    )
    p.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from robustbench_assemble.eval.cli import default_workers

    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    args.batch_size = args.batch_size or (250 if cuda else 32)
    args.images = args.images or (250 if cuda else 64)
    args.repeat = args.repeat or (100 if cuda else 2)
    args.cells = args.cells or (5 if cuda else 2)
    dev = torch.device("cuda" if cuda else "cpu")
    args.workers = [int(w) for w in (args.workers or str(default_workers(dev))).split(",")]
    decodes = [d for d in (args.decode or ("cpu,pil,gpu" if cuda else "cpu,pil")).split(",") if d]
    args.buffers = args.buffers or ("reuse,reuse-copy,fresh" if cuda else "reuse,fresh")
    buffer_modes = [b for b in args.buffers.split(",") if b]
    if not buffer_modes or any(b not in BUFFER_MODES for b in buffer_modes):
        raise SystemExit(f"--buffers {args.buffers}: expected reuse, reuse-copy and/or fresh")
    if "reuse-copy" in buffer_modes and not cuda:
        raise SystemExit("--buffers reuse-copy: only on CUDA (on the CPU it is reuse)")
    if args.loader_only:
        args.mem_sizes = ""
    if any(d not in ("cpu", "pil", "gpu") for d in decodes) or ("gpu" in decodes and not cuda):
        raise SystemExit(f"--decode {args.decode}: expected cpu, pil and/or gpu (gpu: CUDA)")
    if args.probe:
        print(json.dumps(memory_probe(args)))
        return 0
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data}: folder not found")

    sizes = [int(s) for s in args.mem_sizes.split(",") if s]
    started = time.perf_counter()
    rates: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        args.frames = write_frames(args.data, max([args.images, *sizes]), Path(tmp) / "frames")
        device, io, model, cell = setup(args)
        frames = cell.samples[: args.images]
        cost = decode_cost(cell, frames)
        per_cell = args.images * args.repeat // args.cells
        cells = make_cells(cell, frames, per_cell, args.cells)
        n = per_cell * args.cells
        # forward first, and every row printed as it is measured: a run cut short by a
        # timeout (a device session's budget) still leaves its pairs in the log
        forward = None if args.loader_only else run_forward(args, device, io, model, n)
        if forward is not None:
            print(f"measured: pure forward {forward:.1f} img/s", flush=True)
        for decode in decodes:
            if not args.loader_only:
                warm = make_cells(cell, frames, args.batch_size, 1)
                run_harness(args, device, model, jobs_for(io, warm, decode), args.workers[0])
            jobs = jobs_for(io, cells, decode)
            for w in args.workers:
                # buffers interleaved per worker count: same-run pairs on a noisy machine
                for buffers in buffer_modes if decode != "gpu" else ["fresh"]:
                    r = rates[f"{decode}/{buffers}/{w}"] = {
                        "decode": decode,
                        "buffers": buffers,
                        "workers": w,
                        "loader_img_s": round(run_loader(args, device, jobs, w, buffers), 1),
                    }
                    if not args.loader_only:
                        seconds, n, st = run_harness(args, device, model, jobs, w, buffers=buffers)
                        r["harness_img_s"] = round(n / seconds, 1)
                        r["data_wait"] = round(st.data_wait_s / st.total_s, 3)
                        r["gpu_wait"] = round(st.gpu_wait_s / st.total_s, 3)
                        r["ring_pinned"] = st.ring_pinned
                        r["first_batch_s"] = round(st.first_batch_s, 3)
                        r["pin_s"] = round(st.pin_s, 3)
                        # every image is computed after the first batch arrived: the rate
                        # from then on leaves the loader's start-up out
                        r["steady_img_s"] = round(n / (st.total_s - st.first_batch_s), 1)
                    print(f"measured: {json.dumps(r)}", flush=True)
            if args.cell_by_cell and not args.loader_only:
                buffers = buffer_modes[0] if decode != "gpu" else "fresh"
                seconds, n, _ = run_harness(args, device, model, jobs, args.workers[0], True,
                                            buffers)  # fmt: skip
                key = f"{decode}/{buffers}/{args.workers[0]}"
                rates[key]["cell_by_cell_img_s"] = round(n / seconds, 1)
        pinning = pin_cost(args, args.workers[0]) if device.type == "cuda" else None
        device_loop = None
        if not args.loader_only and "cpu" in decodes:
            device_loop = run_device_loop(args, device, model, jobs_for(io, cells, "cpu"), n)
        probes = []
        for size in sizes:
            cmd = [sys.executable, __file__, "--probe", "--frames", str(args.frames)]
            cmd += ["--data", str(args.data), "--model", args.model, "--precision", args.precision]
            cmd += ["--batch-size", str(args.batch_size), "--workers", str(args.workers[0])]
            cmd += ["--images", str(size)] + (["--device", args.device] if args.device else [])
            # the probe reads a cell of exactly `size` frames
            sub = Path(tmp) / f"frames{size}"
            write_subset(args.frames, sub, size)
            cmd[cmd.index("--frames") + 1] = str(sub)
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            probes.append(json.loads(out.strip().splitlines()[-1]))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    cores = len(os.sched_getaffinity(0))
    print(
        f"\n{args.model} {args.precision} batch {args.batch_size} on {name}, {cores} CPU cores, "
        f"{n} images per timing ({args.cells} cells of {per_cell}, {args.images} frames)"
    )
    ceiling = cores / cost["decode_ms"] * 1e3
    print(f"  one core: decode {cost['decode_ms']:.3f} ms/frame ({cores} cores: "
          f"{ceiling:.0f} img/s), PIL alone {cost['pil_decode_ms']:.3f} ms, "
          f"read bytes {cost['read_bytes_ms']:.3f} ms")  # fmt: skip
    if forward is not None:
        print(f"  pure forward (preloaded device tensors):      {forward:8.1f} img/s")
    if device_loop is not None:
        print(f"  harness, preloaded batches (no loader):        {device_loop:8.1f} img/s "
              f"(/ forward {device_loop / forward:.3f})")  # fmt: skip
    if pinning is not None:
        print(f"  page-locking a ring of {pinning['ring_mb']} MiB ({args.workers[0]} workers, "
              f"{pinning['slots']} slots, written by a child): {pinning['pin_ms']} ms, unlocking "
              f"{pinning['unpin_ms']} ms (ok: {pinning['pinned']})")  # fmt: skip
    for r in rates.values():
        line = (f"  decode {r['decode']} buffers {r['buffers']:10s} workers {r['workers']:2d}: "
                f"bare loader {r['loader_img_s']:8.1f} img/s")  # fmt: skip
        # the baseline: PIL decoding into a fresh buffer per batch (the path before the ring)
        base = rates.get(f"pil/fresh/{r['workers']}")
        if base and base is not r:
            r["loader_vs_baseline"] = round(r["loader_img_s"] / base["loader_img_s"], 3)
            line += f" ({r['loader_vs_baseline']:.2f}x pil/fresh)"
        if forward is not None:
            r["ratio"] = round(r["harness_img_s"] / forward, 3)
            line += (f", harness {r['harness_img_s']:8.1f} img/s, "
                     f"harness / forward {r['ratio']:.3f}")  # fmt: skip
            if base and base is not r:
                r["harness_vs_baseline"] = round(r["harness_img_s"] / base["harness_img_s"], 3)
                line += f" ({r['harness_vs_baseline']:.2f}x pil/fresh)"
            line += f"; waits: loader {r['data_wait']:.0%}, device {r['gpu_wait']:.0%}"
            steady = r["steady_img_s"]
            line += f"; start-up {r['first_batch_s']:.2f} s"
            if r["ring_pinned"] is not None:
                line += f", page-locking {r['pin_s']:.2f} s (in what follows)"
            line += f", from the first batch on {steady:8.1f} img/s ({steady / forward:.3f})"
        if "cell_by_cell_img_s" in r:
            line += f", cell by cell {r['cell_by_cell_img_s']:8.1f}"
        print(line)
    for pr in probes:
        print(
            f"  {pr['images']:5d} images: peak RSS {pr['peak_rss_mb']:8.1f} MiB, "
            f"CUDA max allocated {pr['cuda_max_allocated_mb']} MiB"
        )
    result = {
        "model": args.model, "device": name, "cpu_cores": cores, "precision": args.precision,
        "batch_size": args.batch_size, "images": n, "cells": args.cells, "decode_cost": cost,
        "forward_img_s": None if forward is None else round(forward, 1),
        "device_loop_img_s": None if device_loop is None else round(device_loop, 1),
        "runs": list(rates.values()), "memory": probes, "ring_pinning": pinning,
        "seconds": round(time.perf_counter() - started, 1),
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
