"""Inputs shared by tests/tf_resize_oracle.py (TensorFlow side) and tests/test_tf_resize.py."""

from __future__ import annotations

import numpy as np

#: Photo-sized inputs of the fixture: (height, width) and the (resize, crop) they go through.
PHOTO_CASES = (((375, 500), (256, 224)), ((500, 333), (292, 256)), ((333, 500), (257, 256)))


def hashed_image(height: int, width: int) -> np.ndarray:
    """A deterministic noise-like uint8 image (an integer hash of the coordinates, no RNG), too
    large to store in the fixture, so both sides rebuild it."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    h = (y * 1103515245 + x * 12345 + c * 2654435761) % (2**31)
    return ((h >> 11) % 256).astype(np.uint8)
