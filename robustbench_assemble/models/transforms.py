"""Turning a :class:`Preprocessing` into the actual tensor pipeline.

The pipeline is split where the data crosses to the device:

1. :func:`clean_transform` (CPU, in the data loader): PIL image -> Resize + CenterCrop -> uint8
   CHW tensor. uint8 keeps the host->device copy four times smaller than float32 (the ``tf1``
   backend sends float32: TF's resized pixels are not integers).
2. :func:`normalize_batch` (any device, batched): /255, channel order, ``(x - mean) / std``,
   dtype, memory format.
3. :func:`adapt_frames`: what to do when ImageNet-C/P frames (224x224 files) meet a model whose
   ``input_size`` is not 224 -- an explicit ``resize_policy`` (see :data:`RESIZE_POLICIES`).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from .registry import Preprocessing
from .tf_resize import tf_resize_center_crop

#: Size of the released ImageNet-C / ImageNet-P frames (Resize(256) + CenterCrop(224)).
FRAME_SIZE = 224

#: What :func:`adapt_frames` may do with 224x224 ImageNet-C/P frames for a model whose
#: ``input_size`` differs. Every choice changes the numbers, so none is silent:
#:
#: * ``"error"`` (default): refuse, with a message explaining the choices. The published
#:   protocol for such models is neither to resize nor to feed 224 crops: Hendrycks' reference
#:   evaluates the 224 files as they are (ToTensor + Normalize, no second resize) with 224-input
#:   models, and clovaai/assembled-cnn evaluated its 256-input models on ImageNet-C regenerated
#:   from Resize(292)+CenterCrop(256) images (its ``validation_292_256`` data dir, fed without any
#:   resize). A number computed any other way must say so, hence an explicit choice.
#: * ``"as-is"``: feed the 224 frames unchanged (the model must accept any size, e.g. global
#:   pooling). The image content is the benchmark's exactly; the model sees objects at a smaller
#:   scale than in its own clean protocol.
#: * ``"resize"``: bilinear resize (antialiased when shrinking) to ``input_size`` -- the
#:   "second resize" the reference warns about; it blurs / rescales the corruption too.
#: * ``"center-crop"``: centre crop to ``input_size`` (only when ``input_size`` < 224).
#: * ``"native"``: no 224 frames at all: val images get the model's own Resize + CenterCrop
#:   (e.g. 292 -> 256) and are corrupted at that size on the fly -- the assembled-cnn protocol.
#:   Only for on-the-fly evaluation (``--source on-the-fly``); the released files are 224.
#:
#: With ``input_size == 224`` every policy is a no-op: the reference protocol.
RESIZE_POLICIES = ("error", "as-is", "resize", "center-crop", "native")
DEFAULT_RESIZE_POLICY = "error"


def interpolation_mode(name: str) -> T.InterpolationMode:
    """torchvision's ``InterpolationMode`` for a :class:`Preprocessing` interpolation name."""
    try:
        return T.InterpolationMode(name)
    except ValueError:
        modes = [m.value for m in T.InterpolationMode]
        raise ValueError(f"unknown interpolation {name!r}; expected one of {modes}") from None


class _ToRGB:
    """PIL -> RGB (grayscale / CMYK / palette photos exist in ImageNet val). Picklable."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == "RGB" else image.convert("RGB")

    def __repr__(self) -> str:
        return "ToRGB()"


class _TFResizeCenterCrop:
    """RGB PIL image -> float32 CHW tensor on the 0..255 scale by the TF 1.x eval geometry
    (:func:`~.tf_resize.tf_resize_center_crop`). Picklable, for loader workers."""

    def __init__(self, resize: int, crop: int) -> None:
        self.resize, self.crop = resize, crop

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = tf_resize_center_crop(np.asarray(image), self.resize, self.crop)
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()

    def __repr__(self) -> str:
        return f"TFResizeCenterCrop(resize={self.resize}, crop={self.crop})"


def clean_transform(pre: Preprocessing) -> T.Compose:
    """PIL image -> ``Resize(pre.resize)`` (short side) + ``CenterCrop(pre.input_size)`` -> CHW
    tensor, RGB. Normalisation is left to :func:`normalize_batch` on the device.

    ``resize_backend == "torchvision"``: uint8, identical pixels to torchvision's / timm's
    evaluation transforms (PIL resize, antialias) for the same sizes and interpolation.
    ``"tf1"``: float32 on the 0..255 scale, TF's pixels (the TF graph never rounds them).
    """
    if pre.resize_backend == "tf1":
        return T.Compose([_ToRGB(), _TFResizeCenterCrop(pre.resize, pre.input_size)])
    return T.Compose(
        [
            _ToRGB(),
            T.Resize(pre.resize, interpolation=interpolation_mode(pre.interpolation)),
            T.CenterCrop(pre.input_size),
            T.PILToTensor(),
        ]
    )


@functools.lru_cache(maxsize=32)
def _mean_std(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-device constants, made once: building them per batch is a host->device copy that
    waits for the GPU queue to drain, which serialises loading and compute."""
    as_tensor = functools.partial(torch.tensor, dtype=torch.float32, device=device)
    return as_tensor(mean).view(3, 1, 1), as_tensor(std).view(3, 1, 1)


def normalize_batch(
    x: torch.Tensor,
    pre: Preprocessing,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """RGB batch ``(N, 3, H, W)`` (or one ``(3, H, W)`` image) -> model input.

    ``x`` is uint8, or float32 on the same 0..255 scale (the ``tf1`` clean pixels). ``x / 255``,
    reorder channels to ``pre.channel_order``, ``(x - mean) / std``. The arithmetic is done in
    float32 on ``x``'s device and only the result is cast to ``dtype`` (so fp16/bf16 inputs are
    rounded once). ``channels_last`` returns NHWC memory format for 4-D input.
    """
    if x.dtype not in (torch.uint8, torch.float32):
        raise ValueError(
            f"normalize_batch expects a uint8 or float32 tensor on the 0..255 scale, got {x.dtype}"
        )
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"normalize_batch expects (N, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    y = x.to(torch.float32, copy=True).div_(255.0)  # never in place on a float32 input
    if pre.channel_order == "BGR":
        y = y.flip(-3)
    mean, std = _mean_std(pre.mean, pre.std, x.device)
    y = y.sub_(mean).div_(std).to(dtype)
    if channels_last and y.dim() == 4:
        y = y.contiguous(memory_format=torch.channels_last)
    return y


def native_files_hint(pre: Preprocessing) -> str:
    """The make_imagenet_c flags that make ImageNet-C at the model's own geometry."""
    resize, crop, geometry = pre.native_geometry
    return f"make_imagenet_c --resize {resize} --crop {crop} --geometry {geometry}"


def check_resize_policy(policy: str) -> str:
    """Validate a ``resize_policy`` name (ValueError listing the choices)."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"resize_policy must be one of {RESIZE_POLICIES}, got {policy!r}")
    return policy


def adapt_frames(
    x: torch.Tensor,
    pre: Preprocessing,
    policy: str = DEFAULT_RESIZE_POLICY,
    dataset: str = "imagenet_c",
) -> torch.Tensor:
    """Apply ``policy`` (see :data:`RESIZE_POLICIES`) to a batch of ImageNet-C/P frames.

    ``x``: ``(N, C, H, W)`` uint8 or float. Best called on the normalised float batch: bilinear
    resizing is linear, so it commutes with the per-channel normalisation and no rounding is
    added (on uint8 input the result is rounded back to uint8). Frames already at
    ``pre.input_size`` are returned unchanged whatever the policy. ``dataset``
    ('imagenet_c' or 'imagenet_p') only words the error: the remedies differ.
    """
    check_resize_policy(policy)
    if x.dim() != 4:
        raise ValueError(f"adapt_frames expects a (N, C, H, W) batch, got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    size = pre.input_size
    if (h, w) == (size, size) or policy == "as-is":
        return x
    if policy == "native":
        raise ValueError(
            f"resize_policy 'native' corrupts val images at the model's own input size "
            f"({size}) on the fly; it cannot use {h}x{w} ImageNet-C/P frames (files)"
        )
    if policy == "error":
        crop = "'center-crop' (crop them), " if size < min(h, w) else ""
        if dataset == "imagenet_p":
            raise ValueError(
                f"the ImageNet-P frames are {h}x{w} but the model's input_size is {size}: "
                f"choose a --resize-policy: 'as-is' (feed {h}x{w} frames unchanged), {crop}"
                f"or 'resize' (resize them to {size}; changes the benchmark)"
            )
        raise ValueError(
            f"the frames are {h}x{w} but the model's input_size is {size}: evaluate ImageNet-C "
            f"files made at the model's size ({native_files_hint(pre)}), or choose a "
            f"--resize-policy: 'as-is' (feed {h}x{w} frames unchanged), 'resize' (resize them "
            f"to {size}; changes the benchmark), {crop}or 'native' with --source on-the-fly "
            f"(corrupt val images at {size} px on the fly)"
        )
    if policy == "center-crop":
        if size > h or size > w:
            raise ValueError(
                f"resize_policy 'center-crop' cannot crop {h}x{w} frames to {size}x{size}"
            )
        top = int(round((h - size) / 2.0))
        left = int(round((w - size) / 2.0))
        return x[..., top : top + size, left : left + size]
    # "resize"
    y = F.interpolate(
        x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    if x.dtype == torch.uint8:
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return y.to(x.dtype)


def warn_resize_policy(pre: Preprocessing, policy: str, frame_size: int = FRAME_SIZE) -> None:
    """One warning per run when a non-trivial policy changes the reference protocol."""
    check_resize_policy(policy)
    if pre.input_size != frame_size and policy in ("as-is", "resize", "center-crop", "native"):
        warnings.warn(
            f"model input_size {pre.input_size} differs from the {frame_size}px ImageNet-C/P "
            f"frames; resize_policy={policy!r} is applied, so the numbers are not the reference "
            "protocol's -- report the policy with them",
            UserWarning,
            stacklevel=2,
        )
