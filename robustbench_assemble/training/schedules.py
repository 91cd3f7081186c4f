"""DropBlock keep-probability schedule of the released code (``model_fns.keep_prob_decay``).

``tf.train.polynomial_decay(start, step, decay_steps, end, power=1, cycle=False)`` with
``decay_steps = train_epochs * steps_per_epoch``: linear from 1.0 to 0.9 over the whole run,
held at 0.9 afterwards (``dropblock_kp=[1.0, 0.9]``).
"""

from __future__ import annotations

import torch.nn as nn

from ..models.layers import DropBlock2d


def dropblock_keep_prob(step: int, total_steps: int, start: float = 1.0, end: float = 0.9) -> float:
    """Keep probability at ``step`` (0-based global step) of a ``total_steps`` run."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    t = min(step, total_steps) / total_steps
    return (start - end) * (1.0 - t) + end


def set_dropblock_keep_prob(model: nn.Module, keep_prob: float) -> int:
    """Set ``keep_prob`` on every DropBlock2d of ``model``; returns how many were set."""
    n = 0
    for m in model.modules():
        if isinstance(m, DropBlock2d):
            m.keep_prob = keep_prob
            n += 1
    return n
