"""Batched torch building blocks that reproduce the reference's numpy/scipy/cv2/PIL/skimage steps.

Every op works on N x C x H x W tensors on any device. Each one mirrors one library call of
Hendrycks' ``imagenet_c/corruptions.py`` (the source named in each docstring), including its
border handling, so ``torch_backend.corrupt_batch`` can stay a readable list of corruptions.

Border modes (``fold_index``), named after where they come from:

- ``"nearest"``: repeat the edge (scipy/skimage ``mode='nearest'``, ImageMagick "edge");
- ``"reflect101"``: ``gfedcb|abcdefgh|gfedcba`` (cv2 ``BORDER_REFLECT_101``, torch ``reflect``);
- ``"symmetric"``: ``dcba|abcd|dcba`` (scipy ``mode='reflect'``, half-sample symmetric).

Indices are folded arithmetically, so pads wider than the image (the reference's elastic
displacement blur has a 1025-tap kernel on 224 pixels) behave as scipy's repeated reflection.
Bilinear sampling uses ``F.grid_sample``'s reflection padding, which folds the same way.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .numpy_backend import gaussian_kernel1d

BORDER_MODES = ("nearest", "reflect101", "symmetric")


def fold_index(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map integer positions (possibly outside 0..n-1) to in-range indices for a border mode."""
    idx = np.asarray(idx, dtype=np.int64)
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if n == 1:
        return np.zeros_like(idx)
    if mode == "reflect101":
        period = 2 * n - 2
        m = np.mod(idx, period)
        return np.where(m >= n, period - m, m)
    if mode == "symmetric":
        period = 2 * n
        m = np.mod(idx, period)
        return np.where(m >= n, period - 1 - m, m)
    raise ValueError(f"unknown border mode {mode!r}; expected one of {BORDER_MODES}")


# ----------------------------------------------------------------------------- Gaussian filter


@functools.lru_cache(maxsize=64)
def _filter_matrix(n: int, weights: tuple[float, ...], mode: str) -> np.ndarray:
    """The n x n matrix of a 1-D correlation with ``weights`` under border ``mode``."""
    w = np.asarray(weights, dtype=np.float64)
    r = (len(w) - 1) // 2
    rows = np.repeat(np.arange(n), len(w))
    cols = fold_index(np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :], n, mode).ravel()
    mat = np.zeros((n, n), dtype=np.float64)
    np.add.at(mat, (rows, cols), np.tile(w, n))
    return mat


def _on(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(array, dtype=like.dtype).to(like.device)


def correlate1d(x: torch.Tensor, weights: np.ndarray, dim: int, mode: str) -> torch.Tensor:
    """scipy ``correlate1d`` (odd, centred ``weights``) along ``dim`` (-1 or -2) of NxCxHxW.

    Applied as a product with the dense n x n matrix of the filter (border folded in): on
    224-pixel images one BLAS call beats a padded convolution for every kernel size, and it
    handles kernels wider than the image (elastic's 1025 taps) exactly like scipy.
    """
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 or -2, got {dim}")
    mat = _on(_filter_matrix(x.shape[dim], tuple(float(v) for v in weights), mode), x)
    return torch.matmul(x, mat.T) if dim == -1 else torch.matmul(mat, x)


def gaussian_filter(
    x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0
) -> torch.Tensor:
    """skimage ``gaussian`` / scipy ``gaussian_filter`` over the last two dims (rows, then columns).

    skimage >= 0.19 defaults to ``mode='nearest'``, ``truncate=4.0`` (checked on 0.26).
    """
    w = gaussian_kernel1d(sigma, truncate)
    return correlate1d(correlate1d(x, w, -2, mode), w, -1, mode)


@functools.lru_cache(maxsize=16)
def _correlation_spectrum(kernel: bytes, kh: int, kw: int, ph: int, pw: int) -> np.ndarray:
    """rfft2 of a ph x pw array whose circular convolution is correlation with the kernel."""
    k = np.frombuffer(kernel, dtype=np.float64).reshape(kh, kw)
    kf = np.zeros((ph, pw), dtype=np.float64)
    jy, jx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    kf[(-jy) % ph, (-jx) % pw] = k
    return np.fft.rfft2(kf)


def filter2d(x: torch.Tensor, kernel: np.ndarray, mode: str = "reflect101") -> torch.Tensor:
    """cv2 ``filter2D`` (correlation, centred anchor, default border REFLECT_101) per channel.

    Done with an FFT of the border-padded image (cv2 itself switches to a DFT for kernels of
    11 x 11 and more); the padding makes the circular product equal to the linear one.
    """
    kh, kw = kernel.shape
    rh, rw = kh // 2, kw // 2
    h, w = x.shape[-2:]
    ih = torch.as_tensor(fold_index(np.arange(-rh, h + rh), h, mode), device=x.device)
    iw = torch.as_tensor(fold_index(np.arange(-rw, w + rw), w, mode), device=x.device)
    padded = x.index_select(-2, ih).index_select(-1, iw)
    ph, pw = padded.shape[-2:]
    k = np.ascontiguousarray(kernel, dtype=np.float64)
    spec = _correlation_spectrum(k.tobytes(), kh, kw, ph, pw)
    ctype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    spec_t = torch.as_tensor(spec).to(x.device, ctype)
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * spec_t, s=(ph, pw))
    return out[..., :h, :w]


# ----------------------------------------------------------------------------- zoom


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """The reference ``clipped_zoom`` of N x C x H x W.

    Centre crop of ``ceil(n/zoom)``, ``scipy.ndimage.zoom(order=1)`` to ``round(ch*zoom)``,
    centre trim back. scipy's default ``grid_mode=False`` samples output k at input
    ``k*(ch-1)/(out-1)``, which is bilinear ``interpolate(align_corners=True)``.
    """
    h, w = x.shape[-2:]
    ch = int(np.ceil(h / float(zoom)))
    cw = int(np.ceil(w / float(zoom)))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * zoom)), int(round(cw * zoom))
    crop = x[..., top : top + ch, left : left + cw]
    lead = x.shape[:-2]
    y = F.interpolate(
        crop.reshape(-1, 1, ch, cw) if x.ndim != 4 else crop,
        size=(oh, ow),
        mode="bilinear",
        align_corners=True,
    )
    th, tw = (oh - h) // 2, (ow - w) // 2
    return y[..., th : th + h, tw : tw + w].reshape(*lead, h, w)


# ----------------------------------------------------------------------------- bilinear sampling


def _grid_sample(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str):
    """Bilinear samples of N x C x H x W at float64 (rows, cols) (each N x H' x W').

    ``F.grid_sample`` with reflection padding: ``align_corners=True`` reflects about the edge
    pixel centres (``"reflect101"``), ``False`` about the image border (``"symmetric"``);
    PyTorch folds coordinates any distance outside. The normalised grid is float32 like the
    image, so positions carry ~2e-5 px of rounding (measured: <= 5e-5 of the [0, 1] range
    from scipy's float64 sampling).
    """
    h, w = x.shape[-2:]
    if mode == "reflect101":
        gx, gy = cols * (2.0 / (w - 1)) - 1.0, rows * (2.0 / (h - 1)) - 1.0
    elif mode == "symmetric":
        gx, gy = (2.0 * cols + 1.0) / w - 1.0, (2.0 * rows + 1.0) / h - 1.0
    else:
        raise ValueError(f"mode must be 'reflect101' or 'symmetric', got {mode!r}")
    return sample_grid(x, torch.stack((gx, gy), dim=-1).to(x.dtype), mode)


def sample_grid(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Bilinear samples of N x C x H x W at a normalised N x H' x W' x 2 (x, y) ``grid``
    (as ``_grid_sample`` builds it; the CPU path builds it in one compiled pass)."""
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="reflection", align_corners=mode == "reflect101"
    )


def map_coordinates_linear(
    x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str = "symmetric"
) -> torch.Tensor:
    """scipy ``map_coordinates(order=1)`` per channel at float (rows, cols), each N x H' x W'.

    scipy's ``mode='reflect'`` is ``"symmetric"`` here (linear interpolation on the
    half-sample symmetric extension, which is what scipy computes).
    """
    return _grid_sample(x, rows.to(torch.float64), cols.to(torch.float64), mode)


def warp_affine_reflect101(x: torch.Tensor, inverse_maps: torch.Tensor) -> torch.Tensor:
    """cv2 ``warpAffine(INTER_LINEAR, BORDER_REFLECT_101)`` with per-image 2x3 maps.

    ``inverse_maps`` (N x 2 x 3) map destination (x, y) to source coordinates (cv2 inverts M
    first). The installed OpenCV 5 samples float32 images at the exact coordinates (an exact
    float64 version of this matched it to 7e-6); OpenCV <= 4 rounded them to 1/32 pixel,
    which moves values by at most 0.01 (mean 2e-4) on [0, 1] -- see docs/FIDELITY.md.
    """
    n, _, h, w = x.shape
    m = inverse_maps.to(torch.float64)
    xs = torch.arange(w, device=x.device, dtype=torch.float64).view(1, 1, w)
    ys = torch.arange(h, device=x.device, dtype=torch.float64).view(1, h, 1)
    sx = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
    sy = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
    return _grid_sample(x, sy, sx, "reflect101")


# ----------------------------------------------------------------------------- colour


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """skimage ``rgb2hsv`` on N x 3 x H x W in [0, 1] (same tie order: blue > green > red)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = x.amax(dim=1)
    delta = v - x.amin(dim=1)
    zero = delta == 0
    safe = torch.where(zero, torch.ones_like(delta), delta)
    s = torch.where(zero, torch.zeros_like(delta), delta / torch.where(v == 0, safe, v))
    h = (g - b) / safe
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(zero, torch.zeros_like(h), h)
    return torch.stack((h, s, v), dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """skimage ``hsv2rgb`` on N x 3 x H x W."""
    h, s, v = x[:, 0], x[:, 1], x[:, 2]
    hi_f = torch.floor(h * 6)
    f = h * 6 - hi_f
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    hi = torch.remainder(hi_f, 6)
    # skimage's np.choose table, per channel: hi -> (R, G, B)
    # 0: (v, t, p)  1: (q, v, p)  2: (p, v, t)  3: (p, q, v)  4: (t, p, v)  5: (v, p, q)
    r = torch.where((hi == 0) | (hi == 5), v, torch.where(hi == 1, q, torch.where(hi == 4, t, p)))
    g = torch.where((hi == 1) | (hi == 2), v, torch.where(hi == 0, t, torch.where(hi == 3, q, p)))
    b = torch.where((hi == 3) | (hi == 4), v, torch.where(hi == 2, t, torch.where(hi == 5, q, p)))
    return torch.stack((r, g, b), dim=1)


# ----------------------------------------------------------------------------- PIL BOX resize

PIL_PRECISION_BITS = 32 - 8 - 2


@functools.lru_cache(maxsize=64)
def pil_box_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BOX resampling taps for one axis: (indices, fixed-point int weights), out x K.

    Transcribes the arithmetic of Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``
    (libImaging/Resample.c): support ``0.5*max(scale, 1)``, box filter true on (-0.5, 0.5],
    weights normalised in double then rounded to 22-bit fixed point.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    idx = np.zeros((out_size, ksize), dtype=np.int64)
    wts = np.zeros((out_size, ksize), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = []
        for x in range(xmax):
            arg = (x + xmin - center + 0.5) / filterscale
            k.append(1.0 if -0.5 < arg <= 0.5 else 0.0)
        total = sum(k)
        for x, kv in enumerate(k):
            pre = kv / total if total != 0.0 else kv
            wts[xx, x] = int(0.5 + pre * (1 << PIL_PRECISION_BITS))
            idx[xx, x] = xmin + x
    return idx, wts


def _pil_box_pass(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    idx, wts = pil_box_taps(x.shape[dim], out_size)
    acc = torch.full(
        (*x.shape[:dim], out_size, *x.shape[dim + 1 :]) if dim != -1 else (*x.shape[:-1], out_size),
        1 << (PIL_PRECISION_BITS - 1),
        dtype=torch.int32,
        device=x.device,
    )
    for k in range(idx.shape[1]):
        if not wts[:, k].any():
            continue
        taps = torch.as_tensor(idx[:, k], device=x.device)
        w = torch.as_tensor(wts[:, k], dtype=torch.int32, device=x.device)
        w = w.view(-1) if dim == -1 else w.view(-1, 1)
        acc += x.index_select(dim, taps) * w
    return torch.clamp(acc >> PIL_PRECISION_BITS, 0, 255)


def pil_box_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pillow ``Image.resize((width, height), Image.BOX)`` of N x C x H x W uint8, bit-exact.

    Pillow resizes horizontally first into an 8-bit temporary, then vertically.
    """
    y = x.to(torch.int32)
    if width != x.shape[-1]:
        y = _pil_box_pass(y, width, -1)
    if height != x.shape[-2]:
        y = _pil_box_pass(y, height, -2)
    return y.to(torch.uint8)


# ----------------------------------------------------------------------------- motion blur


def motion_blur_batch(
    x: torch.Tensor,
    weights: np.ndarray,
    offsets: list[np.ndarray],
) -> torch.Tensor:
    """ImageMagick MotionBlurImage of each image: sum_i w_i * x(row + dy_i, col + dx_i).

    ``offsets[n]`` is the (width x 2) integer (dx, dy) table of image n (its own angle); pixels
    outside the image repeat the edge. Returns the unrounded sum, on the input's scale.
    """
    n, c, h, w = x.shape
    pad = len(weights)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    # one batched gather per tap (each image shifted by its own offset); corrupt_batch's CPU
    # path uses ImageNet-P's compiled float64 loop instead (bit-identical to ImageMagick)
    wp = w + 2 * pad
    flat = padded.reshape(n, c, -1)
    rows = torch.arange(pad, pad + h, device=x.device).view(h, 1)
    base = (rows * wp + torch.arange(pad, pad + w, device=x.device).view(1, w)).reshape(1, 1, -1)
    table = torch.as_tensor(np.stack(offsets), device=x.device)  # N x taps x (dx, dy)
    shift = table[:, :, 1] * wp + table[:, :, 0]  # N x taps
    out = torch.zeros((n, c, h * w), dtype=x.dtype, device=x.device)
    for i, wt in enumerate(weights):
        idx = (base + shift[:, i].view(n, 1, 1)).expand(n, c, h * w)
        out.add_(torch.gather(flat, 2, idx), alpha=float(wt))
    return out.reshape(n, c, h, w)


def quantize_like_imagemagick(values: torch.Tensor) -> torch.Tensor:
    """8-bit output of ImageMagick Q16 + PNG writer (as ``motion.quantize_like_imagemagick``)."""
    q16 = torch.clamp(torch.floor(values * 257.0 + 0.5), 0, 65535)
    return torch.div(q16, 257, rounding_mode="floor")


# ----------------------------------------------------------------------------- glass blur


def glass_shuffle(x: torch.Tensor, offsets: torch.Tensor, max_delta: int) -> torch.Tensor:
    """One pass of the reference's glass-blur pixel loop, vectorised exactly.

    The reference walks rows h = H-d .. d+1 and columns w = W-d .. d+1 (both descending) and
    does ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views, which is really the copy
    ``x[h, w] = x[h', w']`` (the second assignment writes back the value just copied). So a
    pixel takes the *current* value of its source: the final value if the source was visited
    earlier in the walk (further down, or same row further right), else the original. Following
    those links ends at a pixel whose source was not visited yet; pointer doubling finds that
    end for all pixels at once, so the result equals the sequential loop bit for bit.

    ``x``: N x C x H x W (any dtype); ``offsets``: N x R x Cw x 2 integer (dx, dy) in
    [-d, d-1] for the R x Cw visited pixels in row-major order of (h, w) ascending.
    """
    n, c, h, w = x.shape
    d = max_delta
    rows = torch.arange(d + 1, h - d + 1, device=x.device)
    cols = torch.arange(d + 1, w - d + 1, device=x.device)
    if rows.numel() == 0 or cols.numel() == 0:
        return x
    hh = rows.view(1, -1, 1).expand(n, -1, cols.numel())
    ww = cols.view(1, 1, -1).expand(n, rows.numel(), -1)
    sh = hh + offsets[..., 1]
    sw = ww + offsets[..., 0]
    in_range = (sh >= d + 1) & (sh <= h - d) & (sw >= d + 1) & (sw <= w - d)
    visited_before = in_range & ((sh > hh) | ((sh == hh) & (sw > ww)))
    size = h * w
    pos = (hh * w + ww).reshape(n, -1)
    src = (sh * w + sw).reshape(n, -1)
    # link[p] = source if it was visited before p, else p itself (a root).
    link = torch.arange(size, device=x.device).repeat(n, 1)
    link.scatter_(1, pos, torch.where(visited_before.reshape(n, -1), src, pos))
    # value source of a root: its own source for visited pixels, itself for untouched ones.
    root_src = torch.arange(size, device=x.device).repeat(n, 1)
    root_src.scatter_(1, pos, src)
    for _ in range(64):
        nxt = torch.gather(link, 1, link)
        if torch.equal(nxt, link):
            break
        link = nxt
    final_src = torch.gather(root_src, 1, link)
    flat = x.reshape(n, c, size)
    return torch.gather(flat, 2, final_src.unsqueeze(1).expand(n, c, size)).reshape(x.shape)


# ----------------------------------------------------------------------------- plasma fractal


def plasma_fractal_batch(
    n: int,
    mapsize: int,
    wibbledecay: float,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float64,
    uniform=None,
) -> torch.Tensor:
    """N diamond-square height maps in [0, 1], the reference ``plasma_fractal`` batched.

    Same grid updates in the same order as the reference (square step, then the two diamond
    half-steps with the same periodic neighbours), wibble ``w * U(-w, w)`` from w = 100,
    divided by ``wibbledecay`` per level; only the random source differs (torch generator).
    ``uniform(shape)`` (U[0, 1) draws, N first) replaces the generator in tests that replay
    the reference's numpy stream.
    """
    grid = torch.zeros((n, mapsize, mapsize), dtype=dtype, device=device)
    step = mapsize
    wibble = 100.0

    def wibbled(total: torch.Tensor) -> torch.Tensor:
        if uniform is None:
            u = torch.rand(total.shape, generator=generator, device=device, dtype=dtype)
        else:
            u = uniform(tuple(total.shape)).to(device, dtype)
        # numpy's uniform(-w, w) is -w + 2w * u; then w * that + total / 4, in that order
        return ((u * (2 * wibble) - wibble) * wibble).add_(total, alpha=0.25)

    while step >= 2:
        half = step // 2
        corners = grid[:, 0:mapsize:step, 0:mapsize:step]
        acc = corners + torch.roll(corners, -1, dims=1)
        acc = acc + torch.roll(acc, -1, dims=2)
        grid[:, half:mapsize:step, half:mapsize:step] = wibbled(acc)
        centres = grid[:, half:mapsize:step, half:mapsize:step]
        corners = grid[:, 0:mapsize:step, 0:mapsize:step]
        top = (centres + torch.roll(centres, 1, dims=1)) + (
            corners + torch.roll(corners, -1, dims=2)
        )
        grid[:, 0:mapsize:step, half:mapsize:step] = wibbled(top)
        left = (centres + torch.roll(centres, 1, dims=2)) + (
            corners + torch.roll(corners, -1, dims=1)
        )
        grid[:, half:mapsize:step, 0:mapsize:step] = wibbled(left)
        step //= 2
        wibble /= wibbledecay
    flat = grid.reshape(n, -1)
    flat = flat - flat.amin(dim=1, keepdim=True)
    flat = flat / flat.amax(dim=1, keepdim=True)
    return flat.reshape(n, mapsize, mapsize)
