"""Per-sequence seeds that depend on what is generated, never on processing order.

A run's seed, the image's path relative to the val folder (POSIX form), the perturbation and
the difficulty are hashed together (SHA-256), so any worker count, any ``--limit`` and any
resumption give every sequence the same random draws.
"""

from __future__ import annotations

import hashlib


def sequence_seed(seed: int, relpath: str, name: str, difficulty: int) -> int:
    """A 64-bit seed for one (image, perturbation, difficulty) of a run seeded with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    key = f"imagenet-p\0{seed}\0{relpath.replace(chr(92), '/')}\0{name}\0{difficulty}"
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")
