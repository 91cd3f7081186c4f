"""Squeeze-and-Excitation (Hu et al. 2018) as released in assembled-cnn ``blocks.se_block``.

Global average pool -> 1x1 conv to ``channels // ratio`` (no bias) -> ReLU -> 1x1 conv back to
``channels`` (no bias) -> sigmoid -> rescale. The released block has *no biases*, unlike
torchvision/timm SE modules; ratio 16 in the ResNet ablation (E4/E5).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, ratio: int = 16, bias: bool = False) -> None:
        super().__init__()
        if ratio < 1 or channels // ratio < 1:
            raise ValueError(
                f"ratio must be in [1, channels], got ratio={ratio}, channels={channels}"
            )
        reduced = channels // ratio
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))
