"""Noise frames drawn from the exact per-pixel output distribution of the reference.

make_imagenet_p.py turns an 8-bit pixel v into a noisy 8-bit pixel with a fixed chain:

- gaussian_noise: ``x = v / 255`` (float32, ToTensor), ``clamp(x + sigma * n, 0, 1)``,
  ``.mul(255).byte()`` with n ~ N(0, 1) in float32;
- shot_noise: ``np.uint8(255 * clip(K / c, 0, 1))`` with K ~ Poisson(v / 255. * c) (float64);
- speckle_noise: ``np.uint8(255 * clip(x + x * sigma * n, 0, 1))`` with x = v / 255. (float64).

So every output pixel is an independent draw from a categorical distribution over 0..255 that
depends only on v and the noise level. This module computes those 256 distributions once per
(perturbation, level) -- the gaussian thresholds by searching the float32 chain itself, the
Poisson ones from its CDF, the speckle ones in closed form -- and samples every pixel with one
32-bit random integer (inverse CDF with a guide table, :func:`kernels.sample_levels`).
Frames are sampled on several threads when asked (each frame's 32-bit draws are a fixed
slice of the generator's stream, drawn from a copy of the generator advanced to that slice),
so the frames do not depend on the thread count.

Why: drawing 4.5 million Poisson or normal variates and pushing them through the float chain
costs 5-10x more than drawing 32 random bits per pixel. The frames follow the reference's
distribution to within 2**-32 per output value (the integer quantisation of the CDF; tested
against direct sampling); like every re-generation, the draws differ from the release's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtr
from scipy.stats import poisson

from ..threads import split_range
from .kernels import sample_levels

_SCALE = float(2**32)


def _gaussian_cdf(sigma: float) -> np.ndarray:
    """P(out <= k | v) for the float32 chain ``byte(clamp(v/255 + sigma * n, 0, 1) * 255)``.

    The chain is non-decreasing in n, so out >= k exactly when n >= t(v, k), the smallest
    float32 n that reaches k; t is found by bisection over the ordered float32 bit patterns.
    """
    v = np.arange(256, dtype=np.float32)[:, None] / np.float32(255)
    k = np.arange(1, 256, dtype=np.float32)[None, :]
    s = np.float32(sigma)

    def out(n: np.ndarray) -> np.ndarray:
        y = np.clip(v + s * n, np.float32(0), np.float32(1)) * np.float32(255)
        return y.astype(np.uint8).astype(np.float32)

    def to_float(key: np.ndarray) -> np.ndarray:  # order-preserving int -> float32 map
        bits = np.where(key >= 0, key, np.int64(-(2**31)) - key).astype(np.int32)
        return bits.view(np.float32)

    big = np.float32(1e3)  # beyond any reachable threshold (|n| <= 1e3 decides every output)
    lo = np.full((256, 255), -int(np.float32(big).view(np.int32)), dtype=np.int64)
    hi = np.full((256, 255), int(np.float32(big).view(np.int32)), dtype=np.int64)
    # invariant: out(to_float(lo)) < k <= out(to_float(hi)); loop until adjacent floats
    for _ in range(40):
        mid = (lo + hi) // 2
        reach = out(to_float(mid)) >= k
        hi = np.where(reach, mid, hi)
        lo = np.where(reach, lo, mid)
    t = to_float(hi).astype(np.float64)
    # out <= k - 1  <=>  n < t(v, k): P = Phi(t); a float32 normal's CDF is Phi to ~1e-7
    cdf = np.empty((256, 256))
    cdf[:, :255] = ndtr(t)
    cdf[:, 255] = 1.0
    return cdf


def _shot_cdf(c: float) -> np.ndarray:
    """P(out <= k | v) for ``np.uint8(255 * clip(K / c, 0, 1))``, K ~ Poisson(v / 255. * c)."""
    lam = (np.arange(256) / 255.0) * c
    kmax = int(c + 50 * np.sqrt(c) + 50)  # the map saturates at K >= c
    counts = np.arange(kmax + 1)
    mapped = np.uint8(255 * np.clip(counts / float(c), 0, 1))
    cdf = np.empty((256, 256))
    for k in range(256):
        below = counts[mapped <= k]
        cdf[:, k] = poisson.cdf(below.max(), lam) if below.size else 0.0
    cdf[:, 255] = 1.0
    return cdf


def _speckle_cdf(sigma: float) -> np.ndarray:
    """P(out <= k | v) for ``np.uint8(255 * clip(x + x * sigma * n, 0, 1))``, x = v / 255."""
    x = np.arange(256)[:, None] / 255.0
    k = np.arange(1, 256)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (k / 255.0 / x - 1.0) / sigma  # out >= k  <=>  n >= t (x > 0)
    cdf = np.empty((256, 256))
    cdf[:, :255] = ndtr(t)
    cdf[0, :] = 1.0  # v = 0 stays 0
    cdf[:, 255] = 1.0
    return cdf


_CDFS = {"gaussian_noise": _gaussian_cdf, "shot_noise": _shot_cdf, "speckle_noise": _speckle_cdf}


def output_cdf(name: str, level: float) -> np.ndarray:
    """(256, 256) float64: row v is P(out <= k) of a pixel of value v (k = 0..255)."""
    if name not in _CDFS:
        raise ValueError(f"no output distribution for {name!r}; expected one of {list(_CDFS)}")
    return _CDFS[name](float(level))


#: The guide table splits the 32-bit draws into 2**GUIDE_BITS equal buckets per input level.
GUIDE_BITS = 11


@lru_cache(maxsize=16)
def sampling_tables(name: str, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds (256, 256) uint64 and guide table (256, 2**GUIDE_BITS) uint16.

    ``guide[v, g]`` is the output of the draw ``g << (32 - GUIDE_BITS)`` (the number of
    thresholds <= it); 256 is added when a threshold falls inside the bucket, so only those
    draws (1-5 % of them) walk the thresholds; the others read their output directly. The
    output of every draw is the same as with a plain search of the thresholds.
    """
    cdf = np.maximum.accumulate(output_cdf(name, level), axis=1)
    thresholds = np.round(cdf * _SCALE).astype(np.uint64)
    thresholds[:, 255] = np.uint64(2**32)
    width = np.uint64(1 << (32 - GUIDE_BITS))
    starts = np.arange(1 << GUIDE_BITS, dtype=np.uint64) * width
    guide = np.empty((256, 1 << GUIDE_BITS), dtype=np.uint16)
    for v in range(256):
        first = np.searchsorted(thresholds[v], starts, side="right")
        last = np.searchsorted(thresholds[v], starts + (width - np.uint64(1)), side="right")
        guide[v] = np.where(first == last, first, first + 256)
    thresholds.setflags(write=False)
    guide.setflags(write=False)
    return thresholds, guide


def random_bits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform uint32 of ``shape`` from ``rng`` (the raw PCG64 words split in halves)."""
    n = int(np.prod(shape))
    if isinstance(rng, np.random.Generator):
        words = rng.bit_generator.random_raw((n + 1) // 2)
        return words.view(np.uint32)[:n].reshape(shape)
    # anything else with ``random`` (e.g. corruptions.rng.LegacyGenerator): 2**-32 resolution
    return (np.asarray(rng.random(shape)) * _SCALE).astype(np.uint32)


def frame_bits(rng, frames: int, n: int):
    """``draw(f0, f1)``: the uint32 bits (f1 - f0, n) of frames f0..f1-1, callable from threads.

    They are always rows f0..f1-1 of ``random_bits(rng, (frames, n))``. With a PCG64 generator
    and an even ``n`` (a frame is a whole number of 64-bit words) each call draws its rows
    from a copy of the generator advanced to them (so they are drawn where they are used, in
    the cache), and the caller's generator is left where one ``random_bits`` call would leave
    it. Otherwise every bit is drawn up front.
    """
    bg = getattr(rng, "bit_generator", None)
    if type(bg) is np.random.PCG64 and n % 2 == 0:
        start = bg.state
        words = n // 2

        def draw(f0: int, f1: int) -> np.ndarray:
            own = np.random.PCG64()
            own.state = start
            own.advance(f0 * words)
            return own.random_raw((f1 - f0) * words).view(np.uint32).reshape(f1 - f0, n)

        end = np.random.PCG64()
        end.state = start
        end.advance(frames * words)
        state = end.state
        # advance() clears the buffered 32-bit half; random_raw would have left it alone
        state["has_uint32"], state["uinteger"] = start["has_uint32"], start["uinteger"]
        bg.state = state
        return draw
    bits = random_bits(rng, (frames, n))
    return lambda f0, f1: bits[f0:f1]


def noise_frames(
    crop: np.ndarray,
    name: str,
    level: float,
    rng: np.random.Generator,
    frames: int = 30,
    threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``frames`` noisy versions (F, H, W, 3) uint8 of ``crop`` (H, W, 3) uint8.

    ``threads`` > 1 samples frame ranges on that many threads; the frames are the same.
    ``out``: optional C-contiguous (F, H, W, 3) uint8 array to write them to.
    """
    thresholds, guide = sampling_tables(name, float(level))
    levels = np.ascontiguousarray(crop, dtype=np.uint8).reshape(-1)
    draw = frame_bits(rng, frames, levels.size)
    if out is None:
        out = np.empty((frames, *crop.shape), dtype=np.uint8)
    if out.shape != (frames, *crop.shape) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous uint8 of shape {(frames, *crop.shape)}")
    flat = out.reshape(frames, levels.size)

    def work(f0: int, f1: int) -> None:
        for f in range(f0, f1):  # one frame at a time: its draws are still in the cache
            sample_levels(levels, draw(f, f + 1), thresholds, guide, flat[f : f + 1])

    split_range(work, frames, threads)
    return out
