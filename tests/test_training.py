"""Training pieces against hand-computed values and direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from robustbench_assemble.models.layers import DropBlock2d
from robustbench_assemble.training import (
    dropblock_keep_prob,
    kd_loss,
    label_smoothing_cross_entropy,
    mixup_type1,
    set_dropblock_keep_prob,
    soft_cross_entropy,
    teacher_probabilities,
)


def test_label_smoothing_hand_computed():
    # logits (0, ln 2, ln 3): softmax = (1/6, 2/6, 3/6); target class 2, eps 0.3, K 3
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
    q = [0.1, 0.1, 0.8]  # (1 - 0.3) * onehot + 0.3 / 3
    expected = -(q[0] * math.log(1 / 6) + q[1] * math.log(2 / 6) + q[2] * math.log(3 / 6))
    got = label_smoothing_cross_entropy(logits, torch.tensor([2]), 0.3)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_equals_torch_definition():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 10), torch.randint(0, 10, (5,))
    ref = F.cross_entropy(logits, y, label_smoothing=0.1)
    torch.testing.assert_close(label_smoothing_cross_entropy(logits, y, 0.1), ref)
    # soft (e.g. mixed) targets: smoothing applied to the mixed rows
    soft = F.one_hot(y, 10).float() * 0.7 + F.one_hot(y.flip(0), 10).float() * 0.3
    q = soft * 0.9 + 0.01
    expected = -(q * F.log_softmax(logits, -1)).sum(-1).mean()
    torch.testing.assert_close(label_smoothing_cross_entropy(logits, soft, 0.1), expected)
    with pytest.raises(ValueError, match="smoothing"):
        label_smoothing_cross_entropy(logits, y, 1.0)
    with pytest.raises(ValueError, match="shape"):
        label_smoothing_cross_entropy(logits, torch.zeros(5, 9), 0.1)


def test_kd_loss_hand_computed_and_t2_scaling():
    # student (0, 0): softmax(s / T) = (1/2, 1/2) for any T; teacher probs (0.25, 0.75)
    s = torch.zeros(1, 2)
    p = torch.tensor([[0.25, 0.75]])
    for t in (1.0, 2.0, 4.0):
        assert kd_loss(s, p, t).item() == pytest.approx(t * t * math.log(2.0), rel=1e-6)
    # general case = T^2 * (KL(p || q) + H(p)), gradient T * (q - p) / N
    torch.manual_seed(0)
    s = torch.randn(3, 5, requires_grad=True)
    t = 3.0
    p = teacher_probabilities(torch.randn(3, 5), t)
    loss = kd_loss(s, p, t)
    log_q = F.log_softmax(s / t, -1)
    kl = F.kl_div(log_q, p, reduction="batchmean")
    entropy = -(p * p.log()).sum(-1).mean()
    torch.testing.assert_close(loss, t * t * (kl + entropy))
    loss.backward()
    torch.testing.assert_close(s.grad, t * (log_q.exp() - p).detach() / 3)


def test_teacher_probabilities_tempered():
    logits = torch.tensor([[0.0, 2.0]])
    p = teacher_probabilities(logits, 2.0)
    assert p[0, 1].item() == pytest.approx(math.e / (1 + math.e))


def test_mixup_type1_pairs_halves():
    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).view(4, 3, 2, 2)
    y = torch.tensor([0, 1, 2, 3])
    teacher = torch.softmax(torch.randn(4, 5), -1)
    lam = torch.tensor([0.25, 0.9])
    mx, my, mt, out_lam = mixup_type1(x, y, teacher, num_classes=5, lam=lam)
    assert mx.shape == (2, 3, 2, 2) and my.shape == (2, 5)  # 2B in, B out
    torch.testing.assert_close(mx[0], 0.25 * x[0] + 0.75 * x[2])
    torch.testing.assert_close(mx[1], 0.9 * x[1] + 0.1 * x[3])
    torch.testing.assert_close(my[0], torch.tensor([0.25, 0.0, 0.75, 0.0, 0.0]))
    torch.testing.assert_close(mt[1], 0.9 * teacher[1] + 0.1 * teacher[3])
    torch.testing.assert_close(out_lam, lam)
    with pytest.raises(ValueError, match="even"):
        mixup_type1(x[:3], y[:3], num_classes=5)


def test_mixup_type1_lambda_distribution():
    scipy_stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(0)
    x = torch.zeros(40000, 1)
    _, _, _, lam = mixup_type1(x, torch.zeros(40000, 3), alpha=0.2)
    assert lam.shape == (20000,)
    ks = scipy_stats.kstest(lam.numpy(), scipy_stats.beta(0.2, 0.2).cdf)
    assert ks.pvalue > 1e-3


def test_soft_cross_entropy_integer_and_onehot_agree():
    logits = torch.randn(4, 6)
    y = torch.tensor([1, 0, 5, 2])
    torch.testing.assert_close(soft_cross_entropy(logits, y), F.cross_entropy(logits, y))


def test_dropblock_keep_prob_schedule():
    # tf.train.polynomial_decay(1.0, step, decay_steps, 0.9, power=1, cycle=False)
    assert dropblock_keep_prob(0, 1000) == pytest.approx(1.0)
    assert dropblock_keep_prob(250, 1000) == pytest.approx(0.975)
    assert dropblock_keep_prob(1000, 1000) == pytest.approx(0.9)
    assert dropblock_keep_prob(5000, 1000) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="total_steps"):
        dropblock_keep_prob(0, 0)


def test_set_dropblock_keep_prob_on_assemble_r50():
    from robustbench_assemble.models.assembled import assemble_r50

    with torch.device("meta"):
        m = assemble_r50()
    # stage 3: big 5 + little 1 + merge 1 bottlenecks; stage 4: 3 bottlenecks
    assert set_dropblock_keep_prob(m, 0.95) == 10
    assert {d.keep_prob for d in m.modules() if isinstance(d, DropBlock2d)} == {0.95}
