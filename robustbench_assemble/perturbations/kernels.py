"""Compiled inner loops (numba) of the CPU generator, each reproducing a library's arithmetic.

Why: the reference spends one library call per frame (PIL ``Image.transform``, numpy's
Poisson sampler, ...), and a vectorised numpy rewrite of the same float arithmetic makes ~15
passes over memory per output value, which is no faster. A compiled loop does the reference's
operations in the reference's order, once per output value, and only on the 224 crop.

- :func:`affine_bilinear_packed` / :func:`scale_bilinear_packed`: Pillow's
  ``ImagingGenericTransform`` + ``affine_transform`` + ``bilinear_filter32RGB``
  (libImaging/Geometry.c): double-precision source position of the output pixel centre,
  "outside -> 0" test, ``FLOOR``, edge clamping, lerp along x then y in double, and truncation
  to uint8, on the image packed as one 32-bit word per pixel (:func:`pack_rgb`).
  Bit-identical to ``Image.transform(..., Image.BILINEAR)`` (tests/test_perturbations.py
  compares every frame of rotate, scale, shear and zoom_blur).
- :func:`sample_levels`: draws each output pixel from a per-input-level categorical
  distribution with an integer inverse-CDF table and a guide table (Chen & Asau, 1974).
- :func:`running_mean_frames`: zoom_blur's float32 ``avg += ToTensor(frame)`` running mean.

numba compiles without ``fastmath`` and LLVM does not contract ``a * b + c`` into FMA there,
so every double operation rounds as the C code's does (checked by the tests, not assumed).
Loops that LLVM should vectorise run from 0 over arrays or slices (numba's wraparound of a
possibly negative index, ``a[off + q]``, keeps them scalar) and store into few arrays per loop
(LLVM gives up when too many pairs of arrays would need overlap checks).
"""

from __future__ import annotations

import numpy as np

from ..jit import njit

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}


@njit(**_JIT)
def pack_rgb(img, px):  # pragma: no cover - compiled
    """``px[y, x] = r | g << 8 | b << 16``: one 32-bit word per pixel for the warps.

    ``img``: (H, W, 3) 8-bit values (uint8, or floats holding them); ``px``: (H, W) uint32.
    One word load fetches a neighbour's three channels, so the warps gather 4 words per
    output pixel instead of 12 values (a 256 x 341 image is 350 kB: it stays in L2).
    """
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            r = np.uint32(img[y, x, 0])
            g = np.uint32(img[y, x, 1])
            b = np.uint32(img[y, x, 2])
            px[y, x] = r | (g << np.uint32(8)) | (b << np.uint32(16))
    return px


@njit(**_JIT)
def _chan(v, ch):  # pragma: no cover - compiled
    """Channel ``ch`` of a packed pixel as the double Pillow converts it to."""
    return float((v >> np.uint32(8 * ch)) & np.uint32(255))


@njit(**_JIT)
def _bilinear_edge(px, xin, yin, o, k):  # pragma: no cover - compiled
    """One output pixel near the image border: Pillow's clamped reads (``xin``/``yin`` inside)."""
    h, w = px.shape
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
        p = _chan(px[yc, x0], b)
        v1 = p + (_chan(px[yc, x1], b) - p) * dx
        if second:
            q = _chan(px[y + 1, x0], b)
            v2 = q + (_chan(px[y + 1, x1], b) - q) * dx
        else:
            v2 = v1
        o[k + b] = int(v1 + (v2 - v1) * dy)


@njit(**_JIT)
def affine_bilinear_packed(px, mats, left, top, size, out):  # pragma: no cover - compiled
    """``out[t] = Image.transform(img, AFFINE, mats[t], BILINEAR)`` cropped at (left, top).

    ``px``: (H, W) uint32, the image packed by :func:`pack_rgb`; ``mats``: (T, 6) PIL affine
    data (output pixel -> input pixel); ``out``: (T, size, size, 3) uint8. Only the crop is
    computed, but with the whole image's output coordinates, so every value equals the full
    warp's.

    Each output row in stages, so that LLVM vectorises the arithmetic (the operations per
    value are Pillow's, in its order): (1) the source positions ``a0 * xo + a1 * yo + a2``
    (``a1 * yo`` is the same product for the whole row), FLOOR and the weights; (2) the four
    neighbour words of every pixel whose neighbours are all inside (scalar loads into
    contiguous arrays); (3) the lerps along x then y in double and the truncation, for the
    whole row; (4) the pixels near or outside the border again, one at a time, with Pillow's
    clamping and its "outside -> 0" test.
    """
    h, w = px.shape
    flat = px.reshape(h * w)
    wf, hf = float(w), float(h)
    dxs = np.empty(size)
    dys = np.empty(size)
    idx = np.empty(size, np.int64)
    inner = np.empty(size, np.bool_)
    na = np.empty(size, np.uint32)
    nb = np.empty(size, np.uint32)
    nc = np.empty(size, np.uint32)
    nd = np.empty(size, np.uint32)
    for t in range(mats.shape[0]):
        a0, a1, a2 = mats[t, 0], mats[t, 1], mats[t, 2]
        a3, a4, a5 = mats[t, 3], mats[t, 4], mats[t, 5]
        o = out[t].reshape(size, size * 3)
        for i in range(size):
            yo = (top + i) + 0.5
            c1 = a1 * yo
            c4 = a4 * yo
            n_in = 0
            for j in range(size):  # (1) vectorised: positions, FLOOR (>= 0 only), weights
                xo = (left + j) + 0.5
                xs = (a0 * xo + c1 + a2) - 0.5
                ys = (a3 * xo + c4 + a5) - 0.5
                x = int(xs)
                y = int(ys)
                dxs[j] = xs - x
                dys[j] = ys - y
                ok = (xs >= 0.0) & (ys >= 0.0) & (x + 1 < w) & (y + 1 < h)
                inner[j] = ok
                n_in += ok
                idx[j] = y * w + x if ok else 0
            orow = o[i]
            if n_in > 0:
                for j in range(size):  # (2) gather (the border pixels read pixel 0)
                    p = idx[j]
                    na[j] = flat[p]
                    nb[j] = flat[p + 1]
                    nc[j] = flat[p + w]
                    nd[j] = flat[p + w + 1]
                for j in range(size):  # (3) vectorised: Pillow's lerps, truncation
                    dx = dxs[j]
                    dy = dys[j]
                    for ch in range(3):
                        p = _chan(na[j], ch)
                        v1 = p + (_chan(nb[j], ch) - p) * dx
                        r = _chan(nc[j], ch)
                        v2 = r + (_chan(nd[j], ch) - r) * dx
                        orow[j * 3 + ch] = int(v1 + (v2 - v1) * dy)
            if n_in < size:
                for j in range(size):  # (4) border and outside pixels
                    if inner[j]:
                        continue
                    xo = (left + j) + 0.5
                    xi = a0 * xo + c1 + a2
                    yi = a3 * xo + c4 + a5
                    if xi < 0.0 or xi >= wf or yi < 0.0 or yi >= hf:  # outside -> 0
                        orow[j * 3] = 0
                        orow[j * 3 + 1] = 0
                        orow[j * 3 + 2] = 0
                    else:
                        _bilinear_edge(px, xi, yi, orow, j * 3)
    return out


@njit(**_JIT)
def _lerp_row(row, x0, x1, dxs, na, nb, dst):  # pragma: no cover - compiled
    """Pillow's first lerp ``p + (p1 - p) * dx`` of a packed source row at the columns
    ``x0``/``x1`` into ``dst[channel, k]``: the words gathered first, then one vectorised loop
    per channel (one output array per loop keeps LLVM's overlap checks few enough, and
    loops from 0 let it drop numba's negative-index wraparound)."""
    m = x0.shape[0]
    for k in range(m):
        na[k] = row[x0[k]]
        nb[k] = row[x1[k]]
    for ch in range(3):
        d = dst[ch]
        for k in range(m):
            p = _chan(na[k], ch)
            d[k] = p + (_chan(nb[k], ch) - p) * dxs[k]


@njit(**_JIT)
def _lerp_out(v1, v2, dy, m, orow):  # pragma: no cover - compiled
    """Pillow's second lerp ``v1 + (v2 - v1) * dy`` and truncation of ``m`` pixels."""
    for k in range(m):
        for ch in range(3):
            orow[k * 3 + ch] = int(v1[ch, k] + (v2[ch, k] - v1[ch, k]) * dy)


@njit(**_JIT)
def scale_bilinear_packed(px, mats, left, top, size, out):  # pragma: no cover - compiled
    """:func:`affine_bilinear_packed` for matrices without rotation or shear (a1 = a3 = 0).

    Then ``xin = a0 * xo + 0 + a2`` depends on the column only and ``yin`` on the row only
    (the same doubles as Pillow's: adding a zero product changes no non-zero sum), so the
    clamped columns, their weights and the x-lerp of a source row are shared by all output
    rows that read that row (two rows are kept); Pillow's ``v2 = v1`` below the last row is
    the lerp of the clamped row, so every pixel is ``v1 + (v2 - v1) * dy`` of two clamped
    rows. Rows and columns outside the image are zero.
    """
    h, w = px.shape
    n = size * 3
    wf, hf = float(w), float(h)
    x0 = np.empty(size, np.int64)
    x1 = np.empty(size, np.int64)
    dxs = np.empty(size)
    na = np.empty(size, np.uint32)
    nb = np.empty(size, np.uint32)
    rows = np.empty((2, 3, size))
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
        held0, held1 = -2, -2  # source rows whose x-lerp is in rows[0], rows[1]
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
            sa = 0 if held0 == ra else (1 if held1 == ra else -1)
            if sa < 0:  # take the slot that does not hold rb
                sa = 1 if held0 == rb else 0
                _lerp_row(px[ra], x0[j0:j1], x1[j0:j1], dxs[j0:j1], na, nb, rows[sa])
                if sa == 0:
                    held0 = ra
                else:
                    held1 = ra
            sb = 0 if held0 == rb else (1 if held1 == rb else -1)
            if sb < 0:
                sb = 1 - sa
                _lerp_row(px[rb], x0[j0:j1], x1[j0:j1], dxs[j0:j1], na, nb, rows[sb])
                if sb == 0:
                    held0 = rb
                else:
                    held1 = rb
            for q in range(j0 * 3):
                orow[q] = 0
            _lerp_out(rows[sa], rows[sb], dy, j1 - j0, orow[j0 * 3 : j1 * 3])
            for q in range(j1 * 3, n):
                orow[q] = 0
    return out


def packed_image(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) 8-bit image -> (H, W) uint32 words for the warps (:func:`pack_rgb`)."""
    img = np.ascontiguousarray(img)
    return pack_rgb(img, np.empty(img.shape[:2], np.uint32))


def affine_bilinear_crops(
    img: np.ndarray, mats: np.ndarray, left: int, top: int, size: int, out: np.ndarray
) -> np.ndarray:
    """:func:`affine_bilinear_packed` of an (H, W, 3) 8-bit image (uint8 or float64)."""
    return affine_bilinear_packed(packed_image(img), mats, left, top, size, out)


def scale_bilinear_crops(
    img: np.ndarray, mats: np.ndarray, left: int, top: int, size: int, out: np.ndarray
) -> np.ndarray:
    """:func:`scale_bilinear_packed` of an (H, W, 3) 8-bit image (uint8 or float64)."""
    return scale_bilinear_packed(packed_image(img), mats, left, top, size, out)


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
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
            while j >= 4:  # four taps per sweep: the same additions, a quarter of the traffic
                a1 = src[max(p - j, 0) * n :]
                b1 = src[min(p + j, h - 1) * n :]
                a2 = src[max(p - j + 1, 0) * n :]
                b2 = src[min(p + j - 1, h - 1) * n :]
                a3 = src[max(p - j + 2, 0) * n :]
                b3 = src[min(p + j - 2, h - 1) * n :]
                a4 = src[max(p - j + 3, 0) * n :]
                b4 = src[min(p + j - 3, h - 1) * n :]
                w1 = weights[t, j]
                w2 = weights[t, j - 1]
                w3 = weights[t, j - 2]
                w4 = weights[t, j - 3]
                for q in range(n):
                    v = row[q] + (a1[q] + b1[q]) * w1
                    v = v + (a2[q] + b2[q]) * w2
                    v = v + (a3[q] + b3[q]) * w3
                    row[q] = v + (a4[q] + b4[q]) * w4
                j -= 4
            while j >= 2:  # two taps per sweep
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
            # 'nearest' along axis 1: the r pixels each side that the taps read (slices
            # indexed from 0 everywhere: no negative-index wraparound, so LLVM vectorises)
            left_edge = pad[off - r * c : off]
            right_edge = pad[off + n : off + n + r * c]
            for k in range(r):
                for ch in range(c):
                    left_edge[k * c + ch] = row[ch]
                    right_edge[k * c + ch] = row[n - c + ch]
            for q in range(n):
                res[q] = row[q] * w0
            j = r
            while j >= 4:
                wa = weights[t, j]
                wb = weights[t, j - 1]
                wc = weights[t, j - 2]
                wd = weights[t, j - 3]
                la = pad[off - j * c :]
                ha = pad[off + j * c :]
                lb = pad[off - (j - 1) * c :]
                hb = pad[off + (j - 1) * c :]
                lc = pad[off - (j - 2) * c :]
                hc = pad[off + (j - 2) * c :]
                ld = pad[off - (j - 3) * c :]
                hd = pad[off + (j - 3) * c :]
                for q in range(n):
                    v = res[q] + (la[q] + ha[q]) * wa
                    v = v + (lb[q] + hb[q]) * wb
                    v = v + (lc[q] + hc[q]) * wc
                    res[q] = v + (ld[q] + hd[q]) * wd
                j -= 4
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
                ot[q] = int(255.0 * res[q])  # 255 * x: the int is converted to this double
    return out


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
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
