"""``create_model`` / ``list_models`` over the registry (placeholder; owned by the registry work)."""

from __future__ import annotations

import torch.nn as nn

from .registry import registered


def list_models(pattern: str | None = None) -> list[str]:
    import fnmatch

    names = sorted(registered())
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def create_model(name: str, weights: str | None = None, num_classes: int = 1000, **kwargs) -> nn.Module:
    entry = registered()[name]
    model = entry.builder(num_classes=num_classes, **kwargs)
    model.preprocessing = entry.preprocessing
    return model
