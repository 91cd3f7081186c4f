"""Seed handling for the corruption engines: one ``np.random.Generator`` per call.

The reference (``imagenet_c/corruptions.py``) draws from numpy's global legacy RNG, so its
output depends on whatever ran before. Every engine in this package instead draws from an
explicit ``np.random.Generator``: an int seed gives a reproducible stream, a Generator is used
as is (so a caller can thread one stream through many images), and ``None`` takes fresh OS
entropy. A ``Generator`` cannot reproduce the legacy ``RandomState`` stream, so an int seed
draws the reference's distributions but other numbers; :class:`LegacyGenerator` (exported by
``robustbench_assemble.corruptions``) replays the legacy stream, and with it every corruption
but impulse_noise gives the reference's pixels (the reference's impulse_noise draws from
skimage's own unseeded generator, so it is not reproducible even by itself).
"""

from __future__ import annotations

import numpy as np


class LegacyGenerator:
    """The ``np.random.Generator`` methods the engines use, drawn from a legacy ``RandomState``.

    ``LegacyGenerator(seed)`` replays the stream the reference sees after
    ``np.random.seed(seed)``: ``integers`` is ``randint``, ``random`` is ``random_sample`` and
    ``normal``/``uniform``/``poisson`` are the legacy samplers. Because every engine draws in
    the reference's order, ``corrupt(image, name, severity, LegacyGenerator(s))`` equals the
    reference seeded with ``s`` (tests/test_corruptions.py checks this bit for bit).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.state = np.random.RandomState(seed)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self.state.normal(loc, scale, size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.state.uniform(low, high, size)

    def poisson(self, lam=1.0, size=None):
        return self.state.poisson(lam, size)

    def random(self, size=None):
        return self.state.random_sample(size)

    def integers(self, low, high=None, size=None):
        return self.state.randint(low, high, size)


#: What ``as_generator`` accepts.
Seed = int | np.integer | np.random.Generator | LegacyGenerator | None


def as_generator(seed: Seed = None) -> np.random.Generator:
    """Return a ``np.random.Generator`` for ``seed`` (non-negative int, Generator,
    :class:`LegacyGenerator` or None).

    A Generator (or a :class:`LegacyGenerator`) is returned unchanged, not copied: draws
    advance the caller's stream.
    """
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (np.random.Generator, LegacyGenerator)):
        return seed  # type: ignore[return-value]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            "seed must be a non-negative int, a numpy.random.Generator, a LegacyGenerator "
            "(the reference's legacy stream) or None, "
            f"got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))
