"""Compiled (numba) CPU loops of ``corrupt_batch``, each doing the reference's arithmetic once
per output value.

Why: on a CPU the batched torch ops make many passes over memory per value (the HSV round
trip, 13-16 bilinear zooms, the glass loop's pointer doubling), while a compiled loop does the
reference library's operations in its order, once. numba compiles without ``fastmath`` and
LLVM does not contract ``a * b + c`` into FMA there, so double operations round as numpy's do
(bit-identity is checked by tests/test_corruptions_batch.py, not assumed).

Every kernel takes N x 3 x H x W arrays (the torch layout, as numpy views) and an image range
``[lo, hi)`` so a batch can be split over threads (``nogil``).
"""

from __future__ import annotations

import numpy as np

from ..jit import njit

_JIT = {"nogil": True, "cache": True}


@njit(**_JIT)
def hsv_adjust(x, mode, a, b, lo, hi, out):  # pragma: no cover - compiled
    """skimage ``rgb2hsv`` -> adjust -> ``hsv2rgb`` -> ``np.uint8(clip(., 0, 1) * 255)``.

    ``mode`` 0 (brightness): ``v = clip(v + a, 0, 1)``; 1 (saturate): ``s = clip(s * a + b,
    0, 1)``. Same float64 operations as skimage 0.26 (``colorconv.py``): v = max, delta =
    max - min, s = delta / v (0 where delta == 0), hue from the last of red/green/blue that
    equals v, ``(h / 6) % 1`` (0 where delta == 0), then floor(6h), f, p, q, t and the
    ``np.choose`` table.
    """
    _, _, h, w = x.shape
    for n in range(lo, hi):
        for i in range(h):
            for j in range(w):
                r = x[n, 0, i, j] / 255.0
                g = x[n, 1, i, j] / 255.0
                bl = x[n, 2, i, j] / 255.0
                v = max(r, g, bl)
                delta = v - min(r, g, bl)
                if delta == 0.0:
                    s = 0.0
                    hue = 0.0
                else:
                    s = delta / v
                    if bl == v:
                        hh = 4.0 + (r - g) / delta
                    elif g == v:
                        hh = 2.0 + (bl - r) / delta
                    else:
                        hh = (g - bl) / delta
                    hue = (hh / 6.0) % 1.0
                if mode == 0:
                    v = min(max(v + a, 0.0), 1.0)
                else:
                    s = min(max(s * a + b, 0.0), 1.0)
                hi_f = np.floor(hue * 6)
                f = hue * 6 - hi_f
                p = v * (1 - s)
                q = v * (1 - f * s)
                t = v * (1 - (1 - f) * s)
                k = int(hi_f) % 6
                if k == 0:
                    c0, c1, c2 = v, t, p
                elif k == 1:
                    c0, c1, c2 = q, v, p
                elif k == 2:
                    c0, c1, c2 = p, v, t
                elif k == 3:
                    c0, c1, c2 = p, q, v
                elif k == 4:
                    c0, c1, c2 = t, p, v
                else:
                    c0, c1, c2 = v, p, q
                out[n, 0, i, j] = np.uint8(min(max(c0, 0.0), 1.0) * 255)
                out[n, 1, i, j] = np.uint8(min(max(c1, 0.0), 1.0) * 255)
                out[n, 2, i, j] = np.uint8(min(max(c2, 0.0), 1.0) * 255)
    return out


@njit(**_JIT)
def zoom_blur(x, rows0, rows_w, cols0, cols_w, row_last, col_last, lo, hi, out):  # pragma: no cover
    """The reference zoom_blur: float32 ``x = v / 255.``, ``acc += clipped_zoom(x, z)`` over
    the factors (each zoom computed in double, stored as float32, as scipy's order-1 zoom of a
    float32 array), then ``uint8(clip((x + acc) / (F + 1), 0, 1) * 255)`` in float32.

    Factor z, output row i samples the image's rows ``rows0[z, i]`` and the next one (clamped
    to ``row_last[z]``, the crop's last row) with weights ``1 - rows_w``, ``rows_w``; columns
    likewise. Separable: each row of the crop is interpolated along x first, then rows mix.
    """
    _, c, h, w = x.shape
    nz = rows0.shape[0]
    xf = np.empty((h, w), np.float32)
    acc = np.empty((h, w), np.float32)
    tmp = np.empty((h, w), np.float64)
    cur = np.empty(w, np.float64)
    for n in range(lo, hi):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    xf[i, j] = np.float32(x[n, ch, i, j] / 255.0)
                    acc[i, j] = 0.0
            for z in range(nz):
                r_first = rows0[z, 0]
                r_end = min(rows0[z, h - 1] + 1, row_last[z])
                for r in range(r_first, r_end + 1):  # horizontal pass on the rows used
                    for j in range(w):
                        x0 = cols0[z, j]
                        x1 = min(x0 + 1, col_last[z])
                        wx = cols_w[z, j]
                        tmp[r, j] = (1.0 - wx) * xf[r, x0] + wx * xf[r, x1]
                for i in range(h):
                    y0 = rows0[z, i]
                    y1 = min(y0 + 1, row_last[z])
                    wy = rows_w[z, i]
                    for j in range(w):
                        cur[j] = (1.0 - wy) * tmp[y0, j] + wy * tmp[y1, j]
                    for j in range(w):
                        acc[i, j] += np.float32(cur[j])
            div = np.float32(nz + 1)
            for i in range(h):
                for j in range(w):
                    y = (xf[i, j] + acc[i, j]) / div
                    y = min(max(y, np.float32(0.0)), np.float32(1.0)) * np.float32(255.0)
                    out[n, ch, i, j] = np.uint8(y)
    return out


@njit(**_JIT)
def glass_copy(y, offsets, d, lo, hi):  # pragma: no cover - compiled
    """The reference glass-blur pass, in place: rows H-d .. d+1 and columns W-d .. d+1, both
    descending, ``y[h, w] = y[h + dy, w + dx]`` (the numpy-view "swap" is this copy).

    ``offsets``: N x R x C x 2 (dx, dy) for rows/columns d+1.. ascending.
    """
    _, c, h, w = y.shape
    for n in range(lo, hi):
        for hh in range(h - d, d, -1):
            for ww in range(w - d, d, -1):
                dx = offsets[n, hh - d - 1, ww - d - 1, 0]
                dy = offsets[n, hh - d - 1, ww - d - 1, 1]
                for ch in range(c):
                    y[n, ch, hh, ww] = y[n, ch, hh + dy, ww + dx]
    return y


@njit(**_JIT)
def pil_box_pass(x, idx, wts, axis, bits, lo, hi, out):  # pragma: no cover - compiled
    """One pass of Pillow's 8-bit resampling (``ImagingResampleHorizontal/Vertical_8bpc``):
    ``clip8((2**(bits-1) + sum_k in[idx[o, k]] * wts[o, k]) >> bits)`` along ``axis`` (3 =
    columns, 2 = rows), integer weights from ``torch_ops.pil_box_taps`` (as int32, so the
    sums stay 32-bit like Pillow's ``INT32 ss``).
    """
    _, c, h, w = out.shape
    half = np.int32(1) << (bits - 1)
    taps = idx.shape[1]
    acc = np.empty(w, np.int32)
    for n in range(lo, hi):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    acc[j] = half
                if axis == 3:
                    for k in range(taps):  # tap-major: vectorised over j
                        for j in range(w):
                            acc[j] += np.int32(x[n, ch, i, idx[j, k]]) * wts[j, k]
                else:  # rows: whole rows at once (vectorised over j)
                    for k in range(taps):
                        wk = wts[i, k]
                        if wk == 0:
                            continue
                        r = idx[i, k]
                        for j in range(w):
                            acc[j] += np.int32(x[n, ch, r, j]) * wk
                for j in range(w):
                    v = acc[j] >> bits
                    out[n, ch, i, j] = 0 if v < 0 else (255 if v > 255 else v)
    return out


@njit(**_JIT)
def sample_table(levels, bits, thresholds, guide, out):  # pragma: no cover - compiled
    """``out[i] = k`` with ``thresholds[v, k - 1] <= bits[i] < thresholds[v, k]``, v =
    ``levels[i]``: inverse-CDF sampling with a guide table (Chen & Asau, 1974).

    ``bits``: uniform 31-bit integers (int32 >= 0); ``thresholds``: (256, 256) uint32, row v
    the cumulative counts out of 2**31 of outputs 0..255 (last = 2**31); ``guide[v, g]``: the
    first output whose threshold exceeds ``g * 2**23``.
    """
    for i in range(levels.shape[0]):
        v = levels[i]
        r = np.uint32(bits[i])
        k = guide[v, r >> 23]
        while r >= thresholds[v, k]:
            k += 1
        out[i] = k
    return out


@njit(**_JIT)
def lookup2(a, b, table, out):  # pragma: no cover - compiled
    """``out[i] = table[a[i], b[i]]`` on flat uint8 arrays: a uint8 function of two uint8
    inputs, precomputed for all 65,536 pairs (frost's blend)."""
    for i in range(a.shape[0]):
        out[i] = table[a[i], b[i]]
    return out


@njit(**_JIT)
def _reflect(c, n):  # pragma: no cover - compiled
    """scipy.ndimage's ``map_coordinate`` for mode 'reflect' (half-sample symmetric), with its
    double operations and integer truncations. scipy's branch for an axis of length 1 is left
    out: corrupt_batch refuses sides below 32."""
    if c < 0:
        sz2 = 2 * n
        if c < -sz2:
            c = sz2 * np.int64(-c / sz2) + c
        if c < -n:
            c = c + sz2
        else:
            c = (1e-15 if c > -1e-15 else -c) - 1
    elif c > n - 1:
        sz2 = 2 * n
        c -= sz2 * np.int64(c / sz2)
        if c >= n:
            c = sz2 - c - 1
    return c


@njit(**_JIT)
def _linear_taps(c, n):  # pragma: no cover - compiled
    """Indices and weights of scipy's order-1 spline at ``c`` (mode 'reflect'); ``ok`` False
    where scipy falls back to ``cval`` (a mapped coordinate <= -1: only NaN here)."""
    if 0.0 <= c < n - 1:  # inside (most positions): scipy maps nothing
        f = np.floor(c)
        w0 = 1.0 - (c - f)
        start = np.int64(f)
        return start, start + 1, w0, 1.0 - w0, True
    c = _reflect(c, n)
    if not c > -1.0:
        return 0, 0, 0.0, 0.0, False
    f = np.floor(c)
    start = np.int64(f)
    i0, i1 = start, start + 1
    if start < 0 or start + 1 >= n:  # border: the taps' indices are reflected too
        i0 = np.int64(_reflect(float(start), n))
        i1 = np.int64(_reflect(float(start + 1), n))
    w0 = 1.0 - (c - f)
    return i0, i1, w0, 1.0 - w0, True


@njit(**_JIT)
def elastic_resample(planes, fields, alpha, lo, hi, out):  # pragma: no cover - compiled
    """elastic_transform's ``map_coordinates(order=1, mode='reflect')``.

    ``planes``: N x C x H x W float32 (the warped image); ``fields``: N x 2 x H x W float64
    blurred fields (column, then row displacement before ``* alpha``); ``out``: float32 like
    ``planes``. Each displacement is scaled and rounded to float32 (as the reference), added
    to the pixel index in float64; the value is scipy's float64 sum of ``v * w_row * w_col``
    in its tap order, stored as float32.
    """
    _, ch, h, w = planes.shape
    for n in range(lo, hi):
        for i in range(h):
            for j in range(w):
                dx = np.float64(np.float32(fields[n, 0, i, j] * alpha))
                dy = np.float64(np.float32(fields[n, 1, i, j] * alpha))
                r0, r1, wr0, wr1, okr = _linear_taps(float(i) + dy, h)
                c0, c1, wc0, wc1, okc = _linear_taps(float(j) + dx, w)
                for k in range(ch):
                    t = 0.0  # scipy's cval where a coordinate is not mapped
                    if okr and okc:
                        t += np.float64(planes[n, k, r0, c0]) * wr0 * wc0
                        t += np.float64(planes[n, k, r0, c1]) * wr0 * wc1
                        t += np.float64(planes[n, k, r1, c0]) * wr1 * wc0
                        t += np.float64(planes[n, k, r1, c1]) * wr1 * wc1
                    out[n, k, i, j] = np.float32(t)


@njit(**_JIT)
def _wibbled(total, wibble, u):  # pragma: no cover - compiled
    """The reference's ``total / 4 + wibble * np.random.uniform(-wibble, wibble)``, numpy's
    uniform being ``low + (high - low) * u``."""
    return total / 4.0 + wibble * (-wibble + (2.0 * wibble) * u)


@njit(**_JIT)
def plasma_fractal(uniforms, wibbledecay, lo, hi, out):  # pragma: no cover - compiled
    """fog's diamond-square maps, the reference's ``plasma_fractal`` in float64, per image.

    ``uniforms``: N x U U[0, 1) draws, per level (k = 1, 2, ..., S/2 cells a side) three
    k x k fields in the order the reference draws them (square step, then the diamond steps
    on the top edges and on the left edges); ``out``: N x S x S float64 maps in [0, 1]. The
    sums are the reference's ``np.roll`` sums in its order, the map ``(m - min) / max``.
    """
    size = out.shape[1]
    for n in range(lo, hi):
        g = out[n]
        g[0, 0] = 0.0
        step = size
        wibble = 100.0
        pos = 0
        k = 1
        acc = np.empty((size // 2, size // 2))
        while step >= 2:
            half = step // 2
            for a in range(k):  # square step: corner + corner below, then + right neighbour
                for b in range(k):
                    acc[a, b] = g[a * step, b * step] + g[((a + 1) % k) * step, b * step]
            for a in range(k):
                for b in range(k):
                    total = acc[a, b] + acc[a, (b + 1) % k]
                    g[half + a * step, half + b * step] = _wibbled(
                        total, wibble, uniforms[n, pos + a * k + b]
                    )
            pos += k * k
            for a in range(k):  # diamonds on the top edges: centre above + centre, corners
                for b in range(k):
                    total = (
                        g[half + a * step, half + b * step]
                        + g[half + ((a - 1) % k) * step, half + b * step]
                    ) + (g[a * step, b * step] + g[a * step, ((b + 1) % k) * step])
                    g[a * step, half + b * step] = _wibbled(
                        total, wibble, uniforms[n, pos + a * k + b]
                    )
            pos += k * k
            for a in range(k):  # diamonds on the left edges
                for b in range(k):
                    total = (
                        g[half + a * step, half + b * step]
                        + g[half + a * step, half + ((b - 1) % k) * step]
                    ) + (g[a * step, b * step] + g[((a + 1) % k) * step, b * step])
                    g[half + a * step, b * step] = _wibbled(
                        total, wibble, uniforms[n, pos + a * k + b]
                    )
            pos += k * k
            step = half
            k *= 2
            wibble /= wibbledecay
        low = g.min()
        for i in range(size):
            for j in range(size):
                g[i, j] -= low
        high = g.max()
        for i in range(size):
            for j in range(size):
                g[i, j] /= high


@njit(**_JIT)
def fog_blend(x, plasma, strength, lo, hi, out):  # pragma: no cover - compiled
    """fog's float64 blend of uint8 images ``x`` with their maps (N x S x S, top-left used):
    ``v = x / 255 + strength * map``, then ``uint8(clip(v * m / (m + strength), 0, 1) * 255)``
    with ``m`` the image's largest ``x / 255``, the reference's operations in its order."""
    _, ch, h, w = x.shape
    for n in range(lo, hi):
        top = 0
        for c in range(ch):
            for i in range(h):
                for j in range(w):
                    top = max(top, x[n, c, i, j])
        m = top / 255.0
        d = m + strength
        for c in range(ch):
            for i in range(h):
                for j in range(w):
                    v = x[n, c, i, j] / 255.0 + strength * plasma[n, i, j]
                    out[n, c, i, j] = np.uint8(min(max(v * m / d, 0.0), 1.0) * 255.0)


@njit(**_JIT)
def spatter_blend(x, m, scale, color, mud, lo, hi, out):  # pragma: no cover - compiled
    """spatter's float32 blend of uint8 images ``x`` with its N x H x W float32 mask ``m``.

    Water (``mud`` False): ``x/255 + (m * scale) * color``; mud: ``x/255 * (1 - m) + color *
    m``; then ``uint8(clip(., 0, 1) * 255)``. ``color``: float32 RGB already divided by 255.
    Every operation is float32 as in the torch version (one pass instead of six).
    """
    _, ch, h, w = x.shape
    s = np.float32(scale)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    full = np.float32(255.0)
    for n in range(lo, hi):
        for c in range(ch):
            col = color[c]
            for i in range(h):
                for j in range(w):
                    xf = np.float32(x[n, c, i, j]) / full
                    mm = m[n, i, j]
                    if mud:
                        v = xf * (one - mm) + col * mm
                    else:
                        v = xf + (mm * s) * col
                    v = min(max(v, zero), one)
                    out[n, c, i, j] = np.uint8(v * full)


@njit(**_JIT)
def unit(x, lo, hi, out):  # pragma: no cover - compiled
    """Flat uint8 -> float32 ``x / 255`` over ``[lo, hi)``, as torch's ``x.float() / 255.0``
    (a float32 division), in one pass."""
    full = np.float32(255.0)
    for k in range(lo, hi):
        out[k] = np.float32(x[k]) / full


@njit(**_JIT)
def to_uint8(x, lo, hi, out):  # pragma: no cover - compiled
    """Flat float32 (or float64: the constants are exact in both) -> ``uint8(clip(x, 0, 1) *
    255)`` (truncation) over ``[lo, hi)``, in the input's precision."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    full = np.float32(255.0)
    for k in range(lo, hi):
        out[k] = np.uint8(min(max(x[k], zero), one) * full)


@njit(**_JIT)
def snow_blend(x, gray, levels, blend, lo, hi, out):  # pragma: no cover - compiled
    """snow's final blend of uint8 images ``x`` with the N x H x W blurred snow ``levels``
    (0..255, the PNG the reference decodes), given OpenCV's float32 gray of ``x / 255``.

    ``blend * x + (1 - blend) * max(x, 1.5 gray + 0.5)`` in float32, as the reference's
    float32 image; then, as there, the layer ``levels / 255`` and the layer rotated by 180
    degrees added in float64 (numpy promotes the float32 image to the float64 layer's type),
    then ``uint8(clip(., 0, 1) * 255)``; one pass.
    """
    _, ch, h, w = x.shape
    full = np.float32(255.0)
    b = np.float32(blend)
    nb = np.float32(1.0 - blend)
    for n in range(lo, hi):
        for i in range(h):
            for j in range(w):
                lift = gray[n, i, j] * np.float32(1.5) + np.float32(0.5)
                snow = np.float64(levels[n, i, j]) / 255.0
                flip = np.float64(levels[n, h - 1 - i, w - 1 - j]) / 255.0
                for c in range(ch):
                    v = np.float32(x[n, c, i, j]) / full
                    v = b * v + nb * max(v, lift)
                    t = np.float64(v) + snow + flip
                    out[n, c, i, j] = np.uint8(min(max(t, 0.0), 1.0) * 255.0)
