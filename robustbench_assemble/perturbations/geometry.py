"""The warps of the geometric perturbations, as the 2018 generator computed them.

make_imagenet_p.py called ``torchvision.transforms.functional.affine`` of its time
(torchvision 0.2.x, the API with ``resample=`` and a scalar ``shear``), which hands PIL an
inverse affine matrix built around the centre ``(w/2 + 0.5, h/2 + 0.5)`` with the rotation /
shear matrix ``[[cos a, -sin(a + s)], [sin a, cos(a + s)]] * scale``. Current torchvision uses
the centre ``(w/2, h/2)`` and a different shear formula, so calling today's ``affine`` would move
every rotated, scaled and sheared frame by half a pixel and change the shear. This module
rebuilds the 2018 matrix (:func:`legacy_affine_inverse`) and OpenCV's tilt homography
(:func:`tilt_homography`), so both backends warp with the reference's geometry.
"""

from __future__ import annotations

import math

import numpy as np


def legacy_affine_inverse(
    size: tuple[int, int],
    angle: float = 0.0,
    translate: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    shear: float = 0.0,
) -> tuple[float, float, float, float, float, float]:
    """PIL ``Image.AFFINE`` data (output pixel -> input pixel) of torchvision 0.2 ``affine``.

    ``size`` is PIL's (width, height). Angles are in degrees (counter-clockwise, PIL's sense).
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    w, h = size
    cx, cy = w * 0.5 + 0.5, h * 0.5 + 0.5
    a = math.radians(angle)
    s = math.radians(shear)
    inv_scale = 1.0 / scale
    d = math.cos(a + s) * math.cos(a) + math.sin(a + s) * math.sin(a)
    m = [math.cos(a + s), math.sin(a + s), 0.0, -math.sin(a), math.cos(a), 0.0]
    m = [inv_scale / d * v for v in m]
    tx, ty = translate
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return tuple(m)  # type: ignore[return-value]


def crop_offsets(width: int, height: int, size: int = 224) -> tuple[int, int]:
    """(left, top) of torchvision's CenterCrop(size) (same rounding as images.center_crop)."""
    if width < size or height < size:
        raise ValueError(f"image of size {width}x{height} is smaller than the {size} crop")
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0))


def tilt_homography(width: int, height: int, degrees: float) -> np.ndarray:
    """The 3x3 matrix make_imagenet_p.py gave ``cv2.warpPerspective`` for tilt (src -> dst).

    Rotation about the x and y axes by the same angle (phi = theta), camera at distance
    f = sqrt(w^2 + h^2), projected back with focal length f around the image centre.
    """
    phi = theta = np.deg2rad(degrees)
    w, h = float(width), float(height)
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array(
        [
            [1, 0, 0, 0],
            [0, np.cos(theta), -np.sin(theta), 0],
            [0, np.sin(theta), np.cos(theta), 0],
            [0, 0, 0, 1],
        ]
    )
    ry = np.array(
        [
            [np.cos(phi), 0, -np.sin(phi), 0],
            [0, 1, 0, 0],
            [np.sin(phi), 0, np.cos(phi), 0],
            [0, 0, 0, 1],
        ]
    )
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1
