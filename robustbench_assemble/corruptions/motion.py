"""ImageMagick's ``MotionBlurImage`` reimplemented in numpy (ImageNet-C motion_blur and snow).

The reference calls ``MagickMotionBlurImage(wand, radius, sigma, angle)`` through Wand on a
PNG round trip. This module reproduces ImageMagick 6.9 (``magick/effect.c``; checked against
the installed 6.9.11-60 Q16 through Wand, see tests/test_corruptions.py):

- kernel width ``GetOptimalKernelWidth1D(radius, sigma)`` = ``2*ceil(radius)+1`` for
  radius > 0 (ImageMagick's own search for radius <= 0 is reproduced too);
- one-sided Gaussian weights ``exp(-i^2 / (2 sigma^2))``, i = 0..width-1, normalised to sum 1
  (the centre pixel has the largest weight: the blur trails to one side);
- tap i reads the pixel at ``(x + ceil(i*cos(a) - 0.5), y + ceil(i*sin(a) - 0.5))`` with a in
  radians, x the column and y the row (image rows grow downwards);
- pixels outside the image repeat the nearest edge pixel (ImageMagick's default "edge"
  virtual-pixel method);
- the sum is rounded to a 16-bit quantum and the PNG writer truncates it back to 8 bits
  (:func:`quantize_like_imagemagick`).

Measured against Wand on real photos (angles -135..45, radius/sigma 10/3 and 20/15):
bit-identical 8-bit output (tests/test_corruptions.py::test_motion_blur_matches_wand).
"""

from __future__ import annotations

import math

import numpy as np

# ImageMagick constants (magick/magick-type.h, Q16).
_MAGICK_EPSILON = 1.0e-12
_QUANTUM_RANGE = 65535.0


def kernel_width(radius: float, sigma: float) -> int:
    """ImageMagick's ``GetOptimalKernelWidth1D``: ``2*ceil(radius)+1`` when radius > 0."""
    if radius > _MAGICK_EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= _MAGICK_EPSILON:
        return 3
    alpha = 1.0 / (2.0 * gamma * gamma)
    beta = 1.0 / (math.sqrt(2.0 * math.pi) * gamma)
    width = 5
    while True:
        j = (width - 1) // 2
        i = np.arange(-j, j + 1, dtype=np.float64)
        normalize = float(np.sum(np.exp(-(i * i) * alpha) * beta))
        value = math.exp(-(j * j) * alpha) * beta / normalize
        if value < 1.0 / _QUANTUM_RANGE or value < _MAGICK_EPSILON:
            break
        width += 2
    return width - 2


def motion_blur_kernel(radius: float, sigma: float) -> np.ndarray:
    """The 1-D weights ImageMagick's MotionBlurImage uses (float64, sum 1, tap 0 first)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    width = kernel_width(radius, sigma)
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i * i) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)
    return weights / weights.sum()


def motion_blur_offsets(width: int, angle_degrees: float) -> np.ndarray:
    """Integer (dx, dy) per tap, shape (width, 2): column and row offsets of tap i."""
    theta = math.radians(angle_degrees)
    point_x = width * math.sin(theta)
    point_y = width * math.cos(theta)
    norm = math.hypot(point_x, point_y)
    i = np.arange(width, dtype=np.float64)
    dx = np.ceil(i * point_y / norm - 0.5)
    dy = np.ceil(i * point_x / norm - 0.5)
    return np.stack([dx, dy], axis=1).astype(np.int64)


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle_degrees: float) -> np.ndarray:
    """Motion-blur an HxW or HxWxC image; returns float64 on the input's scale, unrounded.

    For the reference's 8-bit result apply :func:`quantize_like_imagemagick` to the output.
    """
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got shape {arr.shape}")
    h, w = arr.shape[:2]
    weights = motion_blur_kernel(radius, sigma)
    offsets = motion_blur_offsets(len(weights), angle_degrees)
    # Edge-replicate padding by the largest offset turns every tap into a slice; out-of-image
    # reads then see the nearest edge pixel, like ImageMagick's edge virtual pixels. Taps are
    # accumulated in kernel order (as ImageMagick sums them) in float64.
    pad = int(np.abs(offsets).max())
    src = arr.astype(np.float64, copy=False)
    if pad:
        widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (arr.ndim - 2)
        src = np.pad(src, widths, mode="edge")
    out = np.zeros(arr.shape, dtype=np.float64)
    for weight, (dx, dy) in zip(weights, offsets):
        out += weight * src[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    return out


def quantize_like_imagemagick(values: np.ndarray) -> np.ndarray:
    """8-bit values of a blurred image after ImageMagick (Q16) and its 8-bit PNG writer.

    ``values`` are on the 0..255 scale. ImageMagick holds the 8-bit input as 16-bit quanta
    (x * 257) and rounds the weighted sum to a quantum (``ClampToQuantum``); the installed
    6.9.11 PNG writer then truncates ``q / 257`` to 8 bits (measured against Wand: a value
    rounds up only when its fraction is >= 1 - 0.5/257, so plain rounding would be 1 gray
    level off on half the pixels).
    """
    q16 = np.clip(np.floor(np.asarray(values, dtype=np.float64) * 257.0 + 0.5), 0, 65535)
    return (q16.astype(np.uint32) // 257).astype(np.uint8)
