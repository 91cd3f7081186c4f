"""Shared fixtures: the real ImageNet photos in ../shared/data/imagenet-sample (skip if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SAMPLE_ENV = "ROBUSTBENCH_SAMPLE"


def sample_root() -> Path | None:
    """The 1,000-image val sample (one photo per class), or None when it is not on this machine."""
    candidates = [os.environ.get(SAMPLE_ENV)] if os.environ.get(SAMPLE_ENV) else []
    here = Path(__file__).resolve().parent.parent
    candidates += [
        here.parent / "shared/data/imagenet-sample/val",
        here / "shared/data/imagenet-sample/val",
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c).resolve()
    return None


def sample_files(n: int | None = None, stride: int = 1) -> list[Path]:
    root = sample_root()
    if root is None:
        return []
    files = sorted(p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.iterdir()))
    files = files[::stride]
    return files if n is None else files[:n]


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    root = sample_root()
    if root is None:
        pytest.skip("ImageNet sample not found (set ROBUSTBENCH_SAMPLE or provide ../shared/data)")
    return root


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """Eight real photos from different classes, Resize(256)+CenterCrop(224), HxWx3 uint8."""
    from robustbench_assemble.images import load_benchmark_image

    files = sample_files(8, stride=125)
    if not files:
        pytest.skip("ImageNet sample not found")
    return [load_benchmark_image(f) for f in files]
