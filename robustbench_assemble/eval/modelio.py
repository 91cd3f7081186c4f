"""Adapter between the model registry and the loop: a model plus how its input is made.

The evaluation needs, for one model: the network, whether its weights are trained, a PIL ->
uint8 clean transform (Resize + CenterCrop at the model's sizes, run on CPU workers), and two
device-side functions uint8 batch -> normalised float batch: one for clean images (already at
the model's input size) and one for 224x224 ImageNet-C frames, which applies the resize policy
when the model's input size is not 224 (the reference feeds the 224 frames as they are).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image

from ..models import create_model, transforms
from ..models.registry import Preprocessing, registered

Prepare = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ModelIO:
    model: nn.Module
    preprocessing: Preprocessing
    num_classes: int
    trained: bool
    resize_policy: str
    clean_transform: Callable[[Image.Image], torch.Tensor]
    clean_prepare: Prepare
    frame_prepare: Prepare
    #: the model's own ``resize_backend`` (before a ``--clean-resize`` override)
    reference_resize_backend: str = "torchvision"


def load_model(
    name: str,
    weights: Path | None = None,
    resize_policy: str | None = None,
    clean_resize: str | None = None,
) -> ModelIO:
    """Build ``name`` (with ``weights`` if given) and its input pipeline: any name
    :func:`~robustbench_assemble.models.create_model` takes (registered names,
    ``torchvision:<name>``, ``timm:<name>``); an unknown one raises ``UnknownModelError`` (a
    ``ValueError``) with close matches. ``clean_resize`` replaces the model's
    ``Preprocessing.resize_backend`` (``--clean-resize``)."""
    model = create_model(name, weights=str(weights) if weights is not None else None)
    prep: Preprocessing = model.preprocessing
    reference_backend = prep.resize_backend
    if clean_resize is not None and clean_resize != prep.resize_backend:
        try:
            prep = dataclasses.replace(prep, resize_backend=clean_resize)
        except ValueError as e:
            raise ValueError(f"--clean-resize {clean_resize} does not fit {name}: {e}") from None
        model.preprocessing = prep
    entry = registered().get(name)  # None for torchvision: / timm: names
    trained = weights is not None or (entry is not None and entry.pretrained is not None)
    num_classes = _num_classes(model)
    policy = transforms.check_resize_policy(resize_policy or transforms.DEFAULT_RESIZE_POLICY)

    def clean_prepare(x: torch.Tensor) -> torch.Tensor:
        return transforms.normalize_batch(x, prep, channels_last=True)

    def frame_prepare(x: torch.Tensor) -> torch.Tensor:
        # the policy acts on the normalised float batch (no extra uint8 rounding)
        return transforms.adapt_frames(transforms.normalize_batch(x, prep), prep, policy)

    return ModelIO(
        model=model,
        preprocessing=prep,
        num_classes=num_classes,
        trained=trained,
        resize_policy=policy,
        clean_transform=transforms.clean_transform(prep),
        clean_prepare=clean_prepare,
        frame_prepare=frame_prepare,
        reference_resize_backend=reference_backend,
    )


def _num_classes(model: nn.Module) -> int:
    for attr in ("num_classes",):
        if isinstance(getattr(model, attr, None), int):
            return getattr(model, attr)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else 1000


def check_frames(io: ModelIO, frame_size: int = transforms.FRAME_SIZE) -> None:
    """Fail before any work if the data's frames (224 as released) cannot meet this model
    under its resize policy (the default policy refuses a model whose input size is not the
    frames'), and warn once if the chosen policy departs from the reference protocol."""
    frame = torch.zeros(1, 3, frame_size, frame_size)
    transforms.adapt_frames(frame, io.preprocessing, io.resize_policy)
    transforms.warn_resize_policy(io.preprocessing, io.resize_policy, frame_size)
