"""Selective Kernel unit, the paper's SK-dagger, as released in assembled-cnn ``blocks.sk_conv2d``.

One 3x3 conv from ``in_channels`` to ``2 * channels`` (a single kernel, not two dilated ones),
BN, ReLU; the result is split into two halves ``a, b`` of ``channels`` each; ``u = a + b`` is
pooled globally, reduced by a 1x1 conv (no bias) to ``d = max(int(channels / r), L)`` with
r = 2, L = 32, BN, ReLU, expanded by a 1x1 conv (no bias) to ``2 * channels``; the two halves of
the attention logits go through a softmax *across the two branches* per channel, and the output
is ``w_a * a + w_b * b``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SelectiveKernel(nn.Module):
    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        r: int = 2,
        min_dim: int = 32,
        bn_momentum: float = 0.003,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.channels = channels
        d = max(int(channels / r), min_dim)
        self.conv = nn.Conv2d(in_channels, 2 * channels, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels, eps=bn_eps, momentum=bn_momentum)
        self.act = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, d, 1, bias=False)
        self.bn_fc = nn.BatchNorm2d(d, eps=bn_eps, momentum=bn_momentum)
        self.fc2 = nn.Conv2d(d, 2 * channels, 1, bias=False)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output and the attention weights, shape (N, 2, C, 1, 1), summing to 1 over dim 1."""
        feats = self.act(self.bn(self.conv(x)))
        n, _, h, w = feats.shape
        feats = feats.view(n, 2, self.channels, h, w)
        s = feats.sum(1).mean((2, 3), keepdim=True)
        z = self.act(self.bn_fc(self.fc1(s)))
        attn = self.fc2(z).view(n, 2, self.channels, 1, 1).softmax(dim=1)
        return (feats * attn).sum(1), attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]
