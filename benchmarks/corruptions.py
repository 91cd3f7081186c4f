"""Speed of the ImageNet-C engines on real 224 x 224 photos, in one run.

CPU (default): ms per image for each corruption (all five severities, or ``--severities``)
for our numpy ``corrupt``, our torch ``corrupt_batch`` on CPU (batches of ``--batch``) and
``imagecorruptions-imaug``'s ``corrupt`` (the maintained port), with the speed-up ratios and
the totals. ``--device cuda``: images/s per corruption for ``corrupt_batch`` on the GPU
(warm-up call, ``torch.cuda.synchronize()`` around the timing).

    python benchmarks/corruptions.py --images 32
    python benchmarks/corruptions.py --device cuda --images 256 --batch 128

Photos: the first ``--images`` of the ImageNet sample (``$ROBUSTBENCH_SAMPLE`` or
../shared/data/imagenet-sample/val), Resize(256) + CenterCrop(224). Exits 0 with a message
when the sample is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robustbench_assemble.corruptions.params import resolve_names, resolve_severities
from robustbench_assemble.images import load_benchmark_image


def sample_files(n: int) -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    env = os.environ.get("ROBUSTBENCH_SAMPLE")
    roots = [Path(env)] if env else []
    roots += [
        here.parent / "shared/data/imagenet-sample/val",
        here / "shared/data/imagenet-sample/val",
    ]
    for root in roots:
        if root.is_dir():
            files = sorted(
                p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.iterdir())
            )
            return files[:: max(1, len(files) // n)][:n]
    return []


def time_per_image(fn, n_images: int, repeats: int = 1) -> float:
    """Best-of-``repeats`` wall time of ``fn()`` in ms per image."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / n_images


def run_cpu(photos, names, severities, batch_size, repeats) -> None:
    from imagecorruptions import corrupt as ic_corrupt

    from robustbench_assemble.corruptions.numpy_backend import corrupt as np_corrupt
    from robustbench_assemble.corruptions.torch_backend import corrupt_batch

    x = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()
    batches = x.split(batch_size)
    n = len(photos)

    def ours_numpy(name):
        for s in severities:
            for i, im in enumerate(photos):
                np_corrupt(im, name, s, seed=i)

    def ours_torch(name):
        g = torch.Generator().manual_seed(0)
        for s in severities:
            for b in batches:
                corrupt_batch(b, name, s, g)

    def imagecorruptions(name):
        np.random.seed(0)  # noqa: NPY002 (imagecorruptions draws from the global RNG)
        for s in severities:
            for im in photos:
                ic_corrupt(im, corruption_name=name, severity=s)

    print(
        f"CPU, torch threads {torch.get_num_threads()}, {n} photos 224x224, "
        f"severities {','.join(map(str, severities))}, batch {batch_size}; "
        "ms per image summed over the severities",
        flush=True,
    )
    cols = ("imagecorr.", "numpy", "torch", "ic/numpy", "ic/torch")
    print(f"{'corruption':18s} " + " ".join(f"{c:>10s}" for c in cols))
    totals = np.zeros(3)
    for name in names:
        # warm-up: numba JIT of imagecorruptions' glass blur, our caches and frost textures
        ic_corrupt(photos[0], corruption_name=name, severity=1)
        np_corrupt(photos[0], name, 1, seed=0)
        corrupt_batch(x[:2], name, 1)
        row = np.array(
            [
                time_per_image(lambda name=name: imagecorruptions(name), n, repeats),
                time_per_image(lambda name=name: ours_numpy(name), n, repeats),
                time_per_image(lambda name=name: ours_torch(name), n, repeats),
            ]
        )
        totals += row
        print(
            f"{name:18s} {row[0]:10.1f} {row[1]:10.1f} {row[2]:10.1f} "
            f"{row[0] / row[1]:10.2f} {row[0] / row[2]:10.2f}",
            flush=True,
        )
    print(
        f"{'TOTAL':18s} {totals[0]:10.1f} {totals[1]:10.1f} {totals[2]:10.1f} "
        f"{totals[0] / totals[1]:10.2f} {totals[0] / totals[2]:10.2f}"
    )


def run_cuda(photos, names, severities, batch_size, repeats) -> None:
    from robustbench_assemble.corruptions.torch_backend import corrupt_batch

    if not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device available")
    dev = torch.device("cuda")
    x = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous().to(dev)
    batches = x.split(batch_size)
    n = len(photos) * len(severities)
    print(
        f"{torch.cuda.get_device_name(dev)}, {len(photos)} photos 224x224 x "
        f"{len(severities)} severities, batch {batch_size}; images/s (best of {repeats})"
    )
    total_s = 0.0
    for name in names:
        g = torch.Generator(device=dev).manual_seed(0)
        for s in severities:  # warm-up: kernels, caches, cuFFT plans
            corrupt_batch(batches[0], name, s, g)
        torch.cuda.synchronize()

        def work(name=name, g=g):
            for s in severities:
                for b in batches:
                    corrupt_batch(b, name, s, g)
            torch.cuda.synchronize()

        ms = time_per_image(work, n, repeats)
        total_s += ms * len(severities) / 1000.0
        print(f"{name:18s} {1000.0 / ms:10.0f} images/s", flush=True)
    print(f"{'ALL':18s} {len(names) * len(severities) / total_s:10.0f} images/s (mean over set)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--images", type=int, default=32, help="number of photos (default 32)")
    ap.add_argument("--batch", type=int, default=32, help="corrupt_batch batch size")
    ap.add_argument("--corruptions", default="all", help="'all', 'common', 'extra' or a,b,...")
    ap.add_argument("--severities", default="all", help="e.g. '1,3' (default all five)")
    ap.add_argument("--repeats", type=int, default=1, help="best of this many timings")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args(argv)
    if args.images < 1 or args.batch < 1 or args.repeats < 1:
        ap.error("--images, --batch and --repeats must be >= 1")
    names = resolve_names(args.corruptions)
    severities = resolve_severities(args.severities)
    if args.threads:
        torch.set_num_threads(args.threads)
    files = sample_files(args.images)
    if not files:
        print("ImageNet sample not found (set ROBUSTBENCH_SAMPLE); nothing to benchmark.")
        return
    photos = [load_benchmark_image(f) for f in files]
    if args.device == "cpu":
        run_cpu(photos, names, severities, args.batch, args.repeats)
    else:
        run_cuda(photos, names, severities, args.batch, args.repeats)


if __name__ == "__main__":
    main()
