"""ImageNet-P generation speed: our make_sequence against the reference's per-frame calls.

    python benchmarks/perturbations.py [--images 2] [--names motion_blur brightness ...]

Baseline ("reference"): the per-frame computations of make_imagenet_p.py, re-expressed here
(benchmark only) with the same library calls it made -- ``torch`` noise on ToTensor crops,
``np.random.poisson``, skimage ``rgb2hsv``/``hsv2rgb`` for every brightness frame, the
ImageNet-C reference's Wand ``MotionImage`` (PNG blob in, ``cv2.imdecode`` out) for
motion_blur and snow, skimage ``gaussian`` per frame, PIL ``Image.transform`` with the
torchvision 0.2 affine matrix per frame, ``cv2.warpPerspective`` for tilt. It excludes what the
reference did around them (writing 31 PNGs, running ffmpeg veryslow), which would only make
the baseline slower. Both sides run single-threaded on the same photos in the same process.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import color as skcolor  # noqa: E402
from skimage.filters import gaussian  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from robustbench_assemble.images import center_crop, load_rgb, resize_short_side  # noqa: E402
from robustbench_assemble.perturbations import make_sequence  # noqa: E402
from robustbench_assemble.perturbations.geometry import (  # noqa: E402
    legacy_affine_inverse,
    tilt_homography,
)

torch.set_num_threads(1)
cv2.setNumThreads(1)


def _wand(arr: np.ndarray, radius, sigma, angle) -> np.ndarray:
    import reference

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    im = reference.load().MotionImage(blob=buf.getvalue())
    im.motion_blur(radius=radius, sigma=sigma, angle=angle)
    return cv2.imdecode(np.frombuffer(im.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


def reference_sequence(img: Image.Image, name: str) -> list:
    img = resize_short_side(img, 256)
    crop = center_crop(img, 224)
    frames = []
    if name == "gaussian_noise":
        x = torch.from_numpy(np.array(crop)).permute(2, 0, 1).float() / 255
        frames = [
            (torch.clamp(x + 0.03 * torch.randn_like(x), 0, 1) * 255).byte() for _ in range(30)
        ]
    elif name == "shot_noise":
        for _ in range(30):
            z = np.array(crop) / 255.0
            frames.append(np.uint8(255 * np.clip(np.random.poisson(z * 300) / 300.0, 0, 1)))  # noqa: NPY002
    elif name == "motion_blur":
        frames = [_wand(np.array(crop), 10, 3, (i - 30) * 4) for i in range(31)]
    elif name == "brightness":
        for i in range(31):
            x = skcolor.rgb2hsv(np.array(crop) / 255.0)
            x[:, :, 2] = np.clip(x[:, :, 2] + (i - 15) * 2 / 100.0, 0, 1)
            frames.append(np.uint8(skcolor.hsv2rgb(x) * 255))
    elif name == "gaussian_blur":
        for i in range(31):
            s = 0.25 + 0.035 * i
            frames.append(
                np.uint8(
                    255 * gaussian(np.array(crop) / 255.0, sigma=s, channel_axis=-1, truncate=6.0)
                )
            )
    elif name == "snow":
        layer = np.uint8(np.clip(np.random.normal(0.05, 0.3, (224, 224)), 0, 1) * 255)  # noqa: NPY002
        frames = [_wand(layer, 14, 4, i * 4 - 150) for i in range(31)]
    elif name in ("rotate", "scale", "shear"):
        key = {"rotate": "angle", "scale": "scale", "shear": "shear"}[name]
        for i in range(31):
            v = (i * 2.5 + 40) / 100 if name == "scale" else i - 15
            m = legacy_affine_inverse(img.size, **{key: v})
            frames.append(
                center_crop(img.transform(img.size, Image.AFFINE, m, Image.BILINEAR), 224)
            )
    elif name == "tilt":
        arr = np.array(img)
        h, w = arr.shape[:2]
        frames = [
            center_crop(
                Image.fromarray(cv2.warpPerspective(arr, tilt_homography(w, h, i - 15), (w, h))),
                224,
            )
            for i in range(31)
        ]
    else:
        raise ValueError(name)
    return frames


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--names", nargs="+", default=[
        "gaussian_noise", "shot_noise", "motion_blur", "snow", "brightness", "gaussian_blur",
        "rotate", "tilt",
    ])  # fmt: skip
    args = p.parse_args()
    from conftest import sample_files

    imgs = [load_rgb(f) for f in sample_files(args.images, stride=97)]
    print(f"{'perturbation':<16}{'reference seq/s':>16}{'ours seq/s':>12}{'speed-up':>10}")
    for name in args.names:
        t = time.perf_counter()
        for im in imgs:
            reference_sequence(im, name)
        ref = len(imgs) / (time.perf_counter() - t)
        t = time.perf_counter()
        for im in imgs:
            make_sequence(im, name, seed=0)
        ours = len(imgs) / (time.perf_counter() - t)
        print(f"{name:<16}{ref:>16.2f}{ours:>12.2f}{ours / ref:>9.1f}x")


if __name__ == "__main__":
    main()
