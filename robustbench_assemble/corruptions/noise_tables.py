"""Exact per-value output distributions of the ImageNet-C noises, for table sampling on CPU.

Each noise maps an 8-bit value v independently to an 8-bit output through the reference's
float64 chain (``imagenet_c/corruptions.py`` + ``np.uint8`` in make_imagenet_c.py):

- gaussian_noise: ``uint8(clip(v/255. + c * n, 0, 1) * 255)``, n ~ N(0, 1);
- shot_noise: ``uint8(clip(K / c, 0, 1) * 255)``, K ~ Poisson(v/255. * c);
- speckle_noise: ``uint8(clip(x + x * c * n, 0, 1) * 255)``, x = v/255.

so the output is a categorical draw over 0..255 whose table depends only on (v, c). Shot and
speckle have the same chains as ImageNet-P's and reuse :mod:`..perturbations.noise`; the
gaussian chain here is float64 (ImageNet-P's is float32). Sampling uses one 31-bit random
integer per value (torch's ``random_`` on int32) against integer CDF thresholds out of 2**31
(:func:`.cpu_kernels.sample_table`), so every output probability is the exact one
to within 2**-31.

Why: drawing a normal or Poisson variate per value and pushing it through the float chain
costs 3-25x more than one random integer and a table walk (shot noise: 35 -> ~2 ms per image
for the 5 severities).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtr

from ..perturbations.noise import output_cdf

#: Resolution of the uniform draws: 31 random bits (torch ``random_()`` on int32).
BITS = 31
_SCALE = float(2**BITS)


def gaussian_cdf(c: float) -> np.ndarray:
    """(256, 256): row v is P(out <= k) for ``uint8(clip(v/255. + c * n, 0, 1) * 255)``.

    out >= k (k >= 1) exactly when v/255. + c n >= k/255, i.e. n >= (k/255 - v/255.) / c
    (up to float64 rounding of the boundary, ~1e-16 in probability).
    """
    x = np.arange(256)[:, None] / 255.0
    k = np.arange(1, 256)[None, :] / 255.0
    cdf = np.empty((256, 256))
    cdf[:, :255] = ndtr((k - x) / float(c))
    cdf[:, 255] = 1.0
    return cdf


def corruption_cdf(name: str, c: float) -> np.ndarray:
    """(256, 256) float64 output CDF of ImageNet-C noise ``name`` at parameter ``c``."""
    if name == "gaussian_noise":
        return gaussian_cdf(c)
    if name in ("shot_noise", "speckle_noise"):
        return output_cdf(name, c)  # same float64 chains as ImageNet-P's
    raise ValueError(f"no output table for {name!r}; expected gaussian/shot/speckle_noise")


@lru_cache(maxsize=32)
def sampling_tables(name: str, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds (256, 256) uint32 out of 2**31 and guide table (256, 256) uint8
    (first output whose threshold exceeds ``g * 2**23``), for ``cpu_kernels.sample_table``."""
    cdf = np.maximum.accumulate(corruption_cdf(name, float(c)), axis=1)
    thresholds = np.round(np.clip(cdf, 0.0, 1.0) * _SCALE).astype(np.uint64)
    thresholds[:, 255] = np.uint64(2**BITS)
    starts = np.arange(256, dtype=np.uint64) << np.uint64(23)
    guide = np.empty((256, 256), dtype=np.uint8)
    for v in range(256):
        guide[v] = np.minimum(np.searchsorted(thresholds[v], starts, side="right"), 255)
    thresholds = thresholds.astype(np.uint32)
    thresholds.setflags(write=False)
    guide.setflags(write=False)
    return thresholds, guide
