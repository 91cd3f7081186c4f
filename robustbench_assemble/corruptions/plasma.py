"""Diamond-square plasma fractal, as the reference ``fog`` corruption draws it.

Matches ``imagenet_c.corruptions.plasma_fractal`` (itself a modification of FLHerne/mapgen's
diamondsquare.py): the same grid updates in the same order (square step, then the two diamond
half-steps, with the same periodic ``np.roll`` neighbours), the same uniform wibble
``wibble * U(-wibble, wibble)`` starting at 100 and divided by ``wibbledecay`` after each
level, and the same min/max normalisation to [0, 1]. The only difference is the random source:
an explicit ``np.random.Generator`` instead of numpy's global legacy RNG.
"""

from __future__ import annotations

import numpy as np

from .rng import Seed, as_generator


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= ``n`` (the plasma map must be a power of two)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return 1 << (int(n) - 1).bit_length()


def plasma_fractal(mapsize: int = 256, wibbledecay: float = 3, rng: Seed = None) -> np.ndarray:
    """A ``mapsize`` x ``mapsize`` float64 height map in [0, 1] (``mapsize`` a power of two).

    ``rng`` is a seed or Generator (see :func:`rng.as_generator`). The reference fog uses
    ``mapsize=256`` and crops the top-left 224 x 224.
    """
    if isinstance(mapsize, bool) or not isinstance(mapsize, (int, np.integer)) or mapsize < 2:
        raise ValueError(f"mapsize must be an int power of two >= 2, got {mapsize!r}")
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    if not wibbledecay > 0:
        raise ValueError(f"wibbledecay must be > 0, got {wibbledecay!r}")
    return _plasma(int(mapsize), wibbledecay, as_generator(rng).uniform)


def _plasma(size: int, wibbledecay: float, uniform) -> np.ndarray:
    """The algorithm; ``uniform(low, high, shape)`` supplies the draws (a test can pass a
    legacy ``RandomState.uniform`` to compare bit for bit with the reference)."""
    grid = np.empty((size, size), dtype=np.float64)
    grid[0, 0] = 0.0
    step = size
    wibble = 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        # Square step: centre of every square = mean of its 4 corners + noise.
        corners = grid[0:size:step, 0:size:step]
        acc = corners + np.roll(corners, -1, axis=0)
        acc += np.roll(acc, -1, axis=1)
        grid[half:size:step, half:size:step] = wibbled_mean(acc)
        # Diamond step: edge midpoints = mean of 2 centres + 2 corners + noise.
        centres = grid[half:size:step, half:size:step]
        corners = grid[0:size:step, 0:size:step]
        top = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        grid[0:size:step, half:size:step] = wibbled_mean(top)
        left = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        grid[half:size:step, 0:size:step] = wibbled_mean(left)
        step //= 2
        wibble /= wibbledecay

    grid -= grid.min()
    return grid / grid.max()
