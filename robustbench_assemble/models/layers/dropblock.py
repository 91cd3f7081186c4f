"""DropBlock (Ghiasi et al. 2018) as released in assembled-cnn ``blocks.dropblock`` (training only).

Faithful details of the released version:

* seeds are drawn on the ``(H - b + 1) x (W - b + 1)`` valid region with rate
  ``gamma = gamma_scale * (1 - keep_prob) * H*W / b^2 / ((H - b + 1)(W - b + 1))``;
* the seed mask has shape ``(1, C, ., .)``: one mask per channel, *shared by every sample of the
  batch* (``shared_across_batch=True``; timm draws one per sample);
* blocks are grown by a ``b x b`` stride-1 max-pool, and the output is rescaled by
  ``numel(mask) / (sum(mask) + 1e-8)``;
* identity in eval mode, when ``keep_prob == 1`` or ``gamma_scale == 0``.

``keep_prob`` is a plain attribute set by the training loop (see
``robustbench_assemble.training.schedules``). Deliberate difference: when the feature map is smaller
than the block the block is clipped to the map (the TF code fails there); at 224/256 inputs the
smallest map is 7x7, so this never triggers for the released settings.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class DropBlock2d(nn.Module):
    def __init__(
        self,
        block_size: int = 7,
        gamma_scale: float = 1.0,
        keep_prob: float = 1.0,
        shared_across_batch: bool = True,
    ) -> None:
        super().__init__()
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size
        self.gamma_scale = gamma_scale
        self.keep_prob = keep_prob
        self.shared_across_batch = shared_across_batch

    @property
    def keep_prob(self) -> float:
        return self._keep_prob

    @keep_prob.setter
    def keep_prob(self, value: float) -> None:
        if not 0.0 < float(value) <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {value!r}")
        self._keep_prob = float(value)

    def gamma(self, height: int, width: int) -> float:
        """Seed rate of the released code for a ``height`` x ``width`` map."""
        b = min(self.block_size, height, width)
        valid = (height - b + 1) * (width - b + 1)
        return self.gamma_scale * (1.0 - self.keep_prob) * (height * width) / (b * b) / valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep_prob == 1.0 or self.gamma_scale == 0:
            return x
        n, c, h, w = x.shape
        b = min(self.block_size, h, w)
        shape = (1 if self.shared_across_batch else n, c, h - b + 1, w - b + 1)
        seeds = (torch.rand(shape, device=x.device) < self.gamma(h, w)).to(torch.float32)
        br = (b - 1) // 2
        tl = (b - 1) - br
        seeds = F.pad(seeds, (tl, br, tl, br))
        # max-pool b x b, stride 1, TF 'SAME' (pad (b-1)//2 before); seeds >= 0 so zero pad is safe
        beg = (b - 1) // 2
        blocks = F.max_pool2d(F.pad(seeds, (beg, b - 1 - beg, beg, b - 1 - beg)), b, 1)
        keep = 1.0 - blocks
        scale = keep.numel() / (keep.sum() + 1e-8)
        return x * (keep * scale).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"block_size={self.block_size}, gamma_scale={self.gamma_scale}, "
            f"keep_prob={self.keep_prob}, shared_across_batch={self.shared_across_batch}"
        )
