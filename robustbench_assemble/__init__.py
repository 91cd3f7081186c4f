"""robustbench_assemble: ImageNet-C (mCE) and ImageNet-P (mFR, mT5D) robustness evaluation.

The public API is re-exported here lazily (importing the package does not import torch, cv2 or
matplotlib until a name is used):

- corruptions: ``CORRUPTIONS``, ``corrupt``, ``corrupt_batch``
- perturbations: ``PERTURBATIONS``, ``make_sequence``
- metrics: ``ALEXNET_ERRORS``, ``mce``, ``relative_mce``, ``flip_probability``, ``top5_distance``,
  ``mfr``, ``mt5d``
- models: ``create_model``, ``list_models``
"""

from __future__ import annotations

import importlib

from ._version import __version__

_EXPORTS = {
    "CORRUPTIONS": "corruptions",
    "corrupt": "corruptions",
    "corrupt_batch": "corruptions",
    "PERTURBATIONS": "perturbations",
    "make_sequence": "perturbations",
    "ALEXNET_ERRORS": "metrics",
    "mce": "metrics",
    "relative_mce": "metrics",
    "flip_probability": "metrics",
    "top5_distance": "metrics",
    "mfr": "metrics",
    "mt5d": "metrics",
    "create_model": "models",
    "list_models": "models",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustbench_assemble' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
