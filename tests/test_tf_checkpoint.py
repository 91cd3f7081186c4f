"""TF1 checkpoint conversion against the variables clovaai's own code creates.

tests/data/tf_variables_<variant>.txt list, in creation order, the variables that
clovaai/assembled-cnn's ``nets/resnet_model.py`` creates for the released configurations (run
under TensorFlow by tests/tf_checkpoint_oracle.py; TF is not a test dependency). The same
oracle's checkpoints, converted, give that graph's logits (docs/MODELS.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_assemble.convert_tf_checkpoint import main as convert_main
from robustbench_assemble.models import create_model
from robustbench_assemble.models.assembled import build_resnet
from robustbench_assemble.models.tf_checkpoint import (
    convert_tf_variables,
    read_tf_variables,
    tf_variable_names,
)

DATA = Path(__file__).parent / "data"


def _listed(variant: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = (
        line.split("\t") for line in (DATA / f"tf_variables_{variant}.txt").read_text().splitlines()
    )
    return [(name, tuple(json.loads(shape))) for name, shape in rows]


def _model(variant: str, num_classes: int = 1000):
    if variant == "resnet50_v1":  # TF's plain ResNet-50: SAME-padded max-pool
        return build_resnet("resnet50", num_classes=num_classes, stem_pool="max_tf")
    name = {"assemble_r50": "assemble_r50", "resnet50d_v1": "resnet50d",
            "assemble_r152": "assemble_r152"}[variant]  # fmt: skip
    return create_model(name, num_classes=num_classes)


VARIANTS = sorted(p.stem.removeprefix("tf_variables_") for p in DATA.glob("tf_variables_*.txt"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_names_order_and_shapes_are_those_of_clovaais_graph(variant):
    listed = [(n, s) for n, s in _listed(variant) if n != "global_step"]
    model = _model(variant, num_classes=1001)
    names = tf_variable_names(model)
    assert [v.tf_name for v in names] == [n for n, _ in listed]  # same names, same order
    ours = model.state_dict()
    for v, (_, shape) in zip(names, listed, strict=True):
        expected = tuple(ours[v.key].shape)
        if v.kind == "conv":
            shape = (shape[3], shape[2], shape[0], shape[1])  # HWIO -> OIHW
        elif v.kind == "dense_kernel":
            shape = shape[::-1]
        assert shape == expected, (v.tf_name, v.key)
    # every tensor of ours but the BN step counters has a TF name
    covered = {v.key for v in names}
    assert {k for k in ours if not k.endswith("num_batches_tracked")} == covered


def _fake_checkpoint(variant: str, path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    values = {
        name: rng.standard_normal(shape).astype(np.float32) if shape else np.int64(7)
        for name, shape in _listed(variant)
    }
    np.savez(path, **values)
    return values


def test_cli_converts_and_the_file_loads_for_evaluation(tmp_path, capsys):
    values = _fake_checkpoint("assemble_r50", tmp_path / "vars.npz")
    out = tmp_path / "assemble_r50.safetensors"
    argv = [
        "--checkpoint",
        str(tmp_path / "vars.npz"),
        "--model",
        "assemble_r50",
        "--out",
        str(out),
    ]
    assert convert_main(argv) == 0
    assert "591 tensors" in capsys.readouterr().err
    model = create_model("assemble_r50", weights=str(out))  # the 1000-class model of --weights
    sd = model.state_dict()
    kernel = values["resnet_model/stage1/big1/sk_block/sk_fc_1/kernel"]  # HWIO
    torch.testing.assert_close(
        sd["layer1.big.0.conv2.fc1.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1))
    )
    bn = "resnet_model/stage0_1/batch_normalization"  # the stem BN's odd scope
    for tf_var, ours in (("gamma", "weight"), ("moving_variance", "running_var")):
        torch.testing.assert_close(sd[f"bn1.{ours}"], torch.from_numpy(values[f"{bn}/{tf_var}"]))
    dense = values["resnet_model/dense/kernel"]  # (2048, 1001), background first
    torch.testing.assert_close(sd["fc.weight"], torch.from_numpy(dense[:, 1:].T.copy()))
    torch.testing.assert_close(
        sd["fc.bias"], torch.from_numpy(values["resnet_model/dense/bias"][1:])
    )
    # --keep-background: 1001 outputs, row 0 the background
    keep = tmp_path / "keep.safetensors"
    assert convert_main([*argv[:-1], str(keep), "--keep-background"]) == 0
    from safetensors.torch import load_file

    assert load_file(keep)["fc.weight"].shape == (1001, 2048)


def test_conversion_errors_name_the_variables(tmp_path, capsys):
    values = {n: np.zeros(s, np.float32) for n, s in _listed("resnet50d_v1") if n != "global_step"}
    model = _model("resnet50d_v1")
    del values["resnet_model/conv2d_5/kernel"]
    values["resnet_model/batch_normalization_3/gamma"] = np.zeros(7, np.float32)
    values["resnet_model/extra_thing/kernel"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError) as e:
        convert_tf_variables(values, model)
    message = str(e.value)
    assert "missing resnet_model/conv2d_5/kernel" in message
    assert "resnet_model/batch_normalization_3/gamma: shape (7,)" in message
    # a checkpoint of another variant does not fit
    r50 = {n: np.zeros(s, np.float32) for n, s in _listed("resnet50_v1") if n != "global_step"}
    with pytest.raises(ValueError, match="does not fit"):
        convert_tf_variables(r50, model)
    # unused variables are reported, training state is not
    values = {n: np.zeros(s, np.float32) for n, s in _listed("resnet50_v1")}
    values["resnet_model/dense/kernel/Momentum"] = np.zeros(1)
    values["resnet_model/mystery/kernel"] = np.zeros(1)
    _, unused = convert_tf_variables(values, _model("resnet50_v1"))
    assert unused == ["resnet_model/mystery/kernel"]
    # CLI: one-line errors
    argv = ["--model", "resnet50d", "--out", str(tmp_path / "x.safetensors")]
    assert convert_main(["--checkpoint", str(tmp_path / "none.npz"), *argv]) == 2
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "r50.npz", **r50)
    assert convert_main(["--checkpoint", str(tmp_path / "r50.npz"), *argv]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert convert_main(["--checkpoint", str(tmp_path / "r50.npz"), "--model", "alexnet",
                         "--out", str(tmp_path / "a.safetensors")]) == 2  # fmt: skip
    assert "assembled ResNets" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.safetensors"))


def test_checkpoint_paths_and_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TF checkpoint there"):
        read_tf_variables(tmp_path / "model.ckpt-1000")
    (tmp_path / "model.ckpt-1000.index").write_bytes(b"not a bundle")
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        # the prefix exists (and .index / .data-* name the same bundle): TensorFlow is needed
        for name in ("model.ckpt-1000", "model.ckpt-1000.index", "model.ckpt-1000.data-0-of-1"):
            with pytest.raises(ValueError, match="needs TensorFlow"):
                read_tf_variables(tmp_path / name)
    else:  # pragma: no cover - TensorFlow installed: the reader says what it could not read
        with pytest.raises(ValueError, match="not a readable TF checkpoint"):
            read_tf_variables(tmp_path / "model.ckpt-1000.index")
    np.savez(tmp_path / "v.npz", a=np.zeros(1000))
    data = (tmp_path / "v.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    for name in ("cut.npz", "text.npz"):
        with pytest.raises(ValueError, match="not a readable .npz"):
            read_tf_variables(tmp_path / name)


def _oracle_runs() -> list[Path]:
    root = os.environ.get("ROBUSTBENCH_TF_ORACLE")
    return sorted(p for p in Path(root).iterdir() if (p / "logits.npz").is_file()) if root else []


@pytest.mark.slow
@pytest.mark.parametrize("run", _oracle_runs() or [None], ids=lambda p: p.name if p else "none")
def test_converted_checkpoints_give_the_tf_graphs_logits(run):
    """Opt-in (ROBUSTBENCH_TF_ORACLE=<--out parent of tests/tf_checkpoint_oracle.py runs>):
    the oracle's variables, converted, give the logits clovaai's graph computed in TF."""
    if run is None:
        pytest.skip("set ROBUSTBENCH_TF_ORACLE to the outputs of tests/tf_checkpoint_oracle.py")
    variant = json.loads((run / "meta.json").read_text())["variant"]
    model = _model(variant)
    state, unused = convert_tf_variables(read_tf_variables(run / "variables.npz"), model)
    assert unused == []
    model.load_state_dict(state)
    data = np.load(run / "logits.npz")
    x = torch.from_numpy(data["input"]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        ours = model.eval()(x).numpy()
        ours64 = model.double()(x.double()).numpy()
    reference = data["logits"][:, 1:]  # index 0: the background class
    # TF's float32 logits are as far from ours as our own float32 logits are from float64
    # ones (random deep nets amplify rounding: 0.1 % of the logit std for R50, ~20 % for R152),
    # a misplaced tensor is O(std) away
    spread = np.abs(ours - ours64).max()
    assert np.abs(ours - reference).max() < max(3 * spread, 1e-4)
    assert spread < 0.25 * reference.std()
    assert (ours.argmax(1) == reference.argmax(1)).all()
