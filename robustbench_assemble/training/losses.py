"""Losses and mixup of the released training code (``run_loop_classification.resnet_model_fn``).

Total loss of Assemble-ResNet: ``CE_ls(logits, y) + T^2 * CE(logits / T, p_teacher) + L2``
with label smoothing 0.1, ``p_teacher = softmax(teacher_logits / T)`` (T = 1 in the released
script) and mixup type 1 applied to images, labels and teacher probabilities alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _as_distribution(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    if target.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        if target.ndim != 1:
            raise ValueError(f"integer targets must have shape (N,), got {tuple(target.shape)}")
        return F.one_hot(target.long(), num_classes).float()
    if target.ndim != 2 or target.shape[1] != num_classes:
        raise ValueError(
            f"soft targets must have shape (N, {num_classes}), got {tuple(target.shape)}"
        )
    return target.float()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``-sum_k q_k log softmax(logits)_k`` (``tf.losses.softmax_cross_entropy``)."""
    q = _as_distribution(target, logits.shape[-1])
    return -(q * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def label_smoothing_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1
) -> torch.Tensor:
    """Cross-entropy against ``q = (1 - eps) * y + eps / K`` (TF's ``label_smoothing`` argument).

    ``target``: class indices (N,) or (mixed) one-hot rows (N, K); smoothing is applied after
    mixup, as in the TF graph.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    k = logits.shape[-1]
    q = _as_distribution(target, k) * (1.0 - smoothing) + smoothing / k
    return soft_cross_entropy(logits, q)


def teacher_probabilities(teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(teacher_logits / T)``, computed before mixup as in the TF code."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.softmax(teacher_logits.float() / temperature, dim=-1)


def kd_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``T^2 * CE(softmax(student / T), teacher_probs)`` (Hinton et al.; the released ``kd_temp``).

    This is the cross-entropy form of the TF code: it exceeds the KL divergence by the teacher's
    entropy (a constant), so the gradients are identical.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return temperature**2 * soft_cross_entropy(student_logits / temperature, teacher_probs)


def mixup_type1(
    images: torch.Tensor,
    targets: torch.Tensor,
    teacher_probs: torch.Tensor | None = None,
    *,
    alpha: float = 0.2,
    num_classes: int | None = None,
    lam: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Mixup "type 1" of the released code (``data_util.mixup(keep_batch_size=False)``).

    The loader delivers a batch of 2B images; the first half is mixed with the second half pair by
    pair, ``x = lam * x1 + (1 - lam) * x2`` with one ``lam ~ Beta(alpha, alpha)`` per pair (alpha
    0.2), and the same ``lam`` mixes the one-hot labels and the teacher probabilities. The output
    batch has B images. Returns ``(images, soft_targets, teacher_probs or None, lam)``; pass
    ``lam`` (shape (B,)) to fix the mixing weights instead of sampling them.
    """
    n = images.shape[0]
    if n % 2:
        raise ValueError(f"mixup type 1 needs an even batch (2B images), got {n}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if num_classes is None:
        if targets.ndim != 2:
            raise ValueError("pass num_classes when targets are class indices")
        num_classes = targets.shape[1]
    y = _as_distribution(targets, num_classes).to(images.device)
    half = n // 2
    if lam is None:  # sampled in float64: a fifth of Beta(0.2, 0.2) lies within 1e-3 of 0 or 1
        a = torch.tensor(float(alpha), dtype=torch.float64)
        lam = torch.distributions.Beta(a, a).sample((half,))
    elif lam.shape != (half,):
        raise ValueError(f"lam must have shape ({half},), got {tuple(lam.shape)}")
    lam = lam.to(images.device)
    lx = lam.view(half, *([1] * (images.ndim - 1))).to(images.dtype)
    ly = lam.view(half, 1).float()
    mixed_x = lx * images[:half] + (1 - lx) * images[half:]
    mixed_y = ly * y[:half] + (1 - ly) * y[half:]
    mixed_t = None
    if teacher_probs is not None:
        if teacher_probs.shape != y.shape:
            raise ValueError(
                f"teacher_probs must have shape {tuple(y.shape)}, got {tuple(teacher_probs.shape)}"
            )
        t = teacher_probs.to(images.device).float()
        mixed_t = ly * t[:half] + (1 - ly) * t[half:]
    return mixed_x.detach(), mixed_y.detach(), None if mixed_t is None else mixed_t.detach(), lam
