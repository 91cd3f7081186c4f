"""How much the release's video compression moves ImageNet-P flip probabilities.

    python benchmarks/codec_fp.py [--images 20] [--perturbations test] [--workers 2]

For ``--images`` sample photos (every ``1000 // images``-th of the shared sample) and each
perturbation: the sequence as generated (``--codec none``) and as stored by default (through
the release's libx264 settings and back, ``--codec x264``), both scored by the pretrained
EfficientNet-Lite0; prints FP and T5D of both, their ratio, the codec's mean absolute error
and its median seconds per sequence (one ffmpeg process, one thread). Why: AlexNet's
published FPs, which mFR divides by, were measured on the compressed release, so lossless
frames are not a like-for-like input (docs/FIDELITY.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared/data/imagenet-sample/val"


def _one(args: tuple[str, list[str]]) -> dict:
    """Worker: both versions of every photo's ``name`` sequence, scored by Lite0."""
    import torch

    from robustbench_assemble.images import load_benchmark_image
    from robustbench_assemble.metrics import flip_probability, rankings_from_scores, top5_distance
    from robustbench_assemble.models import create_model
    from robustbench_assemble.models.transforms import normalize_batch
    from robustbench_assemble.perturbations import make_sequence, sequence_seed
    from robustbench_assemble.perturbations.codec import apply_codec

    torch.set_num_threads(1)
    name, files = args
    model = create_model("efficientnet_lite0").eval()

    def top5(frames: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
            return rankings_from_scores(model(normalize_batch(x, model.preprocessing)).numpy(), 5)

    ranks: dict[str, list[np.ndarray]] = {"none": [], "x264": []}
    errors, seconds = [], []
    for f in files:
        frames = make_sequence(
            load_benchmark_image(f), name, 1, seed=sequence_seed(0, Path(f).name, name, 1)
        )
        t0 = time.perf_counter()
        coded = apply_codec(frames, name, "x264")
        seconds.append(time.perf_counter() - t0)
        errors.append(float(np.abs(coded.astype(int) - frames).mean()))
        ranks["none"].append(top5(frames))
        ranks["x264"].append(top5(coded))
    out = {
        "perturbation": name,
        "codec_mean_abs_error": round(float(np.mean(errors)), 3),
        "codec_s_per_sequence": round(float(np.median(seconds)), 3),
    }
    for codec, r in ranks.items():
        r = np.stack(r)
        out[f"fp_{codec}"] = flip_probability(r[..., 0], name)
        out[f"t5d_{codec}"] = top5_distance(r, name)
    return out


def main(argv: list[str] | None = None) -> int:
    from robustbench_assemble.perturbations import resolve_names

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--perturbations", default="test")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    files = sorted(str(f) for d in sorted(args.data.iterdir()) if d.is_dir() for f in d.iterdir())
    if not files:
        raise SystemExit(f"--data {args.data}: no images")
    files = files[:: max(1, len(files) // args.images)][: args.images]
    names = resolve_names(
        args.perturbations.split(",") if "," in args.perturbations else args.perturbations
    )
    started = time.perf_counter()
    jobs = [(n, files) for n in names]
    if args.workers <= 1:
        rows = list(map(_one, jobs))
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(_one, jobs))
    print(f"{len(files)} photos, EfficientNet-Lite0, difficulty 1")
    print(f"{'perturbation':16s} {'FP none':>8s} {'FP x264':>8s} {'ratio':>6s} {'T5D none':>8s} "
          f"{'T5D x264':>8s} {'ratio':>6s} {'|err|':>6s} {'codec s':>7s}")  # fmt: skip
    for r in rows:
        fr = r["fp_x264"] / r["fp_none"] if r["fp_none"] else float("nan")
        tr = r["t5d_x264"] / r["t5d_none"] if r["t5d_none"] else float("nan")
        print(f"{r['perturbation']:16s} {r['fp_none']:8.4f} {r['fp_x264']:8.4f} {fr:6.3f} "
              f"{r['t5d_none']:8.4f} {r['t5d_x264']:8.4f} {tr:6.3f} "
              f"{r['codec_mean_abs_error']:6.2f} {r['codec_s_per_sequence']:7.2f}")  # fmt: skip
    print(json.dumps({"images": len(files), "rows": rows,
                      "seconds": round(time.perf_counter() - started, 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
