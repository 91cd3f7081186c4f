"""The assembled family against the released TF code (by arithmetic), torchvision, timm and the
published numbers. Every expected count below is derived independently of our modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustbench_assemble.models import assembled as A
from robustbench_assemble.models import create_model
from robustbench_assemble.models import mobilenet as M
from robustbench_assemble.models.layers import (
    AvgPool2dSameStride1,
    BlurPool2d,
    DropBlock2d,
    MaxPool2dSame,
    SelectiveKernel,
)
from robustbench_assemble.models.registry import registered

MODEL_NAMES = [
    "resnet50",
    "resnet50d",
    "resnet50d_se",
    "resnet50d_sk",
    "resnet50d_sk_bl",
    "resnet50d_sk_bl_aa",
    "assemble_r50",
    "assemble_r152",
    "mobilenet_v1",
    "se_mobilenet_v1",
    "se_mobilenet_v1_r2",
]

_CACHE: dict[tuple[str, int], torch.nn.Module] = {}


def build(name: str, num_classes: int = 1000) -> torch.nn.Module:
    key = (name, num_classes)
    if key not in _CACHE:
        torch.manual_seed(0)
        _CACHE[key] = registered()[name].builder(num_classes=num_classes).eval()
    return _CACHE[key]


def build_meta(name: str, num_classes: int = 1000) -> torch.nn.Module:
    """Structure only (no memory, no init): enough for counting parameters."""
    with torch.device("meta"):
        return registered()[name].builder(num_classes=num_classes)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def n_bn_stats(m: torch.nn.Module) -> int:
    return sum(b.numel() for k, b in m.named_buffers() if "running_" in k)


# ------------------------------------------------------------------------------------------
# Parameter counts derived by reading nets/resnet_model.py + nets/blocks.py (TF1, master):
# trainable = conv kernels (no biases) + BN gamma/beta + dense kernel/bias; BN moving
# mean/variance counted apart (Keras "non-trainable").
# ------------------------------------------------------------------------------------------


def _tf_count(layers, *, deep_stem, bl, attn, classes):
    train = stats = 0

    def conv(cin, cout, k):
        nonlocal train
        train += cin * cout * k * k

    def bn(c):
        nonlocal train, stats
        train += 2 * c
        stats += 2 * c

    def bottleneck(cin, f, proj):  # _bottleneck_block_v1
        if proj:  # projection_shortcut / resnet_d_ / bl_ : a 1x1 conv + BN in all cases
            conv(cin, 4 * f, 1)
            bn(4 * f)
        conv(cin, f, 1)
        bn(f)
        if attn == "sk":  # blocks.sk_conv2d, r=2, L=32
            d = max(int(f / 2), 32)
            conv(f, 2 * f, 3)
            bn(2 * f)
            conv(f, d, 1)  # sk_fc_1, use_bias=False
            bn(d)
            conv(d, 2 * f, 1)  # sk_fc_2, use_bias=False
        else:
            conv(f, f, 3)
            bn(f)
        conv(f, 4 * f, 1)
        bn(4 * f)
        if attn == "se":  # blocks.se_block ratio 16, use_bias=False
            conv(4 * f, 4 * f // 16, 1)
            conv(4 * f // 16, 4 * f, 1)

    def block_layer(cin, f, n):  # first block always projects
        bottleneck(cin, f, True)
        for _ in range(n - 1):
            bottleneck(4 * f, f, False)

    if deep_stem:
        conv(3, 32, 3), bn(32), conv(32, 32, 3), bn(32), conv(32, 64, 3)
    else:
        conv(3, 64, 7)
    bn(64)
    if bl:  # 'stage0/pool' block
        a, _ = bl
        conv(64, 64, 3), bn(64)
        conv(64, 64 // a, 3), bn(64 // a), conv(64 // a, 64 // a, 3), bn(64 // a)
        conv(64 // a, 64, 1), bn(64)
        conv(64, 64, 1), bn(64)
    cin = 64
    for i, n in enumerate(layers):
        f = 64 * 2**i
        if bl and i < 3:
            a, b = bl
            block_layer(cin, f, n - 1)  # big
            block_layer(cin, f // a, max(1, n // b - 1))  # little
            conv(4 * f // a, 4 * f, 1), bn(4 * f)  # little_e
            block_layer(4 * f, f, 1)  # merge
        else:
            block_layer(cin, f, n)
        cin = 4 * f
    train += cin * classes + classes
    return train, stats


R50 = (3, 4, 6, 3)
TF_COUNTS = {
    "resnet50": _tf_count(R50, deep_stem=False, bl=None, attn=None, classes=1000),
    "resnet50d": _tf_count(R50, deep_stem=True, bl=None, attn=None, classes=1000),
    "resnet50d_se": _tf_count(R50, deep_stem=True, bl=None, attn="se", classes=1000),
    "resnet50d_sk": _tf_count(R50, deep_stem=True, bl=None, attn="sk", classes=1000),
    "resnet50d_sk_bl": _tf_count(R50, deep_stem=False, bl=(2, 4), attn="sk", classes=1000),
    "resnet50d_sk_bl_aa": _tf_count(R50, deep_stem=False, bl=(2, 4), attn="sk", classes=1000),
    "assemble_r50": _tf_count(R50, deep_stem=False, bl=(2, 4), attn="sk", classes=1000),
    "assemble_r152": _tf_count((5, 12, 30, 3), deep_stem=False, bl=(1, 2), attn="sk", classes=1000),
}


def test_tf_arithmetic_matches_published_counts():
    # The arithmetic itself against published numbers: torchvision resnet50 has 25,557,032
    # parameters; the tf2.1 branch's model.summary() of Assemble-R50 (1001 classes; script
    # script/ctl_r50zc_bldskaa_ls_drbl_mixupaa_kd_ep600.sh) prints Trainable 41,848,489 and
    # Non-trainable 77,312 (BN moving statistics).
    assert TF_COUNTS["resnet50"][0] == 25_557_032
    r50_1001 = _tf_count(R50, deep_stem=False, bl=(2, 4), attn="sk", classes=1001)
    assert r50_1001 == (41_848_489, 77_312)


@pytest.mark.parametrize("name", list(TF_COUNTS))
def test_parameter_counts_match_tf_code(name):
    m = build_meta(name)
    assert (n_params(m), n_bn_stats(m)) == TF_COUNTS[name]


def test_assemble_r50_1001_matches_keras_summary():
    m = build_meta("assemble_r50", 1001)
    assert n_params(m) == 41_848_489  # tf2.1 branch model.summary(): Trainable params
    assert n_bn_stats(m) == 77_312  # Non-trainable params


@pytest.mark.slow
def test_assemble_r152_forward_256():
    m = build("assemble_r152")
    with torch.no_grad():
        assert m(torch.randn(1, 3, 256, 256)).shape == (1, 1000)


def test_resnet50d_count_matches_timm():
    timm = pytest.importorskip("timm")
    assert n_params(timm.create_model("resnet50d")) == TF_COUNTS["resnet50d"][0]


# MobileNet-V1: 32-channel 3x3/2 stem + 13 depthwise-separable layers (paper Table 1), BN with
# gamma/beta, dense 1024 -> classes. Keras applications' MobileNet(alpha=1) reports 4,231,976
# trainable parameters for 1000 classes (its conv head with bias has the dense's count).
def _mobilenet_count(se_ratio, classes=1000):
    p = 3 * 32 * 9 + 2 * 32
    cin = 32
    for cout, _ in M.MOBILENET_V1_LAYERS:
        p += cin * 9 + 2 * cin + cin * cout + 2 * cout
        if se_ratio:
            p += 2 * cout * (cout // se_ratio)
        cin = cout
    return p + 1024 * classes + classes


def test_mobilenet_counts():
    assert _mobilenet_count(None) == 4_231_976
    assert n_params(build_meta("mobilenet_v1")) == 4_231_976
    assert n_params(build_meta("se_mobilenet_v1")) == _mobilenet_count(16)
    assert n_params(build_meta("se_mobilenet_v1_r2")) == _mobilenet_count(2)


# ------------------------------------------------------------------------------------------
# Equivalence with torchvision / timm
# ------------------------------------------------------------------------------------------


def _randomize_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
            m.running_mean = torch.randn(m.num_features, generator=g) * 0.1
            m.running_var = torch.rand(m.num_features, generator=g) + 0.5


def test_resnet50_equals_torchvision():
    tv = pytest.importorskip("torchvision").models.resnet50()
    _randomize_bn(tv)
    ours = A.resnet50()
    ours.load_state_dict(tv.state_dict(), strict=True)
    tv.eval(), ours.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=0)


def test_resnet50d_structure_equals_timm():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("resnet50d")
    _randomize_bn(ref)
    ours = A.resnet50d()
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval(), ours.eval()
    x = torch.randn(1, 3, 64, 64)  # small input: structure and padding show at any size
    with torch.no_grad():
        y_ref = ref(x)
        # timm pads its max-pool PyTorch-style and has no pool on the stride-1 projection;
        # with those two switches our blocks give timm's outputs exactly ...
        torch_style = A.resnet50d(stem_pool="max", shortcut="avg2").eval()
        torch_style.load_state_dict(ref.state_dict(), strict=True)
        torch.testing.assert_close(torch_style(x), y_ref, rtol=1e-5, atol=1e-5)
        # ... and the TF-faithful default differs from it (TF SAME pooling).
        assert (ours(x) - y_ref).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------
# Forward passes, registry data
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "assemble_r152"])
def test_forward_shapes(name):
    m = build(name)
    sizes = (224, 256) if name == "assemble_r50" else (224,)
    with torch.no_grad():
        for s in sizes:
            assert m(torch.randn(1, 3, s, s)).shape == (1, 1000)


def test_every_name_registered_with_preprocessing():
    reg = registered()
    for name in MODEL_NAMES:
        assert name in reg, name
    p = reg["assemble_r50"].preprocessing
    assert (p.input_size, p.resize) == (256, 292)
    np.testing.assert_allclose(np.array(p.mean) * 255, (123.68, 116.78, 103.94))
    np.testing.assert_allclose(np.array(p.std) * 255, (1, 1, 1))
    p152 = reg["assemble_r152"].preprocessing
    assert (p152.input_size, p152.resize) == (256, 257)
    assert reg["resnet50"].preprocessing.mean == (0.485, 0.456, 0.406)
    assert reg["resnet50d_sk"].preprocessing.input_size == 224  # paper Table 7: E1-E8 at 224
    assert reg["resnet50d_sk_bl"].preprocessing.input_size == 256  # E9 onwards at 256


def test_eval_deterministic_and_train_dropblock_active():
    m = build("assemble_r50")
    x = torch.randn(2, 3, 128, 128)  # any side divisible by 32; keeps the test light
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x), rtol=0, atol=0)
        m.train()
        try:
            for d in m.modules():
                if isinstance(d, DropBlock2d):
                    d.keep_prob = 0.9
            y1, y2 = m(x), m(x)
        finally:
            for d in m.modules():
                if isinstance(d, DropBlock2d):
                    d.keep_prob = 1.0
            m.eval()
    assert (y1 - y2).abs().max() > 0


def test_big_little_rejects_unsupported_size():
    with torch.no_grad(), pytest.raises(ValueError, match="divisible by 32"):
        build("resnet50d_sk_bl")(torch.randn(1, 3, 240, 240))


def test_num_classes_1001_and_background_helper():
    logits = torch.arange(2 * 1001, dtype=torch.float32).view(2, 1001)
    out = A.drop_background_logit(logits)
    assert out.shape == (2, 1000) and torch.equal(out[:, 0], logits[:, 1])
    with pytest.raises(ValueError, match="1001"):
        A.drop_background_logit(torch.zeros(1, 1000))


def test_assemble_r50_structure():
    m = build("assemble_r50")
    # stage layout of BL R50 [3, 4, 6, 3] (alpha 2, beta 4): big n-1, little max(1, n//4 - 1)
    for i, n in enumerate((3, 4, 6)):
        stage = getattr(m, f"layer{i + 1}")
        assert len(stage.big) == n - 1 and len(stage.little) == 1 and len(stage.merge) == 1
        assert stage.little[0].conv1.out_channels == 64 * 2**i // 2
        assert stage.big[-1].last_relu is False and stage.big[0].last_relu is True
        assert stage.merge[0].use_aa == (i < 2)  # merge strides 2, 2, 1
        assert stage.big[0].use_aa
    assert len(m.layer4) == 3 and m.layer4[0].use_aa
    # DropBlock only in stage 3 (gamma scale 0.25) and stage 4 (1.0)
    scales = {
        name.split(".")[0]: d.gamma_scale
        for name, d in m.named_modules()
        if isinstance(d, DropBlock2d)
    }
    assert scales == {"layer3": 0.25, "layer4": 1.0}
    # shortcuts: pad 1 + 3x3/2 average pool (counted pad) + 1x1 conv + BN when strided
    pool = m.layer4[0].downsample[0]
    assert isinstance(pool, torch.nn.AvgPool2d) and pool.kernel_size == 3 and pool.padding == 1
    assert pool.count_include_pad
    # the SK convs of the strided blocks run at stride 1, the BlurPool strides
    assert m.layer4[0].conv2.conv.stride == (1, 1) and m.layer4[0].aa.stride == 2
    # BN: TF momentum 0.997 -> 0.003, epsilon 1e-5
    bns = [b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert {(b.momentum, b.eps) for b in bns} == {(0.003, 1e-5)}


def test_zero_gamma():
    m = build_meta("assemble_r50")
    from robustbench_assemble.models.assembled import Bottleneck

    blocks = [b for b in m.modules() if isinstance(b, Bottleneck)]
    assert len(blocks) == 2 + 1 + 1 + 3 + 1 + 1 + 5 + 1 + 1 + 3
    m = build("assemble_r50")
    blocks = [b for b in m.modules() if isinstance(b, Bottleneck)]
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for b in blocks)
    other = A.resnet50(zero_gamma=False)
    assert all(torch.all(b.bn3.weight == 1) for b in other.modules() if isinstance(b, Bottleneck))


# ------------------------------------------------------------------------------------------
# Layers against direct formulas
# ------------------------------------------------------------------------------------------


def test_blurpool_kernel_and_reflect_pad():
    bp = BlurPool2d(2)
    expected = np.outer([1, 2, 1], [1, 2, 1]) / 16
    np.testing.assert_allclose(bp.filt[0, 0].numpy(), expected)
    assert "filt" not in bp.state_dict()
    x = torch.randn(1, 2, 6, 5)
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    out = np.zeros((1, 2, 3, 3))
    for c in range(2):
        for i in range(3):
            for j in range(3):
                out[0, c, i, j] = (xp[0, c, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * expected).sum()
    np.testing.assert_allclose(bp(x).numpy(), out, rtol=1e-5, atol=1e-6)


def test_selective_kernel_attention():
    torch.manual_seed(0)
    sk = SelectiveKernel(8, 16).eval()
    assert sk.fc1.out_channels == 32 and sk.fc1.bias is None  # max(16 / 2, 32)
    assert SelectiveKernel(128, 128).fc1.out_channels == 64  # max(128 / 2, 32)
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        out, attn = sk.forward_with_attention(x)
        assert attn.shape == (3, 2, 16, 1, 1)
        torch.testing.assert_close(attn.sum(1), torch.ones(3, 16, 1, 1))
        feats = F.relu(sk.bn(sk.conv(x)))
        a, b = feats[:, :16], feats[:, 16:]
        s = (a + b).mean((2, 3), keepdim=True)
        logits = sk.fc2(F.relu(sk.bn_fc(sk.fc1(s))))
        w = torch.softmax(torch.stack([logits[:, :16], logits[:, 16:]]), 0)
        torch.testing.assert_close(out, w[0] * a + w[1] * b)


def test_maxpool_same_matches_tf_rule():
    x = torch.randn(1, 1, 6, 7)
    out = MaxPool2dSame(3, 2)(x)
    assert out.shape == (1, 1, 3, 4)
    xn = x[0, 0].numpy()
    # TF SAME: total pad = (out-1)*2 + 3 - n; rows 6 -> (0, 1), cols 7 -> (1, 1)
    for i in range(3):
        for j in range(4):
            r0, c0 = 2 * i, 2 * j - 1
            win = xn[max(r0, 0) : r0 + 3, max(c0, 0) : c0 + 3]
            assert out[0, 0, i, j].item() == pytest.approx(win.max())


def test_avgpool_same_stride1_excludes_padding():
    x = torch.randn(1, 1, 4, 5)
    out = AvgPool2dSameStride1(2)(x)[0, 0].numpy()
    xn = x[0, 0].numpy()
    for i in range(4):
        for j in range(5):
            assert out[i, j] == pytest.approx(xn[i : i + 2, j : j + 2].mean(), rel=1e-5)


def test_dropblock_identity_in_eval_and_at_keep_prob_one():
    d = DropBlock2d(7, 1.0, keep_prob=0.5)
    x = torch.randn(2, 4, 14, 14)
    assert torch.equal(d.eval()(x), x)
    d.train().keep_prob = 1.0
    assert torch.equal(d(x), x)
    with pytest.raises(ValueError, match="keep_prob"):
        d.keep_prob = 0.0


def test_dropblock_matches_released_formula():
    d = DropBlock2d(7, 0.25, keep_prob=0.8).train()
    n, c, h, w = 2, 3, 14, 12
    x = torch.rand(n, c, h, w) + 1.0
    gamma = 0.25 * (1 - 0.8) * (h * w) / 49 / ((h - 6) * (w - 6))
    assert d.gamma(h, w) == pytest.approx(gamma)
    torch.manual_seed(3)
    u = torch.rand(1, c, h - 6, w - 6)  # the draw the layer makes: one mask for the batch
    torch.manual_seed(3)
    y = d(x)
    keep = np.ones((c, h, w))
    for ch, i, j in zip(*np.nonzero((u[0] < gamma).numpy())):
        keep[ch, i : i + 7, j : j + 7] = 0  # seed at valid index (i, j) drops rows i..i+6
    expected = x.numpy() * keep * (keep.size / (keep.sum() + 1e-8))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5)


def test_dropblock_drop_rate():
    torch.manual_seed(0)
    kp, b, h = 0.9, 7, 14
    d = DropBlock2d(b, 1.0, keep_prob=kp).train()
    y = d(torch.ones(1, 4000, h, h))
    dropped = (y == 0).float().mean().item()
    # exact expectation: pixel p is kept iff none of the valid seeds covering it fires
    g = d.gamma(h, h)
    cover = np.array([min(i, h - b) - max(i - b + 1, 0) + 1 for i in range(h)])
    expected = 1 - np.mean((1 - g) ** np.outer(cover, cover))
    assert dropped == pytest.approx(expected, abs=0.01)
    assert 0.07 < expected < 0.1  # roughly 1 - keep_prob, less for overlapping blocks
    assert y.mean().item() == pytest.approx(1.0, abs=1e-4)  # rescaled to the input mean


@pytest.mark.slow
def test_flops_resnet50_matches_paper():
    from torch.utils.flop_counter import FlopCounterMode

    m = build("resnet50")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.randn(1, 3, 224, 224))
    macs = fc.get_total_flops() / 2
    assert macs == pytest.approx(4.1e9, rel=0.01)  # paper Table 7: R50 4.1B (multiply-adds)


def _random_bn_double(model: torch.nn.Module) -> torch.nn.Module:
    """float64, with non-trivial BN statistics (so a BN in the wrong place shows)."""
    model = model.double().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                ranges = ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2),
                          (m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 2.0))  # fmt: skip
                for t, lo, hi in ranges:
                    t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * (hi - lo) + lo)
    return model


@pytest.mark.parametrize(
    ("name", "big_little"),
    [
        ("resnet50d_se", False),
        ("resnet50d_sk", False),
        ("resnet50d_sk_bl", True),
        ("assemble_r50", True),
    ],  # fmt: skip
)
def test_logits_equal_a_transcription_of_the_tf_graph(name, big_little):
    """Our modules vs tests/tf_graph.py (the TF eval graph with explicit TF padding), same
    tensors, float64: equal to rounding. 96 px keeps it fast; 96 and its halvings are even
    and odd (48, 24, 12, 6, 3), so both SAME-padding cases are exercised."""
    import tf_graph

    torch.manual_seed(0)
    model = _random_bn_double(create_model(name, num_classes=1001))
    x = torch.randn(2, 3, 96, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, tf = model(x), tf_graph.tf_forward(model, x, big_little)
    assert (ours - tf).abs().max().item() < 1e-9 * max(1.0, ours.abs().max().item())


def test_tf_graph_transcription_sees_a_torchvision_stem_pool():
    """Negative control: torchvision's max pool (padding 1) is not TF's SAME pool."""
    import dataclasses

    import tf_graph

    torch.manual_seed(0)
    model = _random_bn_double(create_model("resnet50d_se", num_classes=1001, stem_pool="max"))
    x = torch.randn(2, 3, 96, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x)
        model.cfg = dataclasses.replace(model.cfg, stem_pool="max_tf")  # what tf_graph reads
        tf = tf_graph.tf_forward(model, x, False)
    assert (ours - tf).abs().max().item() > 1e-6
