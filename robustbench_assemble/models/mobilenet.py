"""MobileNet-V1 and SE-MobileNet-V1 of the paper's Table 9 (M0-M8).

The assembled-cnn repository does not release its MobileNet code, so the architecture follows the
MobileNet-V1 paper (Howard et al. 2017, Table 1) as implemented by TF-slim ``mobilenet_v1``
(ReLU6, BN epsilon 1e-3 / decay 0.9997, 3x3/2 conv 32 then 13 depthwise-separable layers, global
average pool, dense). SE-MobileNet-V1: one bias-free SE unit (the repo's ``se_block``) on the
output of every depthwise-separable layer (after the pointwise conv, BN and ReLU6), with ratio 16
(M1, M6) or 2 (M7, M8). The SE placement is our reading of the paper's text; see docs/MODELS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import SqueezeExcite
from .registry import Preprocessing, register_model

# (output channels, stride) of the 13 depthwise-separable layers, MobileNet-V1 paper Table 1.
MOBILENET_V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


@dataclass(frozen=True)
class MobileNetConfig:
    """``se_ratio`` None = plain MobileNet-V1; 16 or 2 = SE-MobileNet-V1 (r=16 / r=2)."""

    se_ratio: int | None = None
    stem_channels: int = 32
    layers: tuple[tuple[int, int], ...] = MOBILENET_V1_LAYERS
    bn_momentum: float = 0.0003  # TF-slim decay 0.9997
    bn_eps: float = 1e-3
    dropout: float = 0.001  # TF-slim dropout_keep_prob 0.999 (training only)


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int, cfg: MobileNetConfig) -> list:
    return [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=cfg.bn_eps, momentum=cfg.bn_momentum),
        nn.ReLU6(inplace=True),
    ]


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv, BN, ReLU6 -> 1x1 conv, BN, ReLU6 -> [SE]."""

    def __init__(self, cin: int, cout: int, stride: int, cfg: MobileNetConfig) -> None:
        super().__init__()
        self.dw = nn.Sequential(*_conv_bn(cin, cin, 3, stride, cin, cfg))
        self.pw = nn.Sequential(*_conv_bn(cin, cout, 1, 1, 1, cfg))
        self.se = SqueezeExcite(cout, cfg.se_ratio) if cfg.se_ratio else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.pw(self.dw(x)))


class MobileNetV1(nn.Module):
    def __init__(self, cfg: MobileNetConfig | None = None, num_classes: int = 1000) -> None:
        super().__init__()
        cfg = cfg or MobileNetConfig()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg = cfg
        blocks: list[nn.Module] = [nn.Sequential(*_conv_bn(3, cfg.stem_channels, 3, 2, 1, cfg))]
        cin = cfg.stem_channels
        for cout, stride in cfg.layers:
            blocks.append(DepthwiseSeparable(cin, cout, stride, cfg))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.09, a=-0.18, b=0.18)  # slim: stddev 0.09
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.fc(self.dropout(x))


# Evaluation like the paper's Table 9 (input 224) with the repo's input pipeline: mean-only
# and the TF eval graph's resize/crop (the MobileNet code itself was not released; its
# experiments ran in the same codebase, whose only ImageNet eval path this is).
_MOBILENET_PREP = Preprocessing(
    input_size=224,
    resize=256,
    mean=(123.68 / 255, 116.78 / 255, 103.94 / 255),
    std=(1 / 255, 1 / 255, 1 / 255),
    resize_backend="tf1",
    corruption_geometry="clovaai",
)


@register_model(
    "mobilenet_v1", preprocessing=_MOBILENET_PREP, description="MobileNet-V1 1.0/224 (M0-M5)"
)
def mobilenet_v1(num_classes: int = 1000, **kwargs) -> MobileNetV1:
    return MobileNetV1(MobileNetConfig(**kwargs), num_classes)


@register_model(
    "se_mobilenet_v1",
    preprocessing=_MOBILENET_PREP,
    description="SE-MobileNet-V1, SE ratio 16 (M1, M6)",
)
def se_mobilenet_v1(num_classes: int = 1000, **kwargs) -> MobileNetV1:
    return MobileNetV1(MobileNetConfig(**{"se_ratio": 16, **kwargs}), num_classes)


@register_model(
    "se_mobilenet_v1_r2",
    preprocessing=_MOBILENET_PREP,
    description="SE-MobileNet-V1, SE ratio 2 (M7, M8)",
)
def se_mobilenet_v1_r2(num_classes: int = 1000, **kwargs) -> MobileNetV1:
    return MobileNetV1(MobileNetConfig(**{"se_ratio": 2, **kwargs}), num_classes)
