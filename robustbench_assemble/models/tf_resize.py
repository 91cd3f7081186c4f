"""The clean evaluation geometry of clovaai/assembled-cnn's TF 1.x code, in numpy.

The released models were evaluated (and their published top-1 measured) with
``preprocessing/imagenet_preprocessing.py``: decode (libjpeg, accurate integer IDCT: PIL's
pixels), ``_aspect_preserving_resize`` to a short side of ``resize`` with
``tf.image.resize_images(..., BILINEAR, align_corners=False)``, ``central_crop``, mean
subtraction. Three details differ from torchvision's ``Resize`` + ``CenterCrop``:

* the resized size is computed in float32 and truncated (``_smallest_size_at_least``), so the
  short side can come out one pixel short (e.g. 291 for 292);
* TF 1.x bilinear is the legacy kernel: no antialiasing when shrinking, no half-pixel centres
  (source coordinate ``out * in_size / out_size``), and float32 output that is never rounded
  back to uint8;
* the crop offset is ``(size - crop) // 2`` (torchvision rounds ``(size - crop) / 2``).

:func:`tf_resize_center_crop` reproduces this (tested against TensorFlow's own kernels:
tests/test_tf_resize.py, tests/tf_resize_oracle.py). Numpy only, so that the oracle script
can load this file in an environment with TensorFlow and without torch.
"""

from __future__ import annotations

import numpy as np


def tf_resized_size(height: int, width: int, resize: int) -> tuple[int, int]:
    """``_smallest_size_at_least``: the (height, width) after an aspect-preserving resize of
    the short side to ``resize``, computed in float32 and truncated as the TF graph does."""
    f32 = np.float32
    scale = f32(resize) / min(f32(height), f32(width))
    return int(f32(height) * scale), int(f32(width) * scale)


def _legacy_weights(
    in_size: int, out_size: int, start: int, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (lower, upper) and float32 weights of output pixels ``start`` ..
    ``start + count - 1`` in TF's legacy bilinear kernel (``align_corners=False``,
    ``half_pixel_centers=False``): ``in = float(out) * (in_size / float(out_size))``."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(start, start + count, dtype=np.float32) * scale
    floor = np.floor(src)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def _gather(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``image[ys][:, xs]`` for an (H, W, 3) uint8 array, 3x faster than ``np.ix_``: whole
    rows are copied first, then each pixel moves as one 3-byte element."""
    rows = image[ys]
    return rows.view("V3")[..., 0][:, xs][..., None].view(np.uint8)


def tf_resize_center_crop(image: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` -> float32 ``(crop, crop, 3)`` on the 0..255 scale, as
    assembled-cnn's eval preprocessing makes it before mean subtraction.

    Only the cropped window of the resized image is computed (each output pixel depends on
    its own coordinates alone), so the cost is that of a ``crop x crop`` image.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
    height, width = image.shape[:2]
    new_h, new_w = tf_resized_size(height, width, resize)
    if min(new_h, new_w) < crop:
        raise ValueError(
            f"a {width}x{height} image resized (TF rule) to {new_w}x{new_h} is smaller than "
            f"the {crop}x{crop} crop"
        )
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    y0, y1, wy = _legacy_weights(height, new_h, top, crop)
    x0, x1, wx = _legacy_weights(width, new_w, left, crop)
    # the four neighbours of every output pixel, gathered as uint8 (a quarter of the bytes)
    top_left, top_right, bottom_left, bottom_right = (
        _gather(image, ys, xs).astype(np.float32) for ys in (y0, y1) for xs in (x0, x1)
    )
    wx = wx[None, :, None]
    # top + (bottom - top) * y_lerp of top_left + (top_right - top_left) * x_lerp, operation by
    # operation in float32, as TF's compute_lerp
    top = top_left + (top_right - top_left) * wx
    bottom = bottom_left + (bottom_right - bottom_left) * wx
    return top + (bottom - top) * wy[:, None, None]
