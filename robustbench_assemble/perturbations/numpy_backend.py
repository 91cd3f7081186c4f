"""ImageNet-P sequences on the CPU: :func:`make_sequence`, faithful to make_imagenet_p.py.

Each function reproduces the reference's per-frame arithmetic (dtype, clipping, truncation by
``np.uint8``/``.byte()``) but computes what is shared between frames once: the HSV conversion of
brightness, the snow layer, the warp of only the 224 crop. The PIL warps and the gaussian blur
run as compiled replicas of the library's arithmetic (:mod:`.kernels`, bit-identical); noise
pixels are drawn from the reference chain's exact output distribution (:mod:`.noise`).
Randomness comes from an explicit ``np.random.Generator`` (the reference used numpy's and
torch's global generators; the distributions are the reference's, the streams cannot be).
Differences are listed and measured in docs/FIDELITY.md ("ImageNet-P").

Threads: the frames of one sequence are independent once its random numbers are drawn, so
:func:`make_sequence` draws them first (in the same order whatever the thread count) and
then computes frame ranges on ``threads`` threads (the compiled kernels release the GIL;
tilt uses OpenCV's own pool; spatter stays serial). Every value is computed by the same
operations on any number of threads, so the output does not depend on it (tested). The
default is ``torch.get_num_threads()``, the knob the corruption engine uses too; processes
that already run one per core (``make_imagenet_p --workers N``) should set it to 1.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.ndimage import zoom as ndi_zoom
from skimage.color import rgb2hsv

from ..corruptions.motion import motion_blur_kernel, motion_blur_offsets
from ..corruptions.numpy_backend import gaussian_kernel1d, water_shading
from ..corruptions.rng import Seed, as_generator
from ..images import resize_short_side
from ..threads import run_frames, split_range
from .geometry import crop_offsets, legacy_affine_inverse, tilt_homography
from .kernels import (
    affine_bilinear_packed,
    brightness_frames,
    gaussian_blur_frames,
    motion_blur_frames,
    packed_image,
    running_mean_frames,
    scale_bilinear_packed,
    snow_blend_frames,
)
from .noise import noise_frames
from .params import CROP, RESIZE, SCHEDULES, check_difficulty, check_name


def default_threads() -> int:
    """Threads per sequence when none are given: ``torch.get_num_threads()``."""
    import torch

    return max(1, torch.get_num_threads())


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    return int(threads)


def prepare_image(image: Image.Image | np.ndarray) -> Image.Image:
    """Any RGB photo (PIL, or HxWx3 uint8) -> PIL RGB with short side 256 (``Resize(256)``)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image array must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}"
            )
        image = Image.fromarray(image)
    elif isinstance(image, Image.Image):
        image = image.convert("RGB") if image.mode != "RGB" else image
    else:
        raise ValueError(f"image must be a PIL image or an HxWx3 uint8 array, got {type(image)}")
    return resize_short_side(image, RESIZE)


def crop224(img256: Image.Image) -> np.ndarray:
    """CenterCrop(224) of the 256 image as HxWx3 uint8."""
    left, top = crop_offsets(*img256.size, CROP)
    return np.asarray(img256.crop((left, top, left + CROP, top + CROP)), dtype=np.uint8)


# --------------------------------------------------------------------------- noise


def noise_sequence(
    crop: np.ndarray, name: str, level: float, rng: np.random.Generator, threads: int = 1
) -> np.ndarray:
    """Clean frame 0, then 30 independent draws of the reference's noisy pixel distribution.

    gaussian_noise: ``byte(clamp(x + sigma * randn, 0, 1) * 255)`` in float32 (torch);
    shot_noise: ``np.uint8(255 * clip(poisson(x * c) / c, 0, 1))``; speckle_noise:
    ``np.uint8(255 * clip(x + x * N(0, sigma), 0, 1))`` (float64). Sampled per pixel from the
    exact output distribution of that chain (:mod:`.noise`), one 32-bit draw per value.
    """
    out = np.empty((31, *crop.shape), dtype=np.uint8)
    out[0] = crop
    noise_frames(crop, name, level, rng, frames=30, threads=threads, out=out[1:])
    return out


# --------------------------------------------------------------------------- photometric


def _motion_blur_group(img: np.ndarray, radius: float, sigma: float, angles, threads: int):
    """:func:`.kernels.motion_blur_frames` of HxWxC ``img`` at ``angles`` (same radius, sigma)."""
    weights = motion_blur_kernel(radius, sigma)
    offsets = np.stack([motion_blur_offsets(len(weights), a) for a in angles])
    pad = int(np.abs(offsets).max())
    src = np.pad(img.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.empty((len(angles), *img.shape), dtype=np.uint8)
    split_range(
        lambda lo, hi: motion_blur_frames(src, pad, offsets[lo:hi], weights, out[lo:hi]),
        len(angles),
        threads,
    )
    return out


def motion_blur_frames_of(image: np.ndarray, params, threads: int = 1) -> np.ndarray:
    """``quantize_like_imagemagick(motion_blur(image, r, s, angle))`` for each (r, s, angle).

    One edge-padded copy of the image serves every frame; the taps run in
    :func:`.kernels.motion_blur_frames` (the same sums as corruptions.motion's numpy code,
    bit-identical, tested). ``image``: HxW or HxWxC; returns (T, *image.shape) uint8.
    """
    arr = np.asarray(image)
    img = arr[..., None] if arr.ndim == 2 else arr
    groups: dict[tuple[float, float], list[int]] = {}
    for t, (radius, sigma, _) in enumerate(params):
        groups.setdefault((float(radius), float(sigma)), []).append(t)
    out = np.empty((len(params), *img.shape), dtype=np.uint8)
    for (radius, sigma), ts in groups.items():
        out[ts] = _motion_blur_group(img, radius, sigma, [params[t][2] for t in ts], threads)
    return out.reshape(len(params), *arr.shape)


def motion_blur_sequence(crop: np.ndarray, params: tuple, threads: int = 1) -> np.ndarray:
    """ImageMagick MotionBlurImage(radius, sigma, angle) of the crop, one angle per frame."""
    return motion_blur_frames_of(crop, params, threads)


def hsv_factors(hsv: np.ndarray) -> np.ndarray:
    """Per-channel factors F with ``skimage.color.hsv2rgb(hsv) == V * F`` bit for bit.

    skimage builds each RGB channel as one of v, p = v(1-s), q = v(1-fs), t = v(1-(1-f)s)
    chosen by the hue sextant; only V changes between brightness frames, so the factors are
    computed once and every frame is one multiplication (same floats as hsv2rgb).
    """
    h, s = hsv[..., 0], hsv[..., 1]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    one = np.ones_like(s)
    p, q, t = 1 - s, 1 - f * s, 1 - (1 - f) * s
    table = np.stack(
        [
            np.stack((one, t, p), axis=-1),
            np.stack((q, one, p), axis=-1),
            np.stack((p, one, t), axis=-1),
            np.stack((p, q, one), axis=-1),
            np.stack((t, p, one), axis=-1),
            np.stack((one, p, q), axis=-1),
        ]
    )
    sextant = hi.astype(np.uint8) % 6
    return np.take_along_axis(table, sextant[None, ..., None].repeat(3, axis=-1), axis=0)[0]


def brightness_sequence(crop: np.ndarray, deltas: tuple, threads: int = 1) -> np.ndarray:
    """skimage HSV: ``V = clip(V + c, 0, 1)``, back to RGB, ``np.uint8(x * 255)``.

    rgb2hsv is computed once (the reference recomputed it for every frame: same values) and
    hsv2rgb is replaced by :func:`hsv_factors` (identical floats, tested against skimage);
    each frame is :func:`.kernels.brightness_frames` (numpy's operations, fused).
    """
    hsv = rgb2hsv(crop / 255.0)
    factors = np.ascontiguousarray(hsv_factors(hsv)).reshape(-1, 3)
    value = np.ascontiguousarray(hsv[..., 2]).reshape(-1)
    d = np.asarray(deltas, dtype=np.float64)
    out = np.empty((len(d), value.size, 3), dtype=np.uint8)
    split_range(
        lambda lo, hi: brightness_frames(value, factors, d[lo:hi], out[lo:hi]), len(d), threads
    )
    return out.reshape(len(d), *crop.shape)


def gaussian_kernel_halves(sigmas: tuple, truncate: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ``gaussian_filter1d`` kernels as (weights[t, j] at offset -j, radii[t]).

    The weights are ``corruptions.numpy_backend.gaussian_kernel1d``'s: scipy's to the last bit.
    Computed once per schedule (31 small numpy calls cost ~0.1 ms, 2 % of a sequence).
    """
    weights, radii = _kernel_halves(tuple(float(s) for s in sigmas), float(truncate))
    return weights.copy(), radii.copy()


@functools.lru_cache(maxsize=8)
def _kernel_halves(sigmas: tuple, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    radii = np.array([int(truncate * s + 0.5) for s in sigmas], dtype=np.int64)
    weights = np.zeros((len(sigmas), int(radii.max()) + 1))
    for t, (s, r) in enumerate(zip(sigmas, radii)):
        weights[t, : r + 1] = gaussian_kernel1d(s, truncate)[r::-1]  # offsets 0, -1, ..., -r
    return weights, radii


def gaussian_blur_sequence(crop: np.ndarray, sigmas: tuple, threads: int = 1) -> np.ndarray:
    """skimage ``gaussian(x, sigma, truncate=6)`` per channel (mode 'nearest'), truncated.

    :func:`.kernels.gaussian_blur_frames` repeats scipy's separable symmetric correlation
    operation for operation (bit-identical, tested on every frame) without its per-call setup.
    """
    weights, radii = gaussian_kernel_halves(sigmas)
    out = np.empty((len(sigmas), *crop.shape), dtype=np.uint8)
    x = np.ascontiguousarray(crop / 255.0)
    run_frames(  # one frame per call, the widest kernels first
        lambda t: gaussian_blur_frames(x, weights[t : t + 1], radii[t : t + 1], out[t : t + 1]),
        np.argsort(-radii, kind="stable"),
        threads,
    )
    return out


def clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Centre crop of ceil(h / z) zoomed by z with ``scipy.ndimage.zoom(order=1)``, trimmed to h.

    The snow layer's zoom in make_imagenet_p.py (the same helper as ImageNet-C's).
    """
    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    zoomed = ndi_zoom(img[top : top + ch, top : top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim : trim + h, trim : trim + h]


def snow_layer(rng: np.random.Generator, extra: tuple, size: int = CROP) -> np.ndarray:
    """The fixed 8-bit snow layer (HxW uint8) that every frame blurs at a new angle."""
    loc, scale, zoom, threshold = extra[:4]
    layer = rng.normal(size=(size, size), loc=loc, scale=scale)
    layer = clipped_zoom(layer[..., None], zoom)
    layer[layer < threshold] = 0
    return (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)


def snow_sequence(
    crop: np.ndarray, angles: tuple, extra: tuple, rng: np.random.Generator, threads: int = 1
) -> np.ndarray:
    """Snow layer drawn once; frame i blurs it at angle 4 i - 150 and blends as the reference:
    ``np.uint8(255 * clip(base + f + rot180(f), 0, 1))`` with f the blurred layer / 255."""
    radius, sigma, blend = extra[4], extra[5], extra[6]
    layer = snow_layer(rng, extra, crop.shape[0])
    x = crop / 255.0
    gray = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY)[..., None]
    base = np.ascontiguousarray(blend * x + (1 - blend) * np.maximum(x, gray * 1.5 + 0.5))
    params = [(radius, sigma, a) for a in angles]
    flakes = motion_blur_frames_of(layer, params, threads)
    out = np.empty((len(angles), *crop.shape), dtype=np.uint8)
    split_range(
        lambda lo, hi: snow_blend_frames(base, flakes[lo:hi], out[lo:hi]), len(angles), threads
    )
    return out


def _drip(layer: np.ndarray, kernel: tuple) -> np.ndarray:
    """``np.convolve(column, kernel, mode='same')`` down every column (the drips move down)."""
    k0, k1, k2, k3 = kernel
    out = k1 * layer
    out[:-1] += k0 * layer[1:]
    out[1:] += k2 * layer[:-1]
    out[2:] += k3 * layer[:-2]
    return out


def spatter_sequence(
    crop: np.ndarray, extra: tuple, frames: int, rng: np.random.Generator
) -> np.ndarray:
    """Water spatter whose liquid layer drips one convolution step per frame (reference order).

    Serial: the per-frame cost is OpenCV's shading chain, and OpenCV calls from several Python
    threads do not run in parallel with this build (measured).
    """
    loc, scale, sigma, threshold, intensity, kernel = extra
    x = crop.astype(np.float32) / 255.0
    liquid = rng.normal(size=crop.shape[:2], loc=loc, scale=scale)
    liquid = gaussian_filter(liquid, sigma, mode="nearest", truncate=4.0)
    liquid[liquid < threshold] = 0
    # water is pale turquoise: the reference's BGR (175, 238, 238) applied to RGB channels
    color = np.array([175 / 255.0, 238 / 255.0, 238 / 255.0], dtype=np.float32)
    out = np.empty((frames, *crop.shape), dtype=np.uint8)
    for i in range(frames):
        m = water_shading(liquid) * intensity
        out[i] = (np.clip(x + m[..., None] * color, 0, 1) * 255).astype(np.uint8)
        liquid = _drip(liquid, kernel)
    return out


# --------------------------------------------------------------------------- geometric


def _affine_crops(img256: Image.Image, specs: list[dict], threads: int = 1) -> np.ndarray:
    """PIL bilinear affine warp (torchvision 0.2 matrix) of the 256 image, then the 224 crop.

    Computed by :func:`.kernels.affine_bilinear_packed`, Pillow's arithmetic on the crop's
    pixels only (with the full image's coordinates): bit-identical to
    ``img256.transform(size, Image.AFFINE, data, Image.BILINEAR)`` cropped (tested). Frames
    without rotation or shear (scale, zoom_blur) use :func:`.kernels.scale_bilinear_packed`,
    the same arithmetic sharing each source row's x-interpolation between output rows.
    """
    w, h = img256.size
    left, top = crop_offsets(w, h, CROP)
    mats = np.array([legacy_affine_inverse((w, h), **spec) for spec in specs], dtype=np.float64)
    out = np.empty((len(specs), CROP, CROP, 3), dtype=np.uint8)
    px = packed_image(np.asarray(img256, dtype=np.uint8))  # one 32-bit word per pixel
    separable = (mats[:, 1] == 0) & (mats[:, 3] == 0)

    def work(t: int) -> None:
        kernel = scale_bilinear_packed if separable[t] else affine_bilinear_packed
        kernel(px, mats[t : t + 1], left, top, CROP, out[t : t + 1])

    # zoomed-in frames (small |det|) cover the whole crop: the costly ones first
    det = np.abs(mats[:, 0] * mats[:, 4] - mats[:, 1] * mats[:, 3])
    run_frames(work, np.argsort(det, kind="stable"), threads)
    return out


def translate_sequence(img256: Image.Image, shifts: tuple) -> np.ndarray:
    """Integer horizontal shift of the 256 image (nearest, black fill), then the 224 crop."""
    arr = np.asarray(img256)
    w, h = img256.size
    left, top = crop_offsets(w, h, CROP)
    out = np.zeros((len(shifts), CROP, CROP, 3), dtype=np.uint8)
    for i, t in enumerate(shifts):
        # output column x shows input column x - t (content moves right for t > 0)
        lo = max(0, t - left)  # first crop column whose source is inside the image
        hi = min(CROP, w + t - left)
        if hi > lo:
            out[i, :, lo:hi] = arr[top : top + CROP, left + lo - t : left + hi - t]
    return out


def tilt_sequence(img256: Image.Image, angles: tuple, threads: int = 1) -> np.ndarray:
    """``cv2.warpPerspective`` (bilinear, black border) of the 256 image, then the 224 crop.

    The warps run one after the other on OpenCV's own pool, set to ``threads`` for the call
    (calls from several Python threads do not run in parallel with this OpenCV build); the
    output does not depend on OpenCV's thread count (measured on 30 photos x 31 frames, 1, 2
    and 8 threads, and tested).
    """
    arr = np.asarray(img256)
    h, w = arr.shape[:2]
    left, top = crop_offsets(w, h, CROP)
    out = np.empty((len(angles), CROP, CROP, 3), dtype=np.uint8)
    previous = cv2.getNumThreads()
    if previous != threads:
        cv2.setNumThreads(threads)
    try:
        for i, deg in enumerate(angles):
            full = cv2.warpPerspective(arr, tilt_homography(w, h, deg), (w, h))
            out[i] = full[top : top + CROP, left : left + CROP]
    finally:
        if previous != threads:
            cv2.setNumThreads(previous)
    return out


def zoom_blur_sequence(
    img256: Image.Image, crop: np.ndarray, scales: tuple, threads: int = 1
) -> np.ndarray:
    """Running mean of zoomed crops, as ToTensor (float32 /255) sums and ``.mul(255).byte()``."""
    zoomed = _affine_crops(img256, [{"scale": s} for s in scales[1:]], threads)
    out = np.empty((len(scales), CROP, CROP, 3), dtype=np.uint8)
    first = np.ascontiguousarray(crop)
    split_range(lambda lo, hi: running_mean_frames(first, zoomed, out, lo, hi), first.size, threads)
    return out


# --------------------------------------------------------------------------- entry point


def make_sequence(
    image: Image.Image | np.ndarray,
    name: str,
    difficulty: int = 1,
    seed: Seed = None,
    threads: int | None = None,
) -> np.ndarray:
    """One ImageNet-P sequence (T x 224 x 224 x 3 uint8) of a val photo of any size.

    ``image``: PIL or HxWx3 uint8 RGB; it is resized to short side 256 first (an image already at
    256 is left as is). ``difficulty`` 1..3 is the noise strength of the noise perturbations;
    for the others the sequence is the same at every difficulty (difficulty is a frame stride
    at evaluation), so only ``difficulty=1`` is accepted for them: asking for ``rotate`` at
    difficulty 2 raises ValueError instead of silently returning the difficulty-1 frames (see
    :func:`~robustbench_assemble.perturbations.params.source_difficulty`). ``seed``: int,
    ``np.random.Generator`` or None (fresh entropy); deterministic perturbations ignore it.
    ``threads``: threads for the frames of this sequence (default :func:`default_threads`);
    the output is the same for any value.
    """
    sched = SCHEDULES[check_name(name)]
    check_difficulty(difficulty)
    n = _check_threads(threads)
    if not sched.is_noise and difficulty != 1:
        raise ValueError(
            f"{name!r} has one sequence for all difficulties (difficulty {difficulty} is a frame "
            "stride at evaluation time); generate it with difficulty=1"
        )
    img256 = prepare_image(image)
    if sched.order == "photometric":
        crop = crop224(img256)
        if sched.is_noise:
            level = sched.noise_levels[difficulty - 1]
            return noise_sequence(crop, name, level, as_generator(seed), n)
        if name == "motion_blur":
            return motion_blur_sequence(crop, sched.frame_params, n)
        if name == "brightness":
            return brightness_sequence(crop, sched.frame_params, n)
        if name == "gaussian_blur":
            return gaussian_blur_sequence(crop, sched.frame_params, n)
        if name == "snow":
            return snow_sequence(crop, sched.frame_params, sched.extra, as_generator(seed), n)
        if name == "spatter":
            return spatter_sequence(crop, sched.extra, sched.frames, as_generator(seed))
    else:
        if name == "translate":
            return translate_sequence(img256, sched.frame_params)
        if name == "tilt":
            return tilt_sequence(img256, sched.frame_params, n)
        if name == "zoom_blur":
            return zoom_blur_sequence(img256, crop224(img256), sched.frame_params, n)
        if name == "rotate":
            specs = [{"angle": a} for a in sched.frame_params]
        elif name == "scale":
            specs = [{"scale": s} for s in sched.frame_params]
        elif name == "shear":
            specs = [{"shear": s} for s in sched.frame_params]
        else:  # pragma: no cover - SCHEDULES and this table are kept in step by the tests
            raise AssertionError(name)
        return _affine_crops(img256, specs, n)
    raise AssertionError(name)  # pragma: no cover
