"""Compiled inner loops (numba) of the CPU generator, each reproducing a library's arithmetic.

Why: the reference spends one library call per frame (PIL ``Image.transform``, numpy's
Poisson sampler, ...), and a vectorised numpy rewrite of the same float arithmetic makes ~15
passes over memory per output value, which is no faster. A compiled loop does the reference's
operations in the reference's order, once per output value, and only on the 224 crop.

- :func:`affine_bilinear_crops`: Pillow's ``ImagingGenericTransform`` + ``affine_transform`` +
  ``bilinear_filter32RGB`` (libImaging/Geometry.c): double-precision source position of the
  output pixel centre, "outside -> 0" test, ``FLOOR``, edge clamping, lerp along x then y in
  double, and truncation to uint8. Bit-identical to ``Image.transform(..., Image.BILINEAR)``
  (tests/test_perturbations.py compares every frame of rotate, scale, shear and zoom_blur).
- :func:`sample_levels`: draws each output pixel from a per-input-level categorical
  distribution with an integer inverse-CDF table and a guide table (Chen & Asau, 1974).
- :func:`running_mean_frames`: zoom_blur's float32 ``avg += ToTensor(frame)`` running mean.

numba compiles without ``fastmath`` and LLVM does not contract ``a * b + c`` into FMA there,
so every double operation rounds as the C code's does (checked by the tests, not assumed).
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True}


@numba.njit(**_JIT)
def affine_bilinear_crops(img, mats, left, top, size, out):  # pragma: no cover - compiled
    """``out[t] = Image.transform(img, AFFINE, mats[t], BILINEAR)`` cropped at (left, top).

    ``img``: (H, W, 3) 8-bit values (uint8, or float64 holding them, which is faster);
    ``mats``: (T, 6) PIL affine data (output pixel -> input pixel); ``out``: (T, size, size,
    3) uint8. Only the crop is computed, but with the whole image's output coordinates, so
    every value equals the full warp's.
    """
    h, w = img.shape[0], img.shape[1]
    for t in range(mats.shape[0]):
        a0, a1, a2 = mats[t, 0], mats[t, 1], mats[t, 2]
        a3, a4, a5 = mats[t, 3], mats[t, 4], mats[t, 5]
        for i in range(size):
            yo = (top + i) + 0.5
            for j in range(size):
                xo = (left + j) + 0.5
                xin = a0 * xo + a1 * yo + a2
                yin = a3 * xo + a4 * yo + a5
                if xin < 0.0 or xin >= w or yin < 0.0 or yin >= h:
                    out[t, i, j, 0] = 0
                    out[t, i, j, 1] = 0
                    out[t, i, j, 2] = 0
                    continue
                xin -= 0.5
                yin -= 0.5
                # FLOOR: xin, yin >= -0.5 here, so only (-0.5, 0) needs the -1
                x = int(xin) if xin >= 0.0 else -1
                y = int(yin) if yin >= 0.0 else -1
                dx = xin - x
                dy = yin - y
                if x >= 0 and x + 1 < w and y >= 0 and y + 1 < h:  # interior: no clamping
                    for b in range(3):
                        p = float(img[y, x, b])
                        v1 = p + (float(img[y, x + 1, b]) - p) * dx
                        q = float(img[y + 1, x, b])
                        v2 = q + (float(img[y + 1, x + 1, b]) - q) * dx
                        out[t, i, j, b] = int(v1 + (v2 - v1) * dy)
                    continue
                yc = 0 if y < 0 else (y if y < h else h - 1)
                x0 = 0 if x < 0 else (x if x < w else w - 1)
                x1 = 0 if x + 1 < 0 else (x + 1 if x + 1 < w else w - 1)
                second = y + 1 >= 0 and y + 1 < h
                for b in range(3):
                    p = float(img[yc, x0, b])
                    v1 = p + (float(img[yc, x1, b]) - p) * dx
                    if second:
                        q = float(img[y + 1, x0, b])
                        v2 = q + (float(img[y + 1, x1, b]) - q) * dx
                    else:
                        v2 = v1
                    out[t, i, j, b] = int(v1 + (v2 - v1) * dy)
    return out


@numba.njit(**_JIT)
def sample_levels(levels, bits, thresholds, guide, out):  # pragma: no cover - compiled
    """``out[f, i] = k`` with ``thresholds[v, k - 1] <= bits[f, i] < thresholds[v, k]``.

    ``levels``: (N,) uint8 input values v; ``bits``: (F, N) uint32 uniform random integers;
    ``thresholds``: (256, 256) uint64, row v the cumulative counts (out of 2**32) of the
    outputs 0..255 (last column 2**32); ``guide``: (256, 256) uint8, the first output whose
    threshold exceeds ``g * 2**24`` (so the walk starts at most a few outputs early).
    """
    for f in range(bits.shape[0]):
        for i in range(levels.shape[0]):
            v = levels[i]
            r = np.uint64(bits[f, i])
            k = guide[v, r >> np.uint64(24)]
            while r >= thresholds[v, k]:
                k += 1
            out[f, i] = k
    return out


@numba.njit(**_JIT)
def running_mean_frames(first, frames, out):  # pragma: no cover - compiled
    """zoom_blur: ``avg = ToTensor(first)``; ``avg += ToTensor(frames[i])``; frame i + 1 is
    ``(avg / (i + 2)).mul(255).byte()``, all in float32 as the reference's torch code.

    ``first``: (H, W, 3) uint8; ``frames``: (T, H, W, 3) uint8; ``out``: (T + 1, H, W, 3).
    """
    n = first.size
    f0 = first.reshape(n)
    fr = frames.reshape(frames.shape[0], n)
    o = out.reshape(out.shape[0], n)
    k255 = np.float32(255.0)
    avg = np.empty(n, np.float32)
    for p in range(n):
        avg[p] = np.float32(f0[p]) / k255
        o[0, p] = f0[p]
    for t in range(fr.shape[0]):
        div = np.float32(t + 2)
        for p in range(n):
            avg[p] = avg[p] + np.float32(fr[t, p]) / k255
            o[t + 1, p] = np.uint8(int((avg[p] / div) * k255))
    return out


@numba.njit(**_JIT)
def gaussian_blur_frames(x, weights, radii, out):  # pragma: no cover - compiled
    """``out[t] = np.uint8(255 * gaussian_filter(x, (s_t, s_t, 0), mode='nearest'))``.

    scipy's ``gaussian_filter`` runs ``correlate1d`` along axis 0, then axis 1, each with
    ndimage's loop for symmetric kernels (ni_filters.c): ``o = in[0] * w[0]``, then for
    j = r .. 1 ``o += (in[-j] + in[+j]) * w[-j]``, edges extended ('nearest'). The same
    operations in the same order here, vectorised along the rows.

    ``x``: (H, W, C) float64; ``weights[t, j]``: the kernel's weight at offset -j (j <= r_t);
    ``out``: (T, H, W, C) uint8.
    """
    h, wd, c = x.shape
    n = wd * c
    src = x.reshape(h, n)
    rmax = radii.max()
    tmp = np.empty((h, n))
    pad = np.empty(n + 2 * rmax * c)
    res = np.empty(n)
    for t in range(radii.shape[0]):
        r = radii[t]
        w = weights[t]
        for p in range(h):  # along axis 0: whole rows at once
            row = tmp[p]
            for q in range(n):
                row[q] = src[p, q] * w[0]
            for j in range(r, 0, -1):
                a = src[max(p - j, 0)]
                b = src[min(p + j, h - 1)]
                wj = w[j]
                for q in range(n):
                    row[q] += (a[q] + b[q]) * wj
        for p in range(h):  # along axis 1: a row padded with its edge pixels
            row = tmp[p]
            off = rmax * c
            for q in range(n):
                pad[off + q] = row[q]
            for k in range(rmax):
                for ch in range(c):
                    pad[k * c + ch] = row[ch]
                    pad[off + n + k * c + ch] = row[n - c + ch]
            for q in range(n):
                res[q] = pad[off + q] * w[0]
            for j in range(r, 0, -1):
                wj = w[j]
                lo = off - j * c
                hi = off + j * c
                for q in range(n):
                    res[q] += (pad[lo + q] + pad[hi + q]) * wj
            o = out[t, p].reshape(n)
            for q in range(n):
                o[q] = int(255 * res[q])
    return out
