"""Model registry: names -> constructors, each carrying its evaluation preprocessing as data.

Follows timm's ``register_model`` / ``create_model`` habit: every registered name is a small
builder function that only chooses arguments; :class:`Preprocessing` travels with the entry
because the assembled models are evaluated at 256 with mean subtraction only, while
torchvision's are evaluated at 224 with mean/std.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input, as data.

    Pixels ``x`` are first scaled to [0, 1], then ``(x - mean) / std`` per channel (in
    ``channel_order``). Mean subtraction only on the 0..255 scale (the TF assembled models:
    RGB minus (123.68, 116.78, 103.94)) is ``mean=(123.68/255, ...)``, ``std=(1/255,)*3``.

    Clean images: short side resized to ``resize`` (``interpolation``), centre crop
    ``input_size``. ImageNet-C/P frames are already 224x224 and are not resized again unless the
    model's ``input_size`` differs (see the evaluation's ``--resize-policy``).
    """

    input_size: int = 224
    resize: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"

    @property
    def crop_pct(self) -> float:
        return self.input_size / self.resize


@dataclass
class ModelEntry:
    """A registered model: its builder, preprocessing and a one-line description."""

    name: str
    builder: Callable[..., nn.Module]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    description: str = ""
    pretrained: str | None = None  # where its weights come from, if the builder loads any


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    preprocessing: Preprocessing | None = None,
    description: str = "",
    pretrained: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(num_classes=1000, **kwargs) -> nn.Module``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[key] = ModelEntry(
            key,
            fn,
            preprocessing or Preprocessing(),
            doc if isinstance(doc, str) else (doc[0] if doc else ""),
            pretrained,
        )
        return fn

    return wrap


def registered() -> dict[str, ModelEntry]:
    """The registry itself (read-only use)."""
    return _REGISTRY
