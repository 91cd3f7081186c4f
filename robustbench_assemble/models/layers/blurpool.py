"""Anti-aliased downsampling (Zhang 2019), assembled-cnn ``blocks.anti_aliased_downsample``.

The released models use ``filt_size=3``: the binomial [1, 2, 1] outer product divided by 16, applied
depthwise after a reflect pad of 1, at stride 2 (``padding='VALID'``). It replaces the stride of a
3x3 convolution, which then runs at stride 1 ('sconv' in ``anti_alias_type``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Binomial rows of the released code, indexed by filter size.
_BINOMIAL = {
    1: (1.0,),
    2: (1.0, 1.0),
    3: (1.0, 2.0, 1.0),
    4: (1.0, 3.0, 3.0, 1.0),
    5: (1.0, 4.0, 6.0, 4.0, 1.0),
    6: (1.0, 5.0, 10.0, 10.0, 5.0, 1.0),
    7: (1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0),
}


def blur_kernel(filt_size: int = 3) -> torch.Tensor:
    """The normalised 2-D binomial filter (``filt_size`` x ``filt_size``, sums to 1)."""
    if filt_size not in _BINOMIAL:
        raise ValueError(f"filt_size must be one of {sorted(_BINOMIAL)}, got {filt_size!r}")
    a = torch.tensor(_BINOMIAL[filt_size], dtype=torch.float64)
    k = a[:, None] * a[None, :]
    return (k / k.sum()).float()


class BlurPool2d(nn.Module):
    """Depthwise binomial blur + subsampling, reflect padded like the TF code.

    The filter is a non-persistent buffer: it is a constant in the TF graph, not a checkpoint
    variable, so it stays out of ``state_dict``.
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        if channels < 1 or stride < 1:
            raise ValueError(f"channels and stride must be >= 1, got {channels}, {stride}")
        self.channels = channels
        self.filt_size = filt_size
        self.stride = stride
        self.pad = (filt_size - 1) // 2  # int(1. * (filt_size - 1) / 2) in the TF code
        k = blur_kernel(filt_size)
        self.register_buffer("filt", k[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filt_size == 1:
            return x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, filt_size={self.filt_size}, stride={self.stride}"
