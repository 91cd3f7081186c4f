"""ImageNet-P generation speed: our make_sequence against the reference's per-frame calls.

    python benchmarks/perturbations.py [--images 4] [--names motion_blur brightness ...] \
        [--device cpu|cuda] [--batch N]

Baseline ("reference"): the per-frame computations of make_imagenet_p.py, re-expressed here
(benchmark only) with the same library calls it made -- ``torch`` noise on ToTensor crops,
``np.random.poisson``, skimage ``rgb2hsv``/``hsv2rgb`` for every brightness frame, the
ImageNet-C reference's Wand ``MotionImage`` (PNG blob in, ``cv2.imdecode`` out) for
motion_blur and snow, skimage ``gaussian`` per frame, PIL ``Image.transform`` with the
torchvision 0.2 affine matrix per frame (bilinear; nearest for translate), ``cv2.warpPerspective``
for tilt, and spatter's per-frame OpenCV chain and ``np.apply_along_axis(np.convolve)`` drip. It
excludes what the reference did around them (writing 31 PNGs, running ffmpeg veryslow), which
would only make the baseline slower. The reference runs single-threaded (as the script did);
ours is timed with ``threads=1`` and with every core of this process's CPU set (best of 3
alternating passes, as the machine may be shared; the reference gets one pass), on the same
photos in the same process. The last line is the cost of one photo: one sequence of every
listed perturbation (difficulty 1).

``--device`` also times the batched torch path (``make_sequence_batch``, ``--batch`` images
per call, default all) on that device for the perturbations it covers: one warm-up call, then
timed calls closed by ``torch.cuda.synchronize()`` on CUDA. With ``--device cpu`` that column
is the torch path on one CPU thread (a correctness run, not the fast CPU path).
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
from robustbench_assemble.perturbations.torch_backend import (  # noqa: E402
    TORCH_PERTURBATIONS,
    make_sequence_batch,
)

torch.set_num_threads(1)
cv2.setNumThreads(1)  # the reference's warps single-threaded; ours split frames themselves
CORES = len(os.sched_getaffinity(0))
ALL = (
    "gaussian_noise", "shot_noise", "speckle_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "gaussian_blur", "spatter", "translate", "rotate", "scale", "shear", "tilt",
)  # fmt: skip


def _wand(arr: np.ndarray, radius, sigma, angle) -> np.ndarray:
    import reference

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    im = reference.load().MotionImage(blob=buf.getvalue())
    im.motion_blur(radius=radius, sigma=sigma, angle=angle)
    return cv2.imdecode(np.frombuffer(im.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


def _reference_spatter(crop: np.ndarray) -> list:
    """make_imagenet_p.py's spatter: BGRA float32 image, the OpenCV water shading per frame,
    and the liquid layer dripped by ``np.convolve`` down every column after each frame."""
    x = cv2.cvtColor(np.asarray(crop, dtype=np.float32) / 255.0, cv2.COLOR_BGR2BGRA)
    liquid = np.random.normal(size=x.shape[:2], loc=0.65, scale=0.27)  # noqa: NPY002
    liquid = gaussian(liquid, sigma=3.7)
    liquid[liquid < 0.69] = 0
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    drip = np.array([0.05, 0.1, 0.15, 0.7])
    frames = []
    for _ in range(31):
        layer = (liquid * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, emboss), (3, 3)).astype(np.float32)
        m = cv2.cvtColor(layer * dist, cv2.COLOR_GRAY2BGRA)
        with np.errstate(invalid="ignore", divide="ignore"):
            m /= np.max(m, axis=(0, 1))
        m *= 0.6
        color = np.ones_like(m[..., :3]) * np.array([175, 238, 238], np.float32) / 255.0
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        z = cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR)
        frames.append(np.uint8(z * 255))
        liquid = np.apply_along_axis(lambda c: np.convolve(c, drip, mode="same"), 0, liquid)
    return frames


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
    elif name == "speckle_noise":
        for _ in range(30):
            z = np.array(crop) / 255.0
            noisy = z + z * np.random.normal(size=z.shape, scale=0.05)  # noqa: NPY002
            frames.append(np.uint8(255 * np.clip(noisy, 0, 1)))
    elif name in ("rotate", "scale", "shear"):
        key = {"rotate": "angle", "scale": "scale", "shear": "shear"}[name]
        for i in range(31):
            v = (i * 2.5 + 40) / 100 if name == "scale" else i - 15
            m = legacy_affine_inverse(img.size, **{key: v})
            frames.append(
                center_crop(img.transform(img.size, Image.AFFINE, m, Image.BILINEAR), 224)
            )
    elif name == "zoom_blur":
        avg = torch.from_numpy(np.array(crop)).permute(2, 0, 1).float() / 255
        for i in range(1, 31):
            m = legacy_affine_inverse(img.size, scale=1 + 0.004 * i)
            z = center_crop(img.transform(img.size, Image.AFFINE, m, Image.BILINEAR), 224)
            avg += torch.from_numpy(np.array(z)).permute(2, 0, 1).float() / 255
            frames.append((avg / (i + 1)).mul(255).byte())
    elif name == "translate":
        for i in range(41):
            m = legacy_affine_inverse(img.size, translate=(i - 20, 0))
            frames.append(center_crop(img.transform(img.size, Image.AFFINE, m, Image.NEAREST), 224))
    elif name == "spatter":
        frames = _reference_spatter(np.array(crop))
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


def _torch_rate(imgs: list, name: str, device: str, batch: int, repeats: int = 2) -> float:
    """Sequences/s of make_sequence_batch on ``device`` after a warm-up call."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    seeds = list(range(len(imgs)))
    make_sequence_batch(imgs[:batch], name, seeds=seeds[:batch], device=device)  # warm-up
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        for s in range(0, len(imgs), batch):
            make_sequence_batch(
                imgs[s : s + batch], name, seeds=seeds[s : s + batch], device=device
            )
    sync()
    return repeats * len(imgs) / (time.perf_counter() - t)


def _rate(fn, imgs: list) -> float:
    """Sequences/s of ``fn(image)`` over ``imgs``."""
    t = time.perf_counter()
    for im in imgs:
        fn(im)
    return len(imgs) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--names", nargs="+", default=list(ALL))
    p.add_argument("--device", default=None, help="also time make_sequence_batch on cpu/cuda")
    p.add_argument("--batch", type=int, default=None, help="images per torch call (default all)")
    args = p.parse_args()
    from conftest import sample_files

    imgs = [load_rgb(f) for f in sample_files(args.images, stride=97)]
    if not imgs:
        sys.exit("ImageNet sample not found (set ROBUSTBENCH_SAMPLE)")
    batch = args.batch or len(imgs)
    for im in imgs[:1]:  # compile the numba kernels outside the timings
        for name in args.names:
            make_sequence(im, name, seed=0, threads=1)
    print(f"{len(imgs)} photos, {CORES} cores, load average {os.getloadavg()[0]:.2f}")
    head = (
        f"{'perturbation':<16}{'reference':>10}{'ours 1 thr':>11}{'speed-up':>9}"
        f"{f'ours {CORES} thr':>12}{'speed-up':>9}"
    )
    if args.device:
        head += f"{'torch ' + args.device:>12}{'vs ref':>8}"
    print(head + "   (sequences/s)")
    total = np.zeros(3)
    for name in args.names:
        ref = _rate(lambda im, n=name: reference_sequence(im, n), imgs)
        one = many = 0.0
        for _ in range(3):  # ours is cheap: best of 3 alternating runs (the CPU is shared)
            one = max(one, _rate(lambda im, n=name: make_sequence(im, n, seed=0, threads=1), imgs))
            many = max(
                many, _rate(lambda im, n=name: make_sequence(im, n, seed=0, threads=CORES), imgs)
            )
        total += 1.0 / np.array([ref, one, many])
        line = (
            f"{name:<16}{ref:>10.2f}{one:>11.2f}{one / ref:>8.1f}x{many:>12.2f}{many / ref:>8.1f}x"
        )
        if args.device and name in TORCH_PERTURBATIONS:
            rate = _torch_rate(imgs, name, args.device, batch)
            line += f"{rate:>12.2f}{rate / ref:>7.1f}x"
        elif args.device:
            line += f"{'-':>12}{'-':>8}"
        print(line, flush=True)
    print(
        f"one sequence of each ({len(args.names)}): reference {total[0]:.3f} s, ours 1 thread "
        f"{total[1]:.3f} s ({total[0] / total[1]:.1f}x), ours {CORES} threads {total[2]:.3f} s "
        f"({total[0] / total[2]:.1f}x); load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
