"""The 19 ImageNet-C corruptions in numpy, one image at a time: ``corrupt(image, name, severity)``.

Faithful to Hendrycks' original ``imagenet_c/corruptions.py`` (PyPI ``imagenet-c==0.0.3``, as
used by ``make_imagenet_c.py``), not to the ``imagecorruptions`` port where the two differ: frost
draws among 5 textures, elastic_transform keeps the random affine step and the 244 constant,
motion blur is ImageMagick's kernel (``motion.py``), zoom_blur uses the float ``arange`` factors,
glass_blur keeps the uint8 truncation and the sequential pixel "swap" (which on numpy views is
really a copy). Random draws come from an explicit ``np.random.Generator`` (``rng.py``) drawn in
the reference's order, so an adapter that forwards to a legacy ``RandomState`` reproduces the
reference bit for bit (tests/test_corruptions.py); impulse_noise follows current
scikit-image, whose ``random_noise`` ignores the global seed (see docs/FIDELITY.md).

Each corruption function takes the HxWx3 uint8 image, its severity parameters and a Generator
and returns floats on the 0..255 scale; ``corrupt`` clips to [0, 255] and truncates with
``np.uint8`` as the reference's generator does. Sizes other than 224 x 224 work; where the
reference hard-codes 224 the obvious generalisation is used (documented per function).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import cv2
import numpy as np
import skimage.color
from PIL import Image
from scipy import ndimage

from . import params as _params
from .frost import frost_textures
from .motion import motion_blur as _motion_blur
from .motion import quantize_like_imagemagick
from .plasma import _plasma, next_power_of_two
from .rng import Seed, as_generator

__all__ = ["corrupt", "CORRUPTION_FUNCTIONS"]

#: Smallest side accepted: the blurs and the glass-blur loop need a few pixels of margin.
MIN_SIDE = 32


# --------------------------------------------------------------------------- helpers


def _gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0):
    """skimage.filters.gaussian (float input, channel_axis=-1 for 3-D): no blur across channels."""
    sigmas = (sigma, sigma, 0) if x.ndim == 3 else sigma
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius ``int(truncate*sigma + 0.5)``, weights sum to 1,
    with scipy's own arithmetic (``_gaussian_kernel1d``: integer offsets squared, then scaled),
    so the weights are scipy's to the last bit (exactly symmetric, as scipy's reversal
    assumes). The one formula behind every exact Gaussian here: corrupt_batch's blurs and
    ImageNet-P's compiled ones (``perturbations.numpy_backend.gaussian_kernel_halves``)."""
    sigma = float(sigma)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


def defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk kernel (float32; cv2.GaussianBlur of an aliased disk)."""
    if radius <= 8:
        coords = np.arange(-8, 8 + 1)
        ksize = (3, 3)
    else:
        coords = np.arange(-radius, radius + 1)
        ksize = (5, 5)
    xx, yy = np.meshgrid(coords, coords)
    aliased = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Centre crop of ceil(side/z), zoomed by z (scipy order 1), centre-trimmed to the input size.

    The reference uses the height for both sides (square images); here each side uses its own
    length, which is the same computation for a square image.
    """
    h, w = img.shape[:2]
    ch = int(np.ceil(h / float(zoom_factor)))
    cw = int(np.ceil(w / float(zoom_factor)))
    top = (h - ch) // 2
    left = (w - cw) // 2
    crop = img[top : top + ch, left : left + cw]
    if img.ndim == 2:
        zoomed = ndimage.zoom(crop, zoom_factor, order=1)
    else:
        # Per channel: the same numbers as the reference's 3-D zoom with factor 1 on the channel
        # axis (its channel weights are exactly 1 and 0), three times faster.
        zoomed = np.stack(
            [ndimage.zoom(crop[..., k], zoom_factor, order=1) for k in range(img.shape[2])],
            axis=-1,
        )
    trim_top = (zoomed.shape[0] - h) // 2
    trim_left = (zoomed.shape[1] - w) // 2
    return zoomed[trim_top : trim_top + h, trim_left : trim_left + w]


def _hsv_adjust(x: np.ndarray, channel: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(x / 255.0)
    hsv[:, :, channel] = fn(hsv[:, :, channel])
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255


# --------------------------------------------------------------------------- noise


def gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, c) on [0, 1]."""
    x = x / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x * c) / c on [0, 1]."""
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper as ``skimage.util.random_noise(mode='s&p', amount=c)``.

    Every channel element is flipped with probability ``c``; a flipped element becomes 1 or 0
    with probability 0.5 each (``salt_vs_pepper=0.5``), two independent uniform draws per
    element, in skimage's order (flip draws first, then salt draws).
    """
    out = x / 255.0
    flipped = rng.random(out.shape) <= c
    salted = rng.random(out.shape) <= 0.5
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return out * 255


def speckle_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """x + x * N(0, c) on [0, 1]."""
    x = x / 255.0
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


# --------------------------------------------------------------------------- blur


def gaussian_blur(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """skimage gaussian (mode 'nearest', truncate 4) per channel."""
    return np.clip(_gaussian(x / 255.0, c), 0, 1) * 255


def _glass_shuffle(x: np.ndarray, delta: int, rng: np.random.Generator) -> np.ndarray:
    """One pass of the reference's pixel loop, done exactly without a Python loop.

    Reference: for h from H-d down to d+1, for w from W-d down to d+1, draw (dx, dy) =
    randint(-d, d, size=2) and run ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` with
    (h', w') = (h + dy, w + dx). The right-hand side holds numpy *views*, so the first
    assignment copies x[h', w'] into x[h, w] and the second copies that same value back into
    x[h', w']: no swap, just ``x[h, w] = x[h', w']`` read at that moment. Each pixel is written
    once per pass (when it is visited), so it ends up with the original value of the end of the
    chain (h, w) -> (h', w') -> ... that follows targets already visited earlier in the loop;
    the chains are resolved by pointer jumping.
    """
    h_img, w_img = x.shape[:2]
    rows = np.arange(h_img - delta, delta, -1)
    cols = np.arange(w_img - delta, delta, -1)
    if rows.size == 0 or cols.size == 0:
        return x
    # Draws in loop order: per pixel (dx, dy). Generator.integers has randint's [low, high).
    draws = rng.integers(-delta, delta, size=(rows.size, cols.size, 2))
    hh = rows[:, None] + np.zeros_like(cols)[None, :]
    ww = np.zeros_like(rows)[:, None] + cols[None, :]
    src_h = hh + draws[..., 1]
    src_w = ww + draws[..., 0]

    n = h_img * w_img
    # Visit order: rank 0 is the first pixel visited; unvisited pixels get rank n (never earlier).
    order = np.full(n, n, dtype=np.int64)
    flat_dst = (hh * w_img + ww).ravel()
    order[flat_dst] = np.arange(flat_dst.size)
    target = np.arange(n)
    target[flat_dst] = (src_h * w_img + src_w).ravel()
    # A visited pixel whose target was visited before it inherits the target's final value.
    follows = order[target] < order
    nxt = np.where(follows, target, np.arange(n))
    while True:
        jumped = nxt[nxt]
        if np.array_equal(jumped, nxt):
            break
        nxt = jumped
    # nxt[p] is the chain's last visited pixel r; the value came from r's target, unvisited
    # (original value) or visited later than r (still original when r was visited).
    source = target[nxt]
    flat = x.reshape(n, -1)
    return flat[source].reshape(x.shape)


def glass_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """gaussian -> uint8 truncation -> local pixel shuffle (iterations) -> gaussian."""
    sigma, delta, iterations = c
    x = np.uint8(_gaussian(x / 255.0, sigma) * 255)
    for _ in range(iterations):
        x = _glass_shuffle(x, delta, rng)
    return np.clip(_gaussian(x / 255.0, sigma), 0, 1) * 255


def defocus_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """cv2.filter2D with the anti-aliased disk (BORDER_REFLECT_101), per channel."""
    kernel = defocus_kernel(radius=c[0], alias_blur=c[1])
    x = x / 255.0
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def motion_blur(
    x: np.ndarray, c: tuple, rng: np.random.Generator, angle: float | None = None
) -> np.ndarray:
    """ImageMagick MotionBlurImage, angle U(-45, 45) degrees, 8-bit result like Wand's PNG."""
    if angle is None:
        angle = rng.uniform(-45, 45)
    blurred = _motion_blur(x, radius=c[0], sigma=c[1], angle_degrees=angle)
    return quantize_like_imagemagick(blurred).astype(np.float64)


def zoom_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Mean of the image and its centre zooms by the reference's float arange factors."""
    end, step = c
    factors = np.arange(1, end, step)
    x = (x / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for zoom_factor in factors:
        out += _clipped_zoom(x, zoom_factor)
    x = (x + out) / (len(factors) + 1)
    return np.clip(x, 0, 1) * 255


# --------------------------------------------------------------------------- weather


def snow(x: np.ndarray, c: tuple, rng: np.random.Generator, angle: float | None = None):
    """Zoomed, thresholded Gaussian snow layer, motion-blurred, added twice (rot180) to a
    brightened image. Draw order as the reference: the layer, then the angle U(-135, -45)."""
    h, w = x.shape[:2]
    x = np.array(x, dtype=np.float32) / 255.0
    layer = rng.normal(size=(h, w), loc=c[0], scale=c[1])
    layer = _clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer8 = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)
    if angle is None:
        angle = rng.uniform(-135, -45)
    blurred = quantize_like_imagemagick(_motion_blur(layer8, c[4], c[5], angle))
    layer = (blurred / 255.0)[..., np.newaxis]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, w, 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def frost(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """c0 * x + c1 * (random crop of one of 5 frost textures, randint(5)).

    The crop offsets are randint(0, texture_side - image_side) as in the reference (so the last
    row/column offset is never drawn). An image larger than the chosen texture (beyond any
    reference use) gets the texture upscaled to cover it (bilinear), as imagecorruptions does.
    """
    h, w = x.shape[:2]
    textures = frost_textures()
    texture = textures[int(rng.integers(len(textures)))]
    th, tw = texture.shape[:2]
    if th < h or tw < w:
        scale = max(h / th, w / tw)
        size = (max(w, int(math.ceil(tw * scale))), max(h, int(math.ceil(th * scale))))
        texture = cv2.resize(texture, size, interpolation=cv2.INTER_LINEAR)
        th, tw = texture.shape[:2]
    x_start = int(rng.integers(0, th - h)) if th > h else 0
    y_start = int(rng.integers(0, tw - w)) if tw > w else 0
    crop = texture[x_start : x_start + h, y_start : y_start + w]
    return np.clip(c[0] * np.asarray(x) + c[1] * crop, 0, 255)


def fog(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """x + c0 * plasma, rescaled by max / (max + c0).

    The reference draws a 256 plasma map and keeps its top-left 224 x 224; for other sizes the
    map is the next power of two >= max(H, W), at least 256 (so every image up to 256 px sees
    the reference's map statistics), and its top-left H x W is used.
    """
    h, w = x.shape[:2]
    mapsize = max(256, next_power_of_two(max(h, w)))
    x = x / 255.0
    max_val = x.max()
    x += c[0] * _plasma(mapsize, c[1], rng.uniform)[:h, :w][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def brightness(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """V += c in skimage's HSV."""
    return _hsv_adjust(x, 2, lambda v: np.clip(v + c, 0, 1))


def saturate(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """S = S * c0 + c1 in skimage's HSV."""
    return _hsv_adjust(x, 1, lambda s: np.clip(s * c[0] + c[1], 0, 1))


# --------------------------------------------------------------------------- digital


def contrast(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """(x - per-channel mean) * c + mean."""
    x = x / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def jpeg_compression(x: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    """PIL JPEG round trip at quality c (bytes depend on the installed Pillow/libjpeg)."""
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=c)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float64)


def pixelate(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """PIL BOX down to int(side * c), BOX back up (the reference: int(224 * c))."""
    h, w = x.shape[:2]
    img = Image.fromarray(x)
    img = img.resize((int(w * c), int(h * c)), Image.BOX)
    img = img.resize((w, h), Image.BOX)
    return np.asarray(img, dtype=np.float64)


def elastic_transform(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Random 3-point affine (cv2, BORDER_REFLECT_101), then smooth random displacement fields
    (uniform(-1, 1) blurred with sigma c1, scaled by c0; bilinear ``map_coordinates``, reflect).
    The parameters keep the reference's 244 constant (see params.py)."""
    alpha, sigma, affine = c
    image = np.array(x, dtype=np.float32) / 255.0
    shape = image.shape
    shape_size = shape[:2]

    center_square = np.float32(shape_size) // 2
    square_size = min(shape_size) // 3
    pts1 = np.float32(
        [
            center_square + square_size,
            [center_square[0] + square_size, center_square[1] - square_size],
            center_square - square_size,
        ]
    )
    pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, matrix, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)

    dx = _gaussian(rng.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3)
    dx = (dx * alpha).astype(np.float32)
    dy = _gaussian(rng.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3)
    dy = (dy * alpha).astype(np.float32)

    # The reference samples the 3-D image at (y + dy, x + dx, z) with integer z; bilinear
    # interpolation with an integer channel coordinate is the per-channel 2-D interpolation.
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    coords = np.stack([(yy + dy).ravel(), (xx + dx).ravel()])
    out = np.empty(shape, dtype=np.float32)
    for ch in range(shape[2]):
        out[..., ch] = ndimage.map_coordinates(
            image[..., ch], coords, order=1, mode="reflect"
        ).reshape(shape[:2])
    return np.clip(out, 0, 1) * 255


def water_shading(liquid: np.ndarray) -> np.ndarray:
    """The reference's water-spatter shading of one thresholded liquid layer (HxW float >= 0):
    uint8 layer x (Canny -> distance transform -> truncate 20 -> blur -> equalizeHist -> emboss
    filter -> blur), divided by its maximum; float32 in [0, 1]. Shared by ImageNet-C's spatter
    (both engines) and ImageNet-P's dripping spatter. The uint8 conversion is the reference's
    plain ``astype`` (ImageNet-P's drips can push the layer above 1, where the reference wraps).
    The reference's BGRA copies of this single channel are equal, so one channel is computed;
    an empty layer (max 0, NaN in the reference) gives no water."""
    layer = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(layer, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, _EMBOSS)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = layer * dist
    peak = m.max()
    return m / peak if peak > 0 else np.zeros_like(m)


_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


def spatter(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Thresholded blurred Gaussian liquid layer: water (severity 1-3, cv2 edge/distance
    shading in pale turquoise) or mud (severity 4-5, brown blobs). Same cv2 calls as the
    reference; see docs/FIDELITY.md for the (weak) water severities on current OpenCV."""
    loc, scale, sigma, threshold, intensity, mode = c
    x = np.array(x, dtype=np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    liquid = _gaussian(liquid, sigma)
    liquid[liquid < threshold] = 0
    if mode == 0:
        m = water_shading(liquid) * intensity
        color = np.array([175, 238, 238], dtype=np.float32) / 255.0
        return np.clip(x + m[..., None] * color, 0, 1) * 255
    mask = np.where(liquid > threshold, 1, 0).astype(np.float32)
    mask = _gaussian(mask, intensity)
    mask[mask < 0.8] = 0
    color = np.array([63, 42, 20], dtype=np.float32) / 255.0
    x = x * (1 - mask[..., None])
    return np.clip(x + color * mask[..., None], 0, 1) * 255


# --------------------------------------------------------------------------- dispatch

CORRUPTION_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "spatter": spatter,
    "saturate": saturate,
}
assert set(CORRUPTION_FUNCTIONS) == set(_params.CORRUPTIONS)


def check_image(image: np.ndarray) -> np.ndarray:
    """Accept an HxWx3 uint8 array with both sides >= MIN_SIDE, else raise a ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy.ndarray (HxWx3 uint8), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8 (HxWx3, values 0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape HxWx3 (RGB), got {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image sides must be >= {MIN_SIDE} pixels, got {image.shape[:2]}")
    return np.ascontiguousarray(image)


def corrupt(image: np.ndarray, name: str, severity: int, seed: Seed = None) -> np.ndarray:
    """Apply ImageNet-C corruption ``name`` at ``severity`` (1..5) to an HxWx3 uint8 image.

    ``seed`` (int, ``np.random.Generator`` or None) drives every random draw: the same int
    gives the same output. ``rng.LegacyGenerator(s)`` replays the reference's stream after
    ``np.random.seed(s)`` (bit-identical output; not for impulse_noise, see docs/FIDELITY.md).
    Returns HxWx3 uint8 with the reference generator's semantics: clip to [0, 255], then
    ``np.uint8`` truncation (not rounding).
    """
    _params.check_name(name)
    c = _params.params(name, severity)
    image = check_image(image)
    rng = as_generator(seed)
    out = CORRUPTION_FUNCTIONS[name](image, c, rng)
    return np.uint8(np.clip(out, 0, 255))
