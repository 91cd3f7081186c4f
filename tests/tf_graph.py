"""A functional transcription of clovaai/assembled-cnn's eval graph (``nets/resnet_model.py``,
``conv2d_fixed_padding``, ``sk_conv2d``, ``anti_alias`` blur, ``bl`` stages), written from the TF
code with explicit TF padding (``F.pad`` + VALID ops) and reading the tensors of one of our
models: a second, independent path to the same logits. It shares no module code with
``robustbench_assemble.models``, so a layer-order, padding or stride mistake there shows up as
a logit difference (tests/test_models_assembled.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TF ``SAME``: total pad (out - 1) * s + k - n, the extra pixel at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_fixed_padding(x: torch.Tensor, w: torch.Tensor, s: int) -> torch.Tensor:
    """``conv2d_fixed_padding``: explicit (k-1)//2 pad then VALID when strided, else SAME."""
    k = w.shape[-1]
    if s > 1:
        b = (k - 1) // 2
        return F.conv2d(F.pad(x, (b, k - 1 - b, b, k - 1 - b)), w, stride=s)
    ph, pw = same_pads(x.shape[2], k, 1), same_pads(x.shape[3], k, 1)
    return F.conv2d(F.pad(x, (*pw, *ph)), w)


def bn(x: torch.Tensor, m) -> torch.Tensor:
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def sk(x: torch.Tensor, m, s: int) -> torch.Tensor:
    """``sk_conv2d``: one 3x3 conv to 2f channels split in two branches, fuse by sum and
    global mean, fc (no bias) + BN + ReLU, fc to 2f, softmax over the two branches."""
    f = m.channels
    x = F.relu(bn(conv_fixed_padding(x, m.conv.weight, s), m.bn))
    a, b = x[:, :f], x[:, f:]
    z = F.relu(bn(F.conv2d((a + b).mean((2, 3), keepdim=True), m.fc1.weight), m.bn_fc))
    att = F.conv2d(z, m.fc2.weight)
    att = torch.stack([att[:, :f], att[:, f:]]).softmax(0)
    return att[0] * a + att[1] * b


def blur(x: torch.Tensor) -> torch.Tensor:
    """``anti_alias`` sconv, filter 3: reflect pad 1, [1, 2, 1] x [1, 2, 1] / 16, stride 2."""
    c = x.shape[1]
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = (k[:, None] * k[None]) / 16
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(x, k.expand(c, 1, 3, 3).contiguous(), stride=2, groups=c)


def projection(x: torch.Tensor, seq, kind: str, s: int) -> torch.Tensor:
    """The shortcut's projection: ResNet-D (avg pool then 1x1), BL's, or plain strided 1x1."""
    conv, norm = [m for m in seq if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
    if kind == "plain":
        return bn(F.conv2d(x, conv.weight, stride=s), norm)
    if kind == "d":
        padded = F.pad(x, (0, 1, 0, 1))
        if s > 1:
            x = F.avg_pool2d(padded, 2, 2)
        else:  # SAME 2x2 / 1: TF's average excludes the padding
            count = F.avg_pool2d(F.pad(torch.ones_like(x[:, :1]), (0, 1, 0, 1)), 2, 1)
            x = F.avg_pool2d(padded, 2, 1) / count
    elif kind == "bl" and s > 1:
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
    return bn(F.conv2d(x, conv.weight), norm)


def bottleneck(x, m, s: int, kind: str, aa: bool, last_relu: bool = True) -> torch.Tensor:
    shortcut = projection(x, m.downsample, kind, s) if m.downsample is not None else x
    y = F.relu(bn(F.conv2d(x, m.conv1.weight), m.bn1))
    s2 = 1 if aa else s  # anti-aliased blocks convolve at stride 1, then blur-downsample
    if m.use_sk:
        y = sk(y, m.conv2, s2)
    else:
        y = F.relu(bn(conv_fixed_padding(y, m.conv2.weight, s2), m.bn2))
    if aa and s != 1:
        y = blur(y)
    y = bn(F.conv2d(y, m.conv3.weight), m.bn3)
    if m.se is not None:
        e = F.relu(F.conv2d(y.mean((2, 3), keepdim=True), m.se.fc1.weight))
        y = y * torch.sigmoid(F.conv2d(e, m.se.fc2.weight))
    y = y + shortcut
    return F.relu(y) if last_relu else y


def group(x, blocks, s: int, kind: str, aa: bool, last_relu: bool = True) -> torch.Tensor:
    """A block group; ``last_relu`` applies to its last block only when it has more than one
    (the big branch of a BL stage ends without ReLU)."""
    for i, m in enumerate(blocks):
        relu = last_relu if (i == len(blocks) - 1 and i > 0) else True
        x = bottleneck(x, m, s if i == 0 else 1, kind, aa, relu)
    return x


def tf_forward(model, x: torch.Tensor, big_little: bool) -> torch.Tensor:
    """Logits of ``model``'s tensors through the TF graph (``resnet_version`` 2 if
    ``big_little``, else 1)."""
    cfg, aa = model.cfg, model.cfg.anti_alias
    if cfg.stem == "deep":
        c = model.conv1
        x = F.relu(bn(conv_fixed_padding(x, c[0].weight, 2), c[1]))
        x = F.relu(bn(conv_fixed_padding(x, c[3].weight, 1), c[4]))
        x = conv_fixed_padding(x, c[6].weight, 1)
    else:
        x = conv_fixed_padding(x, model.conv1.weight, 2)
    x = F.relu(bn(x, model.bn1))
    if big_little:
        p = model.maxpool
        big = bn(conv_fixed_padding(x, p.big[0].weight, 2), p.big[1])
        lit = F.relu(bn(conv_fixed_padding(x, p.little[0].weight, 1), p.little[1]))
        lit = F.relu(bn(conv_fixed_padding(lit, p.little[3].weight, 2), p.little[4]))
        lit = bn(F.conv2d(lit, p.little[6].weight), p.little[7])
        x = F.relu(bn(F.conv2d(F.relu(big + lit), p.merge[0].weight), p.merge[1]))
    else:  # SAME 3x3 / 2 max pool
        ph, pw = same_pads(x.shape[2], 3, 2), same_pads(x.shape[3], 3, 2)
        x = F.max_pool2d(F.pad(x, (*pw, *ph), value=float("-inf")), 3, 2)
    kind = "bl" if big_little else ("d" if cfg.shortcut == "avg2_tf" else "plain")
    strides = [2, 2, 1, 2] if big_little else [1, 2, 2, 2]
    for i in range(4):
        stage = getattr(model, f"layer{i + 1}")
        if big_little and i < 3:
            big = group(x, stage.big, 2, kind, aa, last_relu=False)
            lit = group(x, stage.little, 1, kind, aa)
            lit = bn(F.conv2d(lit, stage.little_e[0].weight), stage.little_e[1])
            big = big.repeat_interleave(2, 2).repeat_interleave(2, 3)  # nearest x2
            x = group(F.relu(lit + big), stage.merge, strides[i], kind, aa)
        else:
            x = group(x, stage, strides[i], kind, aa)
    return F.linear(x.mean((2, 3)), model.fc.weight, model.fc.bias)
