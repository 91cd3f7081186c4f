"""Pooling with TensorFlow's padding rules, so TF-trained graphs run identically in PyTorch.

TF ``padding='SAME'`` pads ``max((ceil(n/s)-1)*s + k - n, 0)`` in total, the smaller half first;
for a 3x3/2 max-pool on an even input that is (0, 1), whereas ``nn.MaxPool2d(3, 2, 1)`` pads
(1, 1): the windows are shifted by one pixel. TF's ``SAME`` average pooling divides by the number
of real (unpadded) elements in each window.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class MaxPool2dSame(nn.Module):
    """``tf.layers.max_pooling2d(..., padding='SAME')``."""

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph = _same_pads(x.shape[-2], self.kernel_size, self.stride)
        pw = _same_pads(x.shape[-1], self.kernel_size, self.stride)
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME(tf)"


class AvgPool2dSameStride1(nn.Module):
    """``average_pooling2d(pool_size=k, strides=1, padding='SAME')``: pad excluded from the mean.

    The released ``resnet_d_projection_shortcut`` applies this (k=2) even when the block has
    stride 1 (the first block of stage 1 in R50D), unlike timm's ResNet-D which has no pool there.
    """

    def __init__(self, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        beg, end = (k - 1) // 2, (k - 1) - (k - 1) // 2
        pads = (beg, end, beg, end)
        summed = F.avg_pool2d(F.pad(x, pads), k, 1) * (k * k)
        ones = torch.ones((1, 1, *x.shape[-2:]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, pads), k, 1) * (k * k)
        return summed / count

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride=1, padding=SAME(tf, exclude pad)"


class AvgPool2x2Tf(nn.Module):
    """``fixed_padding(x, 2)`` (pad 0 before, 1 after) then a 2x2/2 ``VALID`` average pool.

    The explicit zero pad is counted in the mean (it only enters for odd sizes).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 2)
