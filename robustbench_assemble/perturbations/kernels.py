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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}


def split_range(fn: Callable[[int, int], object], n: int, threads: int) -> None:
    """``fn(lo, hi)`` over ``[0, n)`` cut into ``threads`` contiguous ranges, one per thread.

    The kernels here release the GIL, so frame ranges of one sequence run in parallel; each
    range's values are computed exactly as in a single call, so the result does not depend
    on ``threads``. The calling thread takes the first range.
    """
    workers = max(1, min(int(n), int(threads)))
    if workers == 1:
        if n > 0:
            fn(0, n)
        return
    bounds = np.linspace(0, n, workers + 1).astype(np.int64).tolist()
    with ThreadPoolExecutor(max_workers=workers - 1) as pool:
        futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, workers)]
        fn(bounds[0], bounds[1])
        for f in futures:
            f.result()


@numba.njit(**_JIT)
def _bilinear_edge(img, h, w, xin, yin, o, k):  # pragma: no cover - compiled
    """One output pixel near the image border: Pillow's clamped reads (``xin``/``yin`` inside)."""
    xin -= 0.5
    yin -= 0.5
    # FLOOR: xin, yin >= -0.5 here, so only (-0.5, 0) needs the -1
    x = int(xin) if xin >= 0.0 else -1
    y = int(yin) if yin >= 0.0 else -1
    dx = xin - x
    dy = yin - y
    yc = 0 if y < 0 else (y if y < h else h - 1)
    x0 = 0 if x < 0 else (x if x < w else w - 1)
    x1 = 0 if x + 1 < 0 else (x + 1 if x + 1 < w else w - 1)
    second = y + 1 >= 0 and y + 1 < h
    for b in range(3):
        p = float(img[yc, x0 * 3 + b])
        v1 = p + (float(img[yc, x1 * 3 + b]) - p) * dx
        if second:
            q = float(img[y + 1, x0 * 3 + b])
            v2 = q + (float(img[y + 1, x1 * 3 + b]) - q) * dx
        else:
            v2 = v1
        o[k + b] = int(v1 + (v2 - v1) * dy)


@numba.njit(**_JIT)
def affine_bilinear_crops(img, mats, left, top, size, out):  # pragma: no cover - compiled
    """``out[t] = Image.transform(img, AFFINE, mats[t], BILINEAR)`` cropped at (left, top).

    ``img``: (H, W, 3) 8-bit values (uint8, or float64 holding them, which is faster);
    ``mats``: (T, 6) PIL affine data (output pixel -> input pixel); ``out``: (T, size, size,
    3) uint8. Only the crop is computed, but with the whole image's output coordinates, so
    every value equals the full warp's.

    Row by row: the source positions ``a0 * xo + a1 * yo + a2`` of a whole output row first
    (``a1 * yo`` is the same product for the row, so computing it once changes nothing), then
    the runs of pixels whose four neighbours are inside the image without any clamping, then
    the border pixels one at a time.
    """
    h, w = img.shape[0], img.shape[1]
    stride = w * 3
    src = img.reshape(h, stride)
    flat = img.reshape(h * stride)
    wf, hf = float(w), float(h)
    xin = np.empty(size)
    yin = np.empty(size)
    dxs = np.empty(size)
    dys = np.empty(size)
    base = np.empty(size, np.int64)
    inner = np.empty(size, np.bool_)
    for t in range(mats.shape[0]):
        a0, a1, a2 = mats[t, 0], mats[t, 1], mats[t, 2]
        a3, a4, a5 = mats[t, 3], mats[t, 4], mats[t, 5]
        o = out[t].reshape(size * size * 3)
        for i in range(size):
            yo = (top + i) + 0.5
            c1 = a1 * yo
            c4 = a4 * yo
            for j in range(size):  # vectorised: positions, FLOOR (>= 0 only), weights
                xo = (left + j) + 0.5
                xi = a0 * xo + c1 + a2
                yi = a3 * xo + c4 + a5
                xin[j] = xi
                yin[j] = yi
                xs = xi - 0.5
                ys = yi - 0.5
                x = int(xs)
                y = int(ys)
                dxs[j] = xs - x
                dys[j] = ys - y
                base[j] = y * stride + x * 3
                inner[j] = (xs >= 0.0) & (ys >= 0.0) & (x + 1 < w) & (y + 1 < h)
            ob = i * size * 3
            j = 0
            while j < size:
                if inner[j]:  # a run of interior pixels: no clamping, no tests
                    e = j + 1
                    while e < size and inner[e]:
                        e += 1
                    for q in range(j, e):
                        p00 = base[q]
                        dx = dxs[q]
                        dy = dys[q]
                        kk = ob + q * 3
                        for b in range(3):
                            p = float(flat[p00 + b])
                            v1 = p + (float(flat[p00 + b + 3]) - p) * dx
                            r = float(flat[p00 + stride + b])
                            v2 = r + (float(flat[p00 + stride + b + 3]) - r) * dx
                            o[kk + b] = int(v1 + (v2 - v1) * dy)
                    j = e
                    continue
                xi = xin[j]
                yi = yin[j]
                if xi < 0.0 or xi >= wf or yi < 0.0 or yi >= hf:  # outside -> 0
                    o[ob + j * 3] = 0
                    o[ob + j * 3 + 1] = 0
                    o[ob + j * 3 + 2] = 0
                else:
                    _bilinear_edge(src, h, w, xi, yi, o, ob + j * 3)
                j += 1
    return out


@numba.njit(**_JIT)
def _lerp_row(src, r, x0, x1, dxs, j0, j1, dst):  # pragma: no cover - compiled
    """Pillow's first lerp ``p + (p1 - p) * dx`` of source row ``r`` at columns j0..j1-1."""
    for j in range(j0, j1):
        a = x0[j] * 3
        b = x1[j] * 3
        dx = dxs[j]
        for ch in range(3):
            p = float(src[r, a + ch])
            dst[j * 3 + ch] = p + (float(src[r, b + ch]) - p) * dx


@numba.njit(**_JIT)
def scale_bilinear_crops(img, mats, left, top, size, out):  # pragma: no cover - compiled
    """:func:`affine_bilinear_crops` for matrices without rotation or shear (a1 = a3 = 0).

    Then ``xin = a0 * xo + 0 + a2`` depends on the column only and ``yin`` on the row only
    (the same doubles as Pillow's: adding a zero product changes no non-zero sum), so the
    clamped columns, their weights and the x-lerp of a source row are shared by all output
    rows that read that row; Pillow's ``v2 = v1`` below the last row is the lerp of the
    clamped row, so every pixel is ``v1 + (v2 - v1) * dy`` of two clamped rows.
    """
    h, w = img.shape[0], img.shape[1]
    n = size * 3
    src = img.reshape(h, w * 3)
    wf, hf = float(w), float(h)
    x0 = np.empty(size, np.int64)
    x1 = np.empty(size, np.int64)
    dxs = np.empty(size)
    rows = np.empty((2, n))
    for t in range(mats.shape[0]):
        a0, a1, a2 = mats[t, 0], mats[t, 1], mats[t, 2]
        a3, a4, a5 = mats[t, 3], mats[t, 4], mats[t, 5]
        o = out[t].reshape(size, n)
        j0, j1 = size, 0  # the columns inside the image: a contiguous range
        for j in range(size):
            xo = (left + j) + 0.5
            xi = a0 * xo + a1 * (top + 0.5) + a2
            if xi < 0.0 or xi >= wf:
                continue
            j0 = min(j0, j)
            j1 = j + 1
            xs = xi - 0.5
            x = int(xs) if xs >= 0.0 else -1
            dxs[j] = xs - x
            x0[j] = 0 if x < 0 else (x if x < w else w - 1)
            x1[j] = x + 1 if x + 1 < w else w - 1
        held = np.array([-2, -2])  # source rows currently in rows[0], rows[1]
        for i in range(size):
            yo = (top + i) + 0.5
            yi = a3 * (left + 0.5) + a4 * yo + a5
            orow = o[i]
            if yi < 0.0 or yi >= hf or j1 <= j0:
                orow[:] = 0
                continue
            ys = yi - 0.5
            y = int(ys) if ys >= 0.0 else -1
            dy = ys - y
            ra = 0 if y < 0 else (y if y < h else h - 1)
            rb = y + 1 if y + 1 < h else h - 1
            for s, r in ((0, ra), (1, rb)):
                if held[s] != r:
                    other = 1 - s
                    if held[other] == r:
                        rows[s, :] = rows[other, :]
                    else:
                        _lerp_row(src, r, x0, x1, dxs, j0, j1, rows[s])
                    held[s] = r
            v1 = rows[0]
            v2 = rows[1]
            for q in range(j0 * 3):
                orow[q] = 0
            for q in range(j0 * 3, j1 * 3):
                orow[q] = int(v1[q] + (v2[q] - v1[q]) * dy)
            for q in range(j1 * 3, n):
                orow[q] = 0
    return out


@numba.njit(**_JIT)
def sample_levels(levels, bits, thresholds, guide, out):  # pragma: no cover - compiled
    """``out[f, i] = k`` with ``thresholds[v, k - 1] <= bits[f, i] < thresholds[v, k]``.

    ``levels``: (N,) uint8 input values v; ``bits``: (F, N) uint32 uniform random integers;
    ``thresholds``: (256, 256) uint64, row v the cumulative counts (out of 2**32) of the
    outputs 0..255 (last column 2**32); ``guide``: (256, G) uint16 with G a power of two,
    ``guide[v, g]`` the output of the bucket's first draw, plus 256 when a threshold falls
    inside the bucket (then the walk starts there).
    """
    log2 = 0
    while (1 << log2) < guide.shape[1]:
        log2 += 1
    shift = np.uint32(32 - log2)
    for f in range(bits.shape[0]):
        b = bits[f]
        o = out[f]
        for i in range(levels.shape[0]):
            v = levels[i]
            r = b[i]
            e = guide[v, r >> shift]
            if e < 256:
                o[i] = e
                continue
            k = e - 256
            th = thresholds[v]
            r64 = np.uint64(r)
            while r64 >= th[k]:
                k += 1
            o[i] = k
    return out


@numba.njit(**_JIT)
def running_mean_frames(first, frames, out, lo, hi):  # pragma: no cover - compiled
    """zoom_blur: ``avg = ToTensor(first)``; ``avg += ToTensor(frames[i])``; frame i + 1 is
    ``(avg / (i + 2)).mul(255).byte()``, all in float32 as the reference's torch code.

    ``first``: (H, W, 3) uint8; ``frames``: (T, H, W, 3) uint8; ``out``: (T + 1, H, W, 3).
    Only the flat values ``lo:hi`` are computed (each value is independent of the others).
    """
    n = first.size
    f0 = first.reshape(n)
    fr = frames.reshape(frames.shape[0], n)
    o = out.reshape(out.shape[0], n)
    k255 = np.float32(255.0)
    m = hi - lo
    avg = np.empty(m, np.float32)
    for p in range(m):
        avg[p] = np.float32(f0[lo + p]) / k255
        o[0, lo + p] = f0[lo + p]
    for t in range(fr.shape[0]):
        div = np.float32(t + 2)
        src = fr[t, lo:hi]
        dst = o[t + 1, lo:hi]
        for p in range(m):
            a = avg[p] + np.float32(src[p]) / k255
            avg[p] = a
            dst[p] = np.uint8(int((a / div) * k255))
    return out


@numba.njit(**_JIT)
def gaussian_blur_frames(x, weights, radii, out):  # pragma: no cover - compiled
    """``out[t] = np.uint8(255 * gaussian_filter(x, (s_t, s_t, 0), mode='nearest'))``.

    scipy's ``gaussian_filter`` runs ``correlate1d`` along axis 0, then axis 1, each with
    ndimage's loop for symmetric kernels (ni_filters.c): ``o = in[0] * w[0]``, then for
    j = r .. 1 ``o += (in[-j] + in[+j]) * w[-j]``, edges extended ('nearest'). The same
    operations in the same order here, vectorised along the rows. Row p of the axis-1 pass
    needs only row p of the axis-0 result, so each row is finished before the next one is
    started (the intermediate image never leaves the cache).

    ``x``: (H, W, C) float64; ``weights[t, j]``: the kernel's weight at offset -j (j <= r_t);
    ``out``: (T, H, W, C) uint8.
    """
    h, wd, c = x.shape
    n = wd * c
    src = x.reshape(h * n)
    o = out.reshape(out.shape[0], h * n)
    off = radii.max() * c
    pad = np.empty(n + 2 * off)  # one axis-0 row, edges repeated off / c times
    res = np.empty(n)
    for t in range(radii.shape[0]):
        r = radii[t]
        w0 = weights[t, 0]
        for p in range(h):
            row = pad[off : off + n]
            s0 = src[p * n : p * n + n]
            for q in range(n):
                row[q] = s0[q] * w0
            j = r
            while j >= 2:  # two taps per sweep: same additions, half the row traffic
                a1 = src[max(p - j, 0) * n :]
                b1 = src[min(p + j, h - 1) * n :]
                a2 = src[max(p - j + 1, 0) * n :]
                b2 = src[min(p + j - 1, h - 1) * n :]
                w1 = weights[t, j]
                w2 = weights[t, j - 1]
                for q in range(n):
                    v = row[q] + (a1[q] + b1[q]) * w1
                    row[q] = v + (a2[q] + b2[q]) * w2
                j -= 2
            if j == 1:
                a1 = src[max(p - 1, 0) * n :]
                b1 = src[min(p + 1, h - 1) * n :]
                w1 = weights[t, 1]
                for q in range(n):
                    row[q] += (a1[q] + b1[q]) * w1
            for k in range(off // c):  # 'nearest' along axis 1
                for ch in range(c):
                    pad[k * c + ch] = pad[off + ch]
                    pad[off + n + k * c + ch] = pad[off + n - c + ch]
            for q in range(n):
                res[q] = pad[off + q] * w0
            j = r
            while j >= 2:
                wa = weights[t, j]
                wb = weights[t, j - 1]
                la = pad[off - j * c :]
                ha = pad[off + j * c :]
                lb = pad[off - (j - 1) * c :]
                hb = pad[off + (j - 1) * c :]
                for q in range(n):
                    v = res[q] + (la[q] + ha[q]) * wa
                    res[q] = v + (lb[q] + hb[q]) * wb
                j -= 2
            if j == 1:
                wa = weights[t, 1]
                la = pad[off - c :]
                ha = pad[off + c :]
                for q in range(n):
                    res[q] += (la[q] + ha[q]) * wa
            ot = o[t, p * n : p * n + n]
            for q in range(n):
                ot[q] = int(255 * res[q])
    return out


@numba.njit(**_JIT)
def motion_blur_frames(src, pad, offsets, weights, out):  # pragma: no cover - compiled
    """ImageMagick's motion blur of one image at several angles, quantised as its PNG writer.

    ``out[t] = quantize_like_imagemagick(motion_blur(image, radius, sigma, angle_t))``
    (:mod:`robustbench_assemble.corruptions.motion`): the taps are summed in kernel order,
    ``acc = w_0 s_0``, ``acc = acc + w_k s_k`` (numpy's ``out += weight * slice``, starting from
    zeros, which for these non-negative values is the same double), then
    ``floor(acc * 257 + 0.5)`` clipped to 16 bits and divided by 257.

    ``src``: (H + 2 pad, W + 2 pad, C) float64, the image edge-padded by ``pad`` pixels (its
    values repeat the nearest edge pixel, as ImageMagick's virtual pixels); ``offsets``:
    (T, K, 2) int64 (dx, dy) of each tap, |d| <= pad; ``weights``: (K,); ``out``: (T, H, W, C)
    uint8.
    """
    h, c = out.shape[1], out.shape[3]
    n = out.shape[2] * c
    wp = src.shape[1] * c
    flat = src.reshape(src.size)
    dst = out.reshape(out.shape[0], h, n)
    acc = np.empty(n)
    k_taps = weights.shape[0]
    for t in range(out.shape[0]):
        for i in range(h):
            dx, dy = offsets[t, 0, 0], offsets[t, 0, 1]
            s1 = flat[(pad + dy + i) * wp + (pad + dx) * c :]
            w1 = weights[0]
            for q in range(n):
                acc[q] = w1 * s1[q]
            k = 1
            while k + 1 < k_taps:  # two taps per sweep: the same additions in the same order
                s1 = flat[(pad + offsets[t, k, 1] + i) * wp + (pad + offsets[t, k, 0]) * c :]
                s2 = flat[
                    (pad + offsets[t, k + 1, 1] + i) * wp + (pad + offsets[t, k + 1, 0]) * c :
                ]
                w1 = weights[k]
                w2 = weights[k + 1]
                for q in range(n):
                    v = acc[q] + w1 * s1[q]
                    acc[q] = v + w2 * s2[q]
                k += 2
            if k < k_taps:
                s1 = flat[(pad + offsets[t, k, 1] + i) * wp + (pad + offsets[t, k, 0]) * c :]
                w1 = weights[k]
                for q in range(n):
                    acc[q] += w1 * s1[q]
            o = dst[t, i]
            for q in range(n):
                v = np.floor(acc[q] * 257.0 + 0.5)
                v = min(max(v, 0.0), 65535.0)
                o[q] = np.uint32(v) // np.uint32(257)
    return out


@numba.njit(**_JIT)
def snow_blend_frames(base, flakes, out):  # pragma: no cover - compiled
    """``out[t] = np.uint8(clip(base + f + rot180(f), 0, 1) * 255)`` with ``f = flakes[t] / 255.``.

    The snow frame of make_imagenet_p.py: ``base`` (H, W, 3) float64, ``flakes`` (T, H, W)
    uint8 (the blurred snow layer), added channel-wise in numpy's order.
    """
    h, w, c = base.shape
    for t in range(out.shape[0]):
        ft = flakes[t]
        for i in range(h):
            for j in range(w):
                f = ft[i, j] / 255.0
                fr = ft[h - 1 - i, w - 1 - j] / 255.0
                for ch in range(c):
                    v = base[i, j, ch] + f + fr
                    v = min(max(v, 0.0), 1.0)
                    out[t, i, j, ch] = int(v * 255)
    return out


@numba.njit(**_JIT)
def brightness_frames(value, factors, deltas, out):  # pragma: no cover - compiled
    """``out[t] = np.uint8(clip(value + deltas[t], 0, 1)[..., None] * factors * 255)``.

    ``value``: (N,) float64 HSV value channel; ``factors``: (N, 3) float64 (see
    ``numpy_backend.hsv_factors``); ``out``: (T, N, 3) uint8.
    """
    n = value.shape[0]
    f = factors.reshape(n * 3)
    for t in range(deltas.shape[0]):
        d = deltas[t]
        o = out[t].reshape(n * 3)
        for p in range(n):
            v = min(max(value[p] + d, 0.0), 1.0)
            for ch in range(3):
                o[p * 3 + ch] = int(v * f[p * 3 + ch] * 255)
    return out
