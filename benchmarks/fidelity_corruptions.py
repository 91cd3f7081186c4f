"""Measure the numpy ImageNet-C engine (``corrupt``) against Hendrycks' original.

Prints the markdown tables of docs/FIDELITY.md ("ImageNet-C: numpy engine"):

1. same stream: our function fed a ``LegacyGenerator(seed)`` vs the reference after
   ``np.random.seed(seed)``: mean absolute difference (gray levels per pixel and channel);
   impulse_noise is compared with ``skimage.util.random_noise(rng=seed)`` instead, because the
   reference's skimage call ignores numpy's global seed;
2. strength: mean |corrupted - clean| of ``corrupt(..., seed)`` (our Generator stream) divided
   by the reference's (its own global stream), per severity, over photos x seeds;
3. speed: median milliseconds per call, ours vs the reference.

Usage (from the repository root, with the reference installed: pip install .[reference])::

    python benchmarks/fidelity_corruptions.py --photos 50 --seeds 2
    python benchmarks/fidelity_corruptions.py --photos 8 --seeds 1 --names glass_blur,fog
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference  # noqa: E402  (tests/reference.py: the shimmed original)
from conftest import sample_files  # noqa: E402

from robustbench_assemble.corruptions import numpy_backend as nb  # noqa: E402
from robustbench_assemble.corruptions import params  # noqa: E402
from robustbench_assemble.corruptions.rng import LegacyGenerator  # noqa: E402
from robustbench_assemble.images import load_benchmark_image  # noqa: E402


def same_stream_mad(image: np.ndarray, name: str, severity: int, seed: int) -> float:
    """MAD between our function and the reference when both draw the same random numbers."""
    if name == "impulse_noise":
        from skimage.util import random_noise

        amount = params.params(name, severity)
        ref = np.uint8(
            np.clip(random_noise(image / 255.0, mode="s&p", rng=seed, amount=amount), 0, 1) * 255
        )
        ours = nb.corrupt(image, name, severity, seed)
    else:
        ref = reference.reference_corrupt(image, name, severity, seed=seed)
        ours = nb.corrupt(image, name, severity, LegacyGenerator(seed))
    return float(np.abs(ref.astype(np.int16) - ours.astype(np.int16)).mean())


def strength(out: np.ndarray, clean: np.ndarray) -> float:
    return float(np.abs(out.astype(np.int16) - clean.astype(np.int16)).mean())


def ratio_with_error(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """mean(ours) / mean(ref) and its standard error (delta method, independent samples)."""
    r = ours.mean() / ref.mean()
    rel = np.sqrt(ours.var(ddof=1) / ours.mean() ** 2 + ref.var(ddof=1) / ref.mean() ** 2)
    return float(r), float(r * rel / np.sqrt(len(ours)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=50, help="photos from the 1,000 sample")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per photo (strength table)")
    parser.add_argument("--stream-photos", type=int, default=4, help="photos for table 1")
    parser.add_argument("--names", default="all", help="'all', 'common' or a,b,...")
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)

    reference._load()  # raises if imagenet-c / Wand are missing
    names = params.resolve_names(args.names)
    files = sample_files(args.photos, stride=max(1, 1000 // max(args.photos, 1)))
    if not files:
        raise SystemExit("ImageNet sample not found (set ROBUSTBENCH_SAMPLE)")
    photos = [load_benchmark_image(f) for f in files]

    lines = [
        f"photos: {len(photos)} (stride {max(1, 1000 // args.photos)} over the sample), "
        f"seeds per photo: {args.seeds}, same-stream photos: {args.stream_photos}",
        "",
        "| corruption | kind | s1 | s2 | s3 | s4 | s5 | ms ours | ms reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in tqdm(names, desc="corruptions"):
        deterministic = name in params.DETERMINISTIC
        stream = []
        ratios = []
        t_ours: list[float] = []
        t_ref: list[float] = []
        for severity in params.SEVERITIES:
            mads = [
                same_stream_mad(img, name, severity, seed)
                for seed, img in enumerate(photos[: args.stream_photos])
            ]
            stream.append(max(mads))
            if deterministic:
                continue
            ours_s, ref_s = [], []
            for k, img in enumerate(photos):
                for j in range(args.seeds):
                    seed = k * args.seeds + j
                    t = time.perf_counter()
                    out = nb.corrupt(img, name, severity, seed + 10_000)
                    t_ours.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    ref = reference.reference_corrupt(img, name, severity, seed=seed)
                    t_ref.append(time.perf_counter() - t)
                    ours_s.append(strength(out, img))
                    ref_s.append(strength(ref, img))
            ratios.append(ratio_with_error(np.array(ours_s), np.array(ref_s)))
        if deterministic:
            for img in photos[:4]:
                t = time.perf_counter()
                nb.corrupt(img, name, 3)
                t_ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                reference.reference_corrupt(img, name, 3)
                t_ref.append(time.perf_counter() - t)
        ms = f"{statistics.median(t_ours) * 1e3:.0f} | {statistics.median(t_ref) * 1e3:.0f}"
        label = "MAD vs reference" if deterministic else "MAD, same stream (max over photos)"
        lines.append(
            f"| {name} | {label} | " + " | ".join(f"{v:.3f}" for v in stream) + f" | {ms} |"
        )
        if not deterministic:
            lines.append(
                f"| {name} | strength ratio ours/ref | "
                + " | ".join(f"{r:.3f} ± {e:.3f}" for r, e in ratios)
                + " | | |"
            )
        print(lines[-1] if deterministic else "\n".join(lines[-2:]), flush=True)

    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
