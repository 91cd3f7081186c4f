"""ImageNet-P sequences on the CPU: :func:`make_sequence`, faithful to make_imagenet_p.py.

Each function reproduces the reference's per-frame arithmetic (dtype, clipping, truncation by
``np.uint8``/``.byte()``) but computes what is shared between frames once: the HSV conversion of
brightness, the snow layer, the warp of only the 224 crop. The PIL warps and the gaussian blur
run as compiled replicas of the library's arithmetic (:mod:`.kernels`, bit-identical); noise
pixels are drawn from the reference chain's exact output distribution (:mod:`.noise`).
Randomness comes from an explicit ``np.random.Generator`` (the reference used numpy's and
torch's global generators; the distributions are the reference's, the streams cannot be).
Differences are listed and measured in docs/FIDELITY.md ("ImageNet-P").
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.ndimage import zoom as ndi_zoom
from skimage.color import rgb2hsv

from ..corruptions.motion import motion_blur, quantize_like_imagemagick
from ..corruptions.numpy_backend import water_shading
from ..corruptions.rng import Seed, as_generator
from ..images import resize_short_side
from .geometry import crop_offsets, legacy_affine_inverse, tilt_homography
from .kernels import affine_bilinear_crops, gaussian_blur_frames, running_mean_frames
from .noise import noise_frames
from .params import CROP, RESIZE, SCHEDULES, check_difficulty, check_name


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


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """``np.uint8(255 * clip(x, 0, 1))``: the reference's truncating conversion."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- noise


def noise_sequence(crop: np.ndarray, name: str, level: float, rng: np.random.Generator):
    """Clean frame 0, then 30 independent draws of the reference's noisy pixel distribution.

    gaussian_noise: ``byte(clamp(x + sigma * randn, 0, 1) * 255)`` in float32 (torch);
    shot_noise: ``np.uint8(255 * clip(poisson(x * c) / c, 0, 1))``; speckle_noise:
    ``np.uint8(255 * clip(x + x * N(0, sigma), 0, 1))`` (float64). Sampled per pixel from the
    exact output distribution of that chain (:mod:`.noise`), one 32-bit draw per value.
    """
    return np.concatenate([crop[None], noise_frames(crop, name, level, rng)])


# --------------------------------------------------------------------------- photometric


def motion_blur_sequence(crop: np.ndarray, params: tuple) -> np.ndarray:
    """ImageMagick MotionBlurImage(radius, sigma, angle) of the crop, one angle per frame."""
    return np.stack([quantize_like_imagemagick(motion_blur(crop, *p)) for p in params])


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


def brightness_sequence(crop: np.ndarray, deltas: tuple) -> np.ndarray:
    """skimage HSV: ``V = clip(V + c, 0, 1)``, back to RGB, ``np.uint8(x * 255)``.

    rgb2hsv is computed once (the reference recomputed it for every frame: same values) and
    hsv2rgb is replaced by :func:`hsv_factors` (identical floats, tested against skimage).
    """
    hsv = rgb2hsv(crop / 255.0)
    factors = hsv_factors(hsv)
    out = np.empty((len(deltas), *crop.shape), dtype=np.uint8)
    for i, c in enumerate(deltas):
        v = np.clip(hsv[..., 2] + c, 0, 1)
        out[i] = (v[..., None] * factors * 255).astype(np.uint8)
    return out


def gaussian_kernel_halves(sigmas: tuple, truncate: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ``gaussian_filter1d`` kernels as (weights[t, j] at offset -j, radii[t]).

    Same formula as scipy's ``_gaussian_kernel1d`` (radius ``int(truncate * sigma + 0.5)``,
    ``exp(-0.5 / sigma**2 * x**2)`` normalised by its sum), so the weights are bit-identical.
    """
    radii = np.array([int(truncate * float(s) + 0.5) for s in sigmas], dtype=np.int64)
    weights = np.zeros((len(sigmas), int(radii.max()) + 1))
    for t, (s, r) in enumerate(zip(sigmas, radii)):
        x = np.arange(-r, r + 1)
        phi = np.exp(-0.5 / (s * s) * x**2)
        phi = phi / phi.sum()
        weights[t, : r + 1] = phi[r::-1]  # offsets 0, -1, ..., -r
    return weights, radii


def gaussian_blur_sequence(crop: np.ndarray, sigmas: tuple) -> np.ndarray:
    """skimage ``gaussian(x, sigma, truncate=6)`` per channel (mode 'nearest'), truncated.

    :func:`.kernels.gaussian_blur_frames` repeats scipy's separable symmetric correlation
    operation for operation (bit-identical, tested on every frame) without its per-call setup.
    """
    weights, radii = gaussian_kernel_halves(sigmas)
    out = np.empty((len(sigmas), *crop.shape), dtype=np.uint8)
    return gaussian_blur_frames(np.ascontiguousarray(crop / 255.0), weights, radii, out)


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


def snow_sequence(crop: np.ndarray, angles: tuple, extra: tuple, rng: np.random.Generator):
    """Snow layer drawn once; frame i blurs it at angle 4 i - 150 and blends as the reference."""
    radius, sigma, blend = extra[4], extra[5], extra[6]
    layer = snow_layer(rng, extra, crop.shape[0])
    x = crop / 255.0
    gray = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY)[..., None]
    base = blend * x + (1 - blend) * np.maximum(x, gray * 1.5 + 0.5)
    out = np.empty((len(angles), *crop.shape), dtype=np.uint8)
    for i, angle in enumerate(angles):
        flakes = quantize_like_imagemagick(motion_blur(layer, radius, sigma, angle)) / 255.0
        flakes = flakes[..., None]
        out[i] = _to_uint8(base + flakes + np.rot90(flakes, k=2))
    return out


def _drip(layer: np.ndarray, kernel: tuple) -> np.ndarray:
    """``np.convolve(column, kernel, mode='same')`` down every column (the drips move down)."""
    k0, k1, k2, k3 = kernel
    out = k1 * layer
    out[:-1] += k0 * layer[1:]
    out[1:] += k2 * layer[:-1]
    out[2:] += k3 * layer[:-2]
    return out


def spatter_sequence(crop: np.ndarray, extra: tuple, frames: int, rng: np.random.Generator):
    """Water spatter whose liquid layer drips one convolution step per frame (reference order)."""
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


def _affine_crops(img256: Image.Image, specs: list[dict]) -> np.ndarray:
    """PIL bilinear affine warp (torchvision 0.2 matrix) of the 256 image, then the 224 crop.

    Computed by :func:`.kernels.affine_bilinear_crops`, Pillow's arithmetic on the crop's
    pixels only (with the full image's coordinates): bit-identical to
    ``img256.transform(size, Image.AFFINE, data, Image.BILINEAR)`` cropped (tested).
    """
    w, h = img256.size
    left, top = crop_offsets(w, h, CROP)
    mats = np.array([legacy_affine_inverse((w, h), **spec) for spec in specs], dtype=np.float64)
    out = np.empty((len(specs), CROP, CROP, 3), dtype=np.uint8)
    # the 8-bit values as doubles: PIL converts each one anyway; converting once is faster
    arr = np.asarray(img256, dtype=np.uint8).astype(np.float64)
    return affine_bilinear_crops(arr, mats, left, top, CROP, out)


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


def tilt_sequence(img256: Image.Image, angles: tuple) -> np.ndarray:
    """``cv2.warpPerspective`` (bilinear, black border) of the 256 image, then the 224 crop."""
    arr = np.asarray(img256)
    h, w = arr.shape[:2]
    left, top = crop_offsets(w, h, CROP)
    out = np.empty((len(angles), CROP, CROP, 3), dtype=np.uint8)
    for i, deg in enumerate(angles):
        full = cv2.warpPerspective(arr, tilt_homography(w, h, deg), (w, h))
        out[i] = full[top : top + CROP, left : left + CROP]
    return out


def zoom_blur_sequence(img256: Image.Image, crop: np.ndarray, scales: tuple) -> np.ndarray:
    """Running mean of zoomed crops, as ToTensor (float32 /255) sums and ``.mul(255).byte()``."""
    zoomed = _affine_crops(img256, [{"scale": s} for s in scales[1:]])
    out = np.empty((len(scales), CROP, CROP, 3), dtype=np.uint8)
    return running_mean_frames(np.ascontiguousarray(crop), zoomed, out)


# --------------------------------------------------------------------------- entry point


def make_sequence(
    image: Image.Image | np.ndarray, name: str, difficulty: int = 1, seed: Seed = None
) -> np.ndarray:
    """One ImageNet-P sequence (T x 224 x 224 x 3 uint8) of a val photo of any size.

    ``image``: PIL or HxWx3 uint8 RGB; it is resized to short side 256 first (an image already at
    256 is left as is). ``difficulty`` 1..3 is the noise strength of the noise perturbations;
    for the others the sequence is the same at every difficulty (difficulty is a frame stride
    at evaluation), so only ``difficulty=1`` is accepted for them: asking for ``rotate`` at
    difficulty 2 raises ValueError instead of silently returning the difficulty-1 frames (see
    :func:`~robustbench_assemble.perturbations.params.source_difficulty`). ``seed``: int,
    ``np.random.Generator`` or None (fresh entropy); deterministic perturbations ignore it.
    """
    sched = SCHEDULES[check_name(name)]
    check_difficulty(difficulty)
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
            return noise_sequence(crop, name, level, as_generator(seed))
        if name == "motion_blur":
            return motion_blur_sequence(crop, sched.frame_params)
        if name == "brightness":
            return brightness_sequence(crop, sched.frame_params)
        if name == "gaussian_blur":
            return gaussian_blur_sequence(crop, sched.frame_params)
        if name == "snow":
            return snow_sequence(crop, sched.frame_params, sched.extra, as_generator(seed))
        if name == "spatter":
            return spatter_sequence(crop, sched.extra, sched.frames, as_generator(seed))
    else:
        if name == "translate":
            return translate_sequence(img256, sched.frame_params)
        if name == "tilt":
            return tilt_sequence(img256, sched.frame_params)
        if name == "zoom_blur":
            return zoom_blur_sequence(img256, crop224(img256), sched.frame_params)
        if name == "rotate":
            specs = [{"angle": a} for a in sched.frame_params]
        elif name == "scale":
            specs = [{"scale": s} for s in sched.frame_params]
        elif name == "shear":
            specs = [{"shear": s} for s in sched.frame_params]
        else:  # pragma: no cover - SCHEDULES and this table are kept in step by the tests
            raise AssertionError(name)
        return _affine_crops(img256, specs)
    raise AssertionError(name)  # pragma: no cover
