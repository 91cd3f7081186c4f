"""Model registry: names -> constructors, each carrying its evaluation preprocessing as data.

Follows timm's ``register_model`` / ``create_model`` habit: every registered name is a small
builder function that only chooses arguments; :class:`Preprocessing` travels with the entry
because the assembled models are evaluated at 256 with mean subtraction only, while
torchvision's are evaluated at 224 with mean/std.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn as nn

from ..images import GEOMETRIES

# torchvision / timm ImageNet statistics (RGB, on the [0, 1] scale).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Interpolation names accepted in :class:`Preprocessing` (torchvision ``InterpolationMode``).
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos")
#: Channel orders a model may expect.
CHANNEL_ORDERS = ("RGB", "BGR")
#: How clean images are resized and cropped (:class:`Preprocessing` ``resize_backend``).
RESIZE_BACKENDS = ("torchvision", "tf1")


def _triple(value: float | Sequence[float], what: str) -> tuple[float, float, float]:
    values = (value,) * 3 if isinstance(value, (int, float)) else tuple(value)
    if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f"Preprocessing.{what} must be 3 numbers (one per channel), got {value!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"Preprocessing.{what} must be finite, got {value!r}")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input, as data.

    Pixels ``x`` are first scaled to [0, 1], then ``(x - mean) / std`` per channel (in
    ``channel_order``). Mean subtraction only on the 0..255 scale (the TF assembled models:
    RGB minus (123.68, 116.78, 103.94)) is ``mean=(123.68/255, ...)``, ``std=(1/255,)*3``.

    Clean images: short side resized to ``resize`` (``interpolation``), centre crop
    ``input_size``, by ``resize_backend``: ``"torchvision"`` is torchvision's / timm's
    ``Resize`` + ``CenterCrop`` (PIL, antialiased, uint8); ``"tf1"`` is the TF 1.x eval graph
    of clovaai/assembled-cnn, which measured the published top-1 of the assembled family
    (legacy bilinear without antialiasing, float32 truncated sizes, floor crop offsets, float
    pixels; ``robustbench_assemble.models.tf_resize``; bilinear only). ImageNet-C/P frames are
    already 224x224 and are not resized again unless the model's ``input_size`` differs (see
    ``robustbench_assemble.models.transforms.adapt_frames``).
    ``corruption_resize``: the short side at which resize policy ``native`` corrupts val images
    when the reference did so at another size than its clean evaluation (assemble_r152: clean
    257 -> 256, mCE on ``validation_292_256``); None: ``resize``. ``corruption_geometry``: the
    rounding of that resize and crop (``robustbench_assemble.images.GEOMETRIES``: the assembled
    family's CE data were made by clovaai's generator, ``"clovaai"``).

    ``mean`` and ``std`` are listed in the model's ``channel_order`` (for a BGR model, the blue
    channel's statistics first). Lists are accepted and stored as tuples; a bad value raises
    ``ValueError`` naming the field.
    """

    input_size: int = 224
    resize: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    corruption_resize: int | None = None
    resize_backend: str = "torchvision"
    corruption_geometry: str = "torchvision"

    def __post_init__(self) -> None:
        for what in ("input_size", "resize", "corruption_resize"):
            v = getattr(self, what)
            if what == "corruption_resize" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"Preprocessing.{what} must be a positive int, got {v!r}")
            if v < self.input_size:
                raise ValueError(
                    f"Preprocessing.{what} ({v}) is smaller than input_size "
                    f"({self.input_size}): the centre crop would not fit"
                )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"Preprocessing.interpolation must be one of {INTERPOLATIONS}, "
                f"got {self.interpolation!r}"
            )
        if self.resize_backend not in RESIZE_BACKENDS:
            raise ValueError(
                f"Preprocessing.resize_backend must be one of {RESIZE_BACKENDS}, "
                f"got {self.resize_backend!r}"
            )
        if self.resize_backend == "tf1" and self.interpolation != "bilinear":
            raise ValueError(
                "Preprocessing.resize_backend 'tf1' is TF's bilinear resize: interpolation must "
                f"be 'bilinear', got {self.interpolation!r}"
            )
        if self.corruption_geometry not in GEOMETRIES:
            raise ValueError(
                f"Preprocessing.corruption_geometry must be one of {GEOMETRIES}, "
                f"got {self.corruption_geometry!r}"
            )
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"Preprocessing.channel_order must be one of {CHANNEL_ORDERS}, "
                f"got {self.channel_order!r}"
            )
        object.__setattr__(self, "mean", _triple(self.mean, "mean"))
        std = _triple(self.std, "std")
        if any(s == 0 for s in std):
            raise ValueError(f"Preprocessing.std must not contain 0, got {self.std!r}")
        object.__setattr__(self, "std", std)

    @property
    def native_geometry(self) -> tuple[int, int, str]:
        """(resize, crop, rounding) at which resize policy ``native`` corrupts val images: the
        clean sizes unless the reference corrupted at another resize (``corruption_resize``),
        rounded as the reference's generator did (``corruption_geometry``)."""
        return (self.corruption_resize or self.resize, self.input_size, self.corruption_geometry)

    @property
    def crop_pct(self) -> float:
        """``input_size / resize``: timm's name for the same ratio (0.875 for 224/256)."""
        return self.input_size / self.resize

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples as lists), for result files that record the protocol."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class ModelEntry:
    """A registered model: its builder, preprocessing and a one-line description.

    ``pretrained``: where the weights come from when the builder loads some itself (then the
    builder takes ``pretrained: bool = True`` and the factory passes ``pretrained=False`` when
    the user gives a weights file). ``torchvision_name``: the torchvision model whose weights
    enum names (``"IMAGENET1K_V1"``, ...) this entry accepts as ``weights``; the file is then read
    from the torch hub cache into this entry's own module (so the architecture must be state-dict
    compatible with torchvision's), and preprocessing comes from that enum entry's transforms.
    """

    name: str
    builder: Callable[..., nn.Module]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    description: str = ""
    pretrained: str | None = None  # where its weights come from, if the builder loads any
    torchvision_name: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    preprocessing: Preprocessing | None = None,
    description: str = "",
    pretrained: str | None = None,
    torchvision_name: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(num_classes=1000, **kwargs) -> nn.Module``.

    Names are plain identifiers; the ``torchvision:`` and ``timm:`` prefixes are reserved for
    the dynamic namespaces resolved by :func:`robustbench_assemble.models.create_model`.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if ":" in key:
            raise ValueError(f"model name {key!r} must not contain ':' (reserved for namespaces)")
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[key] = ModelEntry(
            key,
            fn,
            preprocessing or Preprocessing(),
            doc if isinstance(doc, str) else (doc[0] if doc else ""),
            pretrained,
            torchvision_name,
        )
        return fn

    return wrap


def registered() -> dict[str, ModelEntry]:
    """The registry itself (read-only use)."""
    return _REGISTRY
