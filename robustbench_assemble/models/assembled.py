"""The assembled ResNet family (Lee et al. 2020, arXiv 2001.06268), after clovaai/assembled-cnn.

One configurable :class:`Bottleneck` and one :class:`ResNet` cover every row of the paper's ablation
(Table 7): the variants are a table of :class:`ResNetConfig` values at the bottom of this file.
Source of every choice: ``nets/resnet_model.py``, ``nets/blocks.py`` and ``nets/model_helper.py`` of
the TF1 code (master), cross-checked with the Keras port (branch tf2.1, whose ``model.summary()``
for Assemble-R50 is quoted in the tests). See docs/MODELS.md.

Conventions kept from the TF code (and why):

* BN momentum 0.997 in TF = 0.003 in PyTorch, epsilon 1e-5 (``model_helper.batch_norm``).
* Every first block of a group has a projection shortcut, even with matching channels.
* ``resnet50`` keeps torchvision's module names *and* padding, so torchvision's ImageNet weights
  load strictly and give identical outputs; the TF-only variants use TF's ``SAME`` max-pool
  (``stem_pool="max_tf"``), which differs from ``nn.MaxPool2d(3, 2, 1)`` by a one-pixel shift.
* Input: RGB minus (123.68, 116.78, 103.94) on the 0..255 scale, no std (``Preprocessing`` below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import (
    AvgPool2dSameStride1,
    AvgPool2x2Tf,
    BlurPool2d,
    DropBlock2d,
    MaxPool2dSame,
    SelectiveKernel,
    SqueezeExcite,
)
from .registry import Preprocessing, register_model

StemKind = Literal["plain", "deep"]
StemPoolKind = Literal["max", "max_tf", "big_little"]
ShortcutKind = Literal["conv", "avg2_tf", "avg2", "avg3"]
AttentionKind = Literal["none", "se", "sk"]


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture switches of the released ``resnet_model.Model`` (flag names in comments).

    ``stem``: "plain" 7x7/2 conv 64; "deep" = ResNet-D 3x3/2 32, 3x3 32, 3x3 64 (``use_resnet_d``
    with ``resnet_version=1``). ``stem_pool``: "max" = ``nn.MaxPool2d(3, 2, 1)`` (torchvision),
    "max_tf" = TF ``SAME`` 3x3/2 max-pool, "big_little" = the BL stem block (``resnet_version=2``).
    ``shortcut`` (projection of the first block of each group): "conv" strided 1x1 + BN;
    "avg2_tf" = ``resnet_d_projection_shortcut`` (2x2/2 avg-pool, and a 2x2/1 SAME avg-pool when
    the block has stride 1); "avg2" = timm's ResNet-D (no pool at stride 1); "avg3" =
    ``bl_projection_shortcut`` (pad 1 + 3x3/2 avg-pool, nothing at stride 1); all then 1x1 conv +
    BN. ``attention``: "se" (``use_se_block``, ratio 16, after the last BN) or "sk"
    (``use_sk_block``: the 3x3 conv becomes an SK unit). ``anti_alias``: ``anti_alias_type=sconv``,
    ``anti_alias_filter_size=3``. ``big_little``: (``bl_alpha``, ``bl_beta``). ``dropblock``:
    ``use_dropblock`` (block 7, gamma scale 0.25 in stage 3 and 1.0 in stage 4).
    """

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    stem: StemKind = "plain"
    stem_pool: StemPoolKind = "max"
    shortcut: ShortcutKind = "conv"
    attention: AttentionKind = "none"
    se_ratio: int = 16
    sk_ratio: int = 2
    sk_min_dim: int = 32
    anti_alias: bool = False
    aa_filter_size: int = 3
    big_little: tuple[int, int] | None = None
    dropblock: bool = False
    dropblock_size: int = 7
    dropblock_gamma_scales: tuple[float, float, float, float] = (0.0, 0.0, 0.25, 1.0)
    zero_gamma: bool = True
    bn_momentum: float = 0.003
    bn_eps: float = 1e-5
    base_width: int = 64
    expansion: int = 4

    def __post_init__(self) -> None:
        choices = {
            "stem": ("plain", "deep"),
            "stem_pool": ("max", "max_tf", "big_little"),
            "shortcut": ("conv", "avg2_tf", "avg2", "avg3"),
            "attention": ("none", "se", "sk"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"ResNetConfig.{name} must be one of {allowed}")
        if len(self.layers) != 4 or min(self.layers) < 1:
            raise ValueError(f"ResNetConfig.layers must be 4 positive ints, got {self.layers}")
        if (self.big_little is None) != (self.stem_pool != "big_little"):
            raise ValueError("big_little=(alpha, beta) and stem_pool='big_little' go together")


def _bn(channels: int, cfg: ResNetConfig) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=cfg.bn_eps, momentum=cfg.bn_momentum)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    """``conv2d_fixed_padding``: for odd k its pad (k-1)//2 equals PyTorch's symmetric pad."""
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)


def make_shortcut(
    kind: ShortcutKind, cin: int, cout: int, stride: int, cfg: ResNetConfig
) -> nn.Sequential:
    """Projection shortcut of the first block of a group (without its DropBlock)."""
    if kind == "conv":
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout, cfg))
    if kind == "avg2_tf":
        pool: nn.Module = AvgPool2x2Tf() if stride > 1 else AvgPool2dSameStride1(2)
    elif kind == "avg2":
        pool = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
    else:  # avg3: pad 1 + 3x3/2 VALID average, the zero pad counted (explicit tf.pad)
        pool = nn.AvgPool2d(3, stride, 1, count_include_pad=True) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, nn.Conv2d(cin, cout, 1, 1, bias=False), _bn(cout, cfg))


class Bottleneck(nn.Module):
    """``_bottleneck_block_v1`` of the released code, every tweak a constructor argument.

    1x1 conv, BN, [DropBlock], ReLU -> 3x3 conv, BN, [DropBlock], ReLU (or SK unit, [DropBlock])
    -> [BlurPool when strided and anti-aliased] -> 1x1 conv to ``expansion * width``, BN
    (zero-gamma), [DropBlock] -> [SE] -> + shortcut (projection + BN + [DropBlock]) -> ReLU
    (skipped when ``last_relu`` is False: last block of a Big-Little big branch).
    Module names follow torchvision (conv1, bn1, conv2, bn2, conv3, bn3, downsample).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        cfg: ResNetConfig,
        drop_block: DropBlock2d | None = None,
        last_relu: bool = True,
    ) -> None:
        super().__init__()
        out_channels = width * cfg.expansion
        self.use_aa = cfg.anti_alias and stride != 1
        conv_stride = 1 if self.use_aa else stride
        self.use_sk = cfg.attention == "sk"
        self.last_relu = last_relu

        self.conv1 = _conv(in_channels, width, 1)
        self.bn1 = _bn(width, cfg)
        if self.use_sk:
            self.conv2: nn.Module = SelectiveKernel(
                width, width, conv_stride, cfg.sk_ratio, cfg.sk_min_dim, cfg.bn_momentum, cfg.bn_eps
            )
            self.bn2: nn.Module = nn.Identity()
        else:
            self.conv2 = _conv(width, width, 3, conv_stride)
            self.bn2 = _bn(width, cfg)
        self.aa = BlurPool2d(width, cfg.aa_filter_size, stride) if self.use_aa else nn.Identity()
        self.conv3 = _conv(width, out_channels, 1)
        self.bn3 = _bn(out_channels, cfg)
        self.se = SqueezeExcite(out_channels, cfg.se_ratio) if cfg.attention == "se" else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_block = drop_block
        if cfg.zero_gamma:
            nn.init.zeros_(self.bn3.weight)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.drop_block is None else self.drop_block(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self._drop(self.downsample(x))
        out = self.relu(self._drop(self.bn1(self.conv1(x))))
        if self.use_sk:
            out = self._drop(self.conv2(out))
        else:
            out = self.relu(self._drop(self.bn2(self.conv2(out))))
        out = self.aa(out)
        out = self._drop(self.bn3(self.conv3(out)))
        if self.se is not None:
            out = self.se(out)
        out = out + shortcut
        return self.relu(out) if self.last_relu else out


class BigLittleStem(nn.Module):
    """The BL stem block that replaces the max-pool (``stage0/pool`` scope in the TF code).

    big: 3x3/2 conv C + BN; little: 3x3 conv C/alpha, BN, ReLU, 3x3/2 conv C/alpha, BN, ReLU,
    1x1 conv C, BN; then ReLU(big + little), 1x1 conv C, BN, ReLU.
    """

    def __init__(self, channels: int, alpha: int, cfg: ResNetConfig) -> None:
        super().__init__()
        c, cl = channels, channels // alpha
        self.big = nn.Sequential(_conv(c, c, 3, 2), _bn(c, cfg))
        self.little = nn.Sequential(
            _conv(c, cl, 3),
            _bn(cl, cfg),
            nn.ReLU(inplace=True),
            _conv(cl, cl, 3, 2),
            _bn(cl, cfg),
            nn.ReLU(inplace=True),
            _conv(cl, c, 1),
            _bn(c, cfg),
        )
        self.merge = nn.Sequential(_conv(c, c, 1), _bn(c, cfg), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(F.relu(self.big(x) + self.little(x)))


class BigLittleStage(nn.Module):
    """A Big-Little stage (stages 1-3 of ``resnet_version=2``).

    big: ``n - 1`` bottlenecks of width f, the first strided (so it runs at half resolution), the
    last without its final ReLU, then nearest x2 upsampling; little: ``max(1, n // beta - 1)``
    bottlenecks of width f / alpha at full resolution, then 1x1 conv + BN to 4f; ReLU(sum); one
    merge bottleneck of width f with stride ``merge_stride`` (2, 2, 1 for stages 1-3).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        num_blocks: int,
        merge_stride: int,
        *,
        alpha: int,
        beta: int,
        cfg: ResNetConfig,
        drop_factory,
    ) -> None:
        super().__init__()
        if num_blocks < 2:
            raise ValueError(f"a Big-Little stage needs >= 2 blocks, got {num_blocks}")
        out = width * cfg.expansion
        self.big = make_group(in_channels, width, num_blocks - 1, 2, cfg, drop_factory, False)
        n_little = max(1, num_blocks // beta - 1)
        self.little = make_group(in_channels, width // alpha, n_little, 1, cfg, drop_factory)
        self.little_e = nn.Sequential(
            _conv((width // alpha) * cfg.expansion, out, 1), _bn(out, cfg)
        )
        self.merge = make_group(out, width, 1, merge_stride, cfg, drop_factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        little = self.little_e(self.little(x))
        big = F.interpolate(self.big(x), scale_factor=2.0, mode="nearest")
        if big.shape[-2:] != little.shape[-2:]:
            raise ValueError(
                f"Big-Little stage: input {tuple(x.shape[-2:])} is not divisible by 2 at every "
                "scale; Big-Little models need image sides divisible by 32 (e.g. 224, 256)"
            )
        return self.merge(F.relu(little + big))


def make_group(
    in_channels: int,
    width: int,
    num_blocks: int,
    stride: int,
    cfg: ResNetConfig,
    drop_factory,
    last_relu: bool = True,
) -> nn.Sequential:
    """``block_layer``: the first block strided with a projection, the rest identity shortcuts.

    As in the TF code, ``last_relu=False`` only reaches blocks after the first one.
    """
    out = width * cfg.expansion
    blocks = [
        Bottleneck(
            in_channels,
            width,
            stride,
            make_shortcut(cfg.shortcut, in_channels, out, stride, cfg),
            cfg=cfg,
            drop_block=drop_factory(),
        )
    ]
    for i in range(1, num_blocks):
        blocks.append(
            Bottleneck(
                out,
                width,
                cfg=cfg,
                drop_block=drop_factory(),
                last_relu=last_relu if i == num_blocks - 1 else True,
            )
        )
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """ResNet-50/152 family: stem, [max-pool | BL stem], four groups, global average pool, dense."""

    def __init__(self, cfg: ResNetConfig, num_classes: int = 1000) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        c = cfg.base_width
        if cfg.stem == "plain":
            self.conv1: nn.Module = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        else:  # ResNet-D deep stem; layout conv1.{0,1,3,4,6} as in timm's resnet50d
            self.conv1 = nn.Sequential(
                _conv(3, c // 2, 3, 2),
                _bn(c // 2, cfg),
                nn.ReLU(inplace=True),
                _conv(c // 2, c // 2, 3),
                _bn(c // 2, cfg),
                nn.ReLU(inplace=True),
                _conv(c // 2, c, 3),
            )
        self.bn1 = _bn(c, cfg)
        self.relu = nn.ReLU(inplace=True)
        if cfg.stem_pool == "max":
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        elif cfg.stem_pool == "max_tf":
            self.maxpool = MaxPool2dSame(3, 2)
        else:
            assert cfg.big_little is not None
            self.maxpool = BigLittleStem(c, cfg.big_little[0], cfg)

        in_ch = c
        strides = (2, 2, 1, 2) if cfg.big_little else (1, 2, 2, 2)
        for i, n in enumerate(cfg.layers):
            width = c * 2**i
            drop_factory = self._drop_factory(i)
            if cfg.big_little and i < 3:
                alpha, beta = cfg.big_little
                stage: nn.Module = BigLittleStage(
                    in_ch,
                    width,
                    n,
                    strides[i],
                    alpha=alpha,
                    beta=beta,
                    cfg=cfg,
                    drop_factory=drop_factory,
                )
            else:
                stage = make_group(in_ch, width, n, strides[i], cfg, drop_factory)
            self.add_module(f"layer{i + 1}", stage)
            in_ch = width * cfg.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_features = in_ch
        _init_tf(self)

    def _drop_factory(self, stage: int):
        scale = self.cfg.dropblock_gamma_scales[stage]
        if not self.cfg.dropblock or scale == 0:
            return lambda: None
        return lambda: DropBlock2d(self.cfg.dropblock_size, scale)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.forward_features(x)), 1)
        return self.fc(x)


def _init_tf(model: nn.Module) -> None:
    """TF1 initialisers of the released code.

    Convs: ``tf.variance_scaling_initializer()`` = truncated normal, fan-in, scale 1 (std corrected
    by 0.8796 for the truncation); dense: Glorot uniform kernel, zero bias; BN gamma 1 (0 for the
    zero-gamma BNs, set by the blocks), beta 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def drop_background_logit(logits: torch.Tensor) -> torch.Tensor:
    """Map the official TF checkpoints' 1001 logits (index 0 = background) to the 1000 classes.

    Index ``k`` of the result is ILSVRC class ``k`` in the usual sorted-wnid order (the TF label
    file ``imagenet_lsvrc_2015_synsets.txt`` is that order, with ``label_offset`` 1).
    """
    if logits.shape[-1] != 1001:
        raise ValueError(f"expected 1001 logits (background first), got {logits.shape[-1]}")
    return logits[..., 1:]


# --------------------------------------------------------------------------------------------
# The variants, as a table. Sources: paper Table 7 (E-numbers) and the released scripts.
# --------------------------------------------------------------------------------------------

_R50 = ResNetConfig()
_R50D = replace(_R50, stem="deep", stem_pool="max_tf", shortcut="avg2_tf")
# With Big-Little the released models keep the 7x7 stem (README: use_resnet_d=False, "D" lives
# in bl_projection_shortcut's 3x3 average pool).
_BL = dict(stem="plain", stem_pool="big_little", shortcut="avg3", big_little=(2, 4))

CONFIGS: dict[str, ResNetConfig] = {
    "resnet50": _R50,  # E0, torchvision-compatible
    "resnet50d": _R50D,  # E1-E3
    "resnet50d_se": replace(_R50D, attention="se"),  # E4 (E5 adds DropBlock in training)
    "resnet50d_sk": replace(_R50D, attention="sk", dropblock=True),  # E6-E8
    "resnet50d_sk_bl": replace(_R50, attention="sk", dropblock=True, **_BL),  # E9
    "resnet50d_sk_bl_aa": replace(_R50, attention="sk", dropblock=True, anti_alias=True, **_BL),
    "assemble_r50": replace(_R50, attention="sk", dropblock=True, anti_alias=True, **_BL),  # E11
    "assemble_r152": replace(
        _R50,
        layers=(5, 12, 30, 3),
        attention="sk",
        dropblock=True,
        anti_alias=True,
        **{**_BL, "big_little": (1, 2)},
    ),  # E12
}

# RGB mean of the TF code (imagenet_preprocessing.CHANNEL_MEANS), no std: x*255 - mean.
_TF_MEAN = (123.68 / 255, 116.78 / 255, 103.94 / 255)
_TF_STD = (1 / 255, 1 / 255, 1 / 255)
# Eval crops of the released code: crop_type 0 resizes the short side to int(size / 0.875)
# (224 -> 256, 256 -> 292); crop_type 1 ("imagenet_224_256a", R152) to size + 1 (257). The mCE
# scripts of both assembled models read `validation_292_256` (scripts/eval_assemble*_mCE_on_
# imagenet.sh), so R152's corruptions are computed at 292 -> 256 although its clean crop is 257.
# Clean images go through the TF graph's own resize and crop (resize_backend "tf1"): the
# published top-1 of these models was measured that way.
# Their corruptions were made by clovaai's CE_validation_generator (corruption_geometry).
_TF = {"mean": _TF_MEAN, "std": _TF_STD, "resize_backend": "tf1", "corruption_geometry": "clovaai"}
TF_224 = Preprocessing(input_size=224, resize=256, **_TF)
TF_256 = Preprocessing(input_size=256, resize=292, **_TF)
TF_256A = Preprocessing(input_size=256, resize=257, corruption_resize=292, **_TF)

PREPROCESSING: dict[str, Preprocessing] = {
    "resnet50": Preprocessing(),  # torchvision weights: 256 -> 224, ImageNet mean/std
    "resnet50d": TF_224,  # paper Table 7: E1-E8 evaluated at 224
    "resnet50d_se": TF_224,
    "resnet50d_sk": TF_224,
    "resnet50d_sk_bl": TF_256,  # E9 onwards at 256
    "resnet50d_sk_bl_aa": TF_256,
    "assemble_r50": TF_256,
    "assemble_r152": TF_256A,
}


def build_resnet(name: str, num_classes: int = 1000, **overrides) -> ResNet:
    """Build a table variant, optionally overriding config fields (e.g. ``dropblock=False``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown assembled variant {name!r}; expected one of {sorted(CONFIGS)}")
    return ResNet(replace(CONFIGS[name], **overrides), num_classes=num_classes)


@register_model(
    "resnet50",
    preprocessing=PREPROCESSING["resnet50"],
    description="ResNet-50 v1.5 (E0), torchvision-compatible names and padding",
    torchvision_name="resnet50",  # so weights="IMAGENET1K_V1"/"IMAGENET1K_V2" load torchvision's
)
def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50", num_classes, **kwargs)


@register_model(
    "resnet50d",
    preprocessing=PREPROCESSING["resnet50d"],
    description="R50D (E1): deep stem, stride on 3x3, avg-pool projection; TF padding",
)
def resnet50d(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50d", num_classes, **kwargs)


@register_model(
    "resnet50d_se",
    preprocessing=PREPROCESSING["resnet50d_se"],
    description="R50D + SE ratio 16 (E4)",
)
def resnet50d_se(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50d_se", num_classes, **kwargs)


@register_model(
    "resnet50d_sk",
    preprocessing=PREPROCESSING["resnet50d_sk"],
    description="R50D + SK r=2 (E6-E8), DropBlock in training",
)
def resnet50d_sk(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50d_sk", num_classes, **kwargs)


@register_model(
    "resnet50d_sk_bl",
    preprocessing=PREPROCESSING["resnet50d_sk_bl"],
    description="R50D + BL + SK (E9), evaluated at 256",
)
def resnet50d_sk_bl(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50d_sk_bl", num_classes, **kwargs)


@register_model(
    "resnet50d_sk_bl_aa",
    preprocessing=PREPROCESSING["resnet50d_sk_bl_aa"],
    description="R50D + BL + SK + AA (E10), evaluated at 256",
)
def resnet50d_sk_bl_aa(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("resnet50d_sk_bl_aa", num_classes, **kwargs)


@register_model(
    "assemble_r50",
    preprocessing=PREPROCESSING["assemble_r50"],
    description="Assemble-ResNet-50 (E11): BL + SK + AA + DropBlock; eval 292 -> 256, mean only",
)
def assemble_r50(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("assemble_r50", num_classes, **kwargs)


@register_model(
    "assemble_r152",
    preprocessing=PREPROCESSING["assemble_r152"],
    description="Assemble-ResNet-152 (E12): BL(1, 2) + SK + AA + DropBlock; eval 257 -> 256",
)
def assemble_r152(num_classes: int = 1000, **kwargs) -> ResNet:
    return build_resnet("assemble_r152", num_classes, **kwargs)
