"""Reporting: RobustBench JSON / CSV formats against RobustBench's own published files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from robustbench_assemble import metrics, reporting
from robustbench_assemble.corruptions.params import COMMON, CORRUPTIONS, SEVERITIES
from robustbench_assemble.perturbation_names import P_TEST, P_VALIDATION
from robustbench_assemble.reporting import CellCounts, SequenceStats

# Three rows of RobustBench's model_info/imagenet/corruptions/unaggregated_results.csv
# (RobustBench/robustbench, commit 78fcc9e): 5,000 images per cell, top-1 accuracies.
ROBUSTBENCH_CSV = (
    ",shot_noise,shot_noise,shot_noise,shot_noise,shot_noise,motion_blur,motion_blur,motion_b"
    "lur,motion_blur,motion_blur,snow,snow,snow,snow,snow,pixelate,pixelate,pixelate,pixelate"
    ",pixelate,gaussian_noise,gaussian_noise,gaussian_noise,gaussian_noise,gaussian_noise,def"
    "ocus_blur,defocus_blur,defocus_blur,defocus_blur,defocus_blur,brightness,brightness,brig"
    "htness,brightness,brightness,fog,fog,fog,fog,fog,zoom_blur,zoom_blur,zoom_blur,zoom_blur"
    ",zoom_blur,frost,frost,frost,frost,frost,glass_blur,glass_blur,glass_blur,glass_blur,gla"
    "ss_blur,impulse_noise,impulse_noise,impulse_noise,impulse_noise,impulse_noise,contrast,c"
    "ontrast,contrast,contrast,contrast,jpeg_compression,jpeg_compression,jpeg_compression,jp"
    "eg_compression,jpeg_compression,elastic_transform,elastic_transform,elastic_transform,el"
    "astic_transform,elastic_transform\n"
    ",1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4"
    ",5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5,1,2,3,4,5\n"
    "AlexNet,0.2944,0.1598,0.0726,0.0196,0.012,0.4174,0.295,0.1794,0.1022,0.0698,0.2788,0.114"
    ",0.132,0.085,0.0502,0.4754,0.4502,0.267,0.1288,0.0858,0.311,0.1814,0.0724,0.0214,0.0058,"
    "0.3404,0.262,0.1502,0.085,0.0522,0.5504,0.514,0.464,0.3886,0.2906,0.3154,0.2324,0.157,0."
    "1214,0.0556,0.3028,0.2308,0.1936,0.163,0.1312,0.3788,0.1976,0.1052,0.0994,0.0616,0.3486,"
    "0.2412,0.1126,0.08,0.0636,0.2234,0.1154,0.0556,0.014,0.0054,0.3496,0.2334,0.1094,0.0266,"
    "0.0094,0.4858,0.4522,0.4228,0.3488,0.2564,0.471,0.3022,0.44,0.3568,0.1898\n"
    "Standard_R50,0.5828,0.4486,0.2856,0.1026,0.0352,0.636,0.5342,0.3754,0.2158,0.1452,0.5468"
    ",0.312,0.3494,0.2344,0.165,0.638,0.6434,0.4598,0.293,0.2088,0.602,0.4878,0.3124,0.1422,0"
    ".0288,0.5914,0.5154,0.3808,0.2752,0.1824,0.736,0.7222,0.6958,0.6496,0.5886,0.6092,0.56,0"
    ".4674,0.4024,0.236,0.5258,0.4302,0.356,0.2844,0.2194,0.6106,0.4366,0.3064,0.2864,0.2258,"
    "0.5362,0.3974,0.1708,0.1306,0.1034,0.4854,0.3862,0.2904,0.113,0.0244,0.6428,0.5824,0.466"
    ",0.2098,0.0542,0.6644,0.6234,0.6004,0.4786,0.3254,0.6684,0.4514,0.5456,0.4122,0.1702\n"
    "Hendrycks2020AugMix,0.6722,0.598,0.5022,0.316,0.1924,0.7148,0.6734,0.5778,0.4192,0.2966,"
    "0.606,0.41,0.4256,0.3014,0.2316,0.6986,0.6836,0.5978,0.4764,0.4212,0.672,0.61,0.5022,0.3"
    "368,0.1188,0.645,0.6066,0.5068,0.3854,0.259,0.747,0.73,0.706,0.6676,0.6086,0.6362,0.5834"
    ",0.4804,0.4162,0.242,0.6198,0.5524,0.5162,0.4328,0.3558,0.6424,0.487,0.3672,0.3478,0.277"
    "6,0.6048,0.4826,0.2686,0.2266,0.174,0.6452,0.576,0.5096,0.327,0.1274,0.7064,0.6764,0.609"
    "4,0.4174,0.156,0.679,0.6496,0.6312,0.568,0.4844,0.6938,0.4798,0.6232,0.519,0.2872\n"
)
# The matching RobustBench leaderboard entries (model_info/imagenet/corruptions/*.json).
ROBUSTBENCH_JSON = {
    "AlexNet": {"clean_acc": "56.24", "corruptions_acc": "21.12", "corruptions_mce": "100.0"},
    "Standard_R50": {"clean_acc": "76.72", "corruptions_acc": "39.48", "corruptions_mce": "76.38"},
    "Hendrycks2020AugMix": {
        "clean_acc": "77.34",
        "corruptions_acc": "49.33",
        "corruptions_mce": "64.17",
    },
}
N_RB = 5000
CONFIG = {"batch_size": 64, "images": "val", "severities": [1, 2, 3, 4, 5]}
VERSIONS = {"python": "3.11", "numpy": "2.4"}


@pytest.fixture
def rb_csv(tmp_path):
    path = tmp_path / "unaggregated_results.csv"
    path.write_text(ROBUSTBENCH_CSV)
    return path


def rb_counts(wide: pd.DataFrame, model: str) -> dict:
    return {
        (c, int(s)): CellCounts(N_RB, int(round(acc * N_RB)))
        for (c, s), acc in wide.loc[model].items()
    }


def clean_counts(percent: str, n: int = N_RB) -> CellCounts:
    return CellCounts(n, int(round(float(percent) / 100 * n)))


def alexnet_counts(n: int = 50000) -> dict:
    # The published AlexNet errors are counts out of 50,000 images.
    return {
        (c, s): CellCounts(n, n - int(round(e * n)), n - int(round(e * n * 0.6)))
        for c, errs in metrics.ALEXNET_ERRORS.items()
        for s, e in zip(SEVERITIES, errs)
    }


# ---------------------------------------------------------------- RobustBench compatibility


def test_read_robustbench_csv(rb_csv):
    wide = reporting.read_unaggregated_csv(rb_csv)
    assert list(wide.index) == ["AlexNet", "Standard_R50", "Hendrycks2020AugMix"]
    assert wide.shape == (3, 75)
    assert wide.loc["AlexNet", ("shot_noise", 1)] == pytest.approx(0.2944)


@pytest.mark.parametrize("model", list(ROBUSTBENCH_JSON))
def test_report_reproduces_robustbench_leaderboard_entry(rb_csv, model):
    wide = reporting.read_unaggregated_csv(rb_csv)
    baseline = reporting.errors_from_unaggregated(wide, "AlexNet")
    published = ROBUSTBENCH_JSON[model]
    report = reporting.build_imagenet_c_report(
        model,
        rb_counts(wide, model),
        clean_counts(published["clean_acc"]),
        CONFIG,
        VERSIONS,
        "fp-rb",
        baseline=baseline,
    )
    for key, value in published.items():
        # same number as RobustBench's string; ours always carries exactly two decimals
        assert report[key] == f"{float(value):.2f}", key
    assert list(report)[: len(reporting.ROBUSTBENCH_FIELDS)] == list(reporting.ROBUSTBENCH_FIELDS)
    assert report["eps"] is None and report["dataset"] == "imagenet"
    assert report["corruptions_acc_3d"] is None and report["corruptions_mce_3d"] is None


def test_robustbench_alexnet_subset_is_close_to_published_alexnet(rb_csv):
    # RobustBench's own AlexNet run (5,000 images) against the published 50,000-image table.
    wide = reporting.read_unaggregated_csv(rb_csv)
    errors = reporting.errors_from_unaggregated(wide, "AlexNet")
    assert metrics.mce(errors) == pytest.approx(100.0, abs=0.5)


def test_unaggregated_csv_layout_roundtrip(rb_csv, tmp_path):
    wide = reporting.read_unaggregated_csv(rb_csv)
    frames = [
        reporting.cells_to_frame(
            m, rb_counts(wide, m), clean_counts(ROBUSTBENCH_JSON[m]["clean_acc"])
        )
        for m in wide.index
    ]
    out = reporting.write_unaggregated_csv(tmp_path / "out" / "u.csv", pd.concat(frames))
    lines = out.read_text().splitlines()
    assert lines[0].startswith(",gaussian_noise,gaussian_noise,")
    assert lines[1].startswith(",1,2,3,4,5,1,2,3,4,5")
    assert lines[2].startswith("AlexNet,")
    assert len(lines) == 5
    # RobustBench's own reader (robustbench/eval.py) gets back the same accuracies
    back = pd.read_csv(out, header=[0, 1], index_col=0)
    back.columns = back.columns.set_levels(
        [back.columns.levels[0], back.columns.levels[1].astype(int)]
    )
    for m in wide.index:
        for col in wide.columns:
            assert back.loc[m, col] == pytest.approx(wide.loc[m, col], abs=1e-12)
    assert not [p for p in os.listdir(out.parent) if p.endswith(".tmp")]


def test_unaggregated_csv_merge_replaces_rows(tmp_path):
    path = tmp_path / "u.csv"
    a = reporting.cells_to_frame("m1", {("fog", 1): CellCounts(10, 5)})
    b = reporting.cells_to_frame("m2", {("fog", 1): CellCounts(10, 7)})
    reporting.write_unaggregated_csv(path, pd.concat([a, b]))
    a2 = reporting.cells_to_frame("m1", {("fog", 1): CellCounts(10, 9)})
    reporting.write_unaggregated_csv(path, a2, merge=True)
    wide = reporting.read_unaggregated_csv(path)
    assert sorted(wide.index) == ["m1", "m2"]
    assert wide.loc["m1", ("fog", 1)] == pytest.approx(0.9)
    assert wide.loc["m2", ("fog", 1)] == pytest.approx(0.7)


def test_unaggregated_refuses_duplicates_and_bad_files(tmp_path):
    a = reporting.cells_to_frame("m1", {("fog", 1): CellCounts(10, 5)})
    with pytest.raises(ValueError, match="duplicated"):
        reporting.unaggregated_frame(pd.concat([a, a]))
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        reporting.read_unaggregated_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text(",fog\n,1\nm,55.0\n")
    with pytest.raises(ValueError, match="fractions"):
        reporting.read_unaggregated_csv(bad)


# ---------------------------------------------------------------------------- ImageNet-C JSON


def test_alexnet_report_and_path_baseline(tmp_path):
    clean = CellCounts(50000, 28261)  # torchvision AlexNet top-1 56.522 %
    report = reporting.build_imagenet_c_report(
        "alexnet", alexnet_counts(), clean, CONFIG, VERSIONS, "fp-1"
    )
    d = report["details"]
    assert d["mce_percent"] == pytest.approx(100.0)
    assert d["relative_mce_percent"] == pytest.approx(100.0)
    assert d["mce_19_percent_nonstandard"] == pytest.approx(100.0)
    assert all(v == pytest.approx(100.0) for v in d["ce_percent"].values())
    assert d["clean_error"] == pytest.approx(metrics.ALEXNET_CLEAN_ERROR)
    assert report["corruptions_mce"] == "100.00" and report["clean_acc"] == "56.52"
    assert d["baseline"]["kind"] == "published"
    assert d["config"] == CONFIG and d["versions"] == VERSIONS and d["data_fingerprint"] == "fp-1"

    path = reporting.write_imagenet_c_json(tmp_path / "alexnet" / "imagenet_c.json", report)
    loaded = reporting.load_report(path)
    assert loaded == json.loads(json.dumps(report))

    # the written file is a measured baseline for metrics and reports
    rng = np.random.default_rng(3)
    errors = {c: tuple(rng.uniform(0.2, 0.9, 5)) for c in CORRUPTIONS}
    assert metrics.mce(errors, baseline=path) == pytest.approx(metrics.mce(errors), rel=1e-12)
    assert metrics.relative_mce(errors, 0.3, baseline=path) == pytest.approx(
        metrics.relative_mce(errors, 0.3), rel=1e-12
    )
    model_counts = {
        (c, s): CellCounts(1000, 1000 - int(round(e * 1000)))
        for c, errs in errors.items()
        for s, e in zip(SEVERITIES, errs)
    }
    other = reporting.build_imagenet_c_report(
        "m", model_counts, CellCounts(1000, 700), CONFIG, VERSIONS, "fp-2", baseline=path
    )
    od = other["details"]
    assert od["baseline"]["kind"] == "measured" and od["baseline"]["model"] == "alexnet"
    assert any("fingerprint" in n for n in od["notes"])  # fp-1 vs fp-2
    rounded = {c: tuple(1 - round(e * 1000) / 1000 for e in v) for c, v in errors.items()}
    rounded = {c: tuple(1 - x for x in v) for c, v in rounded.items()}
    assert od["mce_percent"] == pytest.approx(metrics.mce(rounded), rel=1e-12)
    assert od["relative_mce_percent"] == pytest.approx(
        metrics.relative_mce(rounded, 0.3), rel=1e-12
    )


def test_partial_run_has_no_mce(tmp_path):
    cells = {("fog", s): CellCounts(100, 60) for s in SEVERITIES}
    cells[("snow", 2)] = CellCounts(100, 50)
    cells[("saturate", 1)] = CellCounts(100, 90)
    report = reporting.build_imagenet_c_report("m", cells, None, CONFIG, VERSIONS, None)
    d = report["details"]
    assert report["corruptions_mce"] is None and d["mce_percent"] is None
    assert report["clean_acc"] is None and d["relative_ce_percent"] == {}
    assert set(d["ce_percent"]) == {"fog"}
    assert d["ce_percent"]["fog"] == pytest.approx(
        100 * 0.4 * 5 / sum(metrics.ALEXNET_ERRORS["fog"])
    )
    # corruptions_acc: the 6 cells of common corruptions only (saturate is a validation one)
    assert report["corruptions_acc"] == str(round(100 * (5 * 0.6 + 0.5) / 6, 2))
    assert d["mean_top1_error_all_evaluated"] == pytest.approx(1 - (5 * 0.6 + 0.5 + 0.9) / 7)
    notes = " ".join(d["notes"])
    assert "snow" in notes and "mCE needs" in notes and "clean" in notes
    reporting.write_report_json(tmp_path / "r.json", report)
    frame = reporting.report_to_frame(reporting.load_report(tmp_path / "r.json"))
    assert list(frame.columns) == list(reporting.TIDY_C_COLUMNS)
    assert len(frame) == 7


def test_tidy_frame_roundtrip_through_json(tmp_path):
    cells = {(c, s): CellCounts(50, 20 + s, 30 + s) for c in COMMON[:3] for s in SEVERITIES}
    clean = CellCounts(50, 40, 45)
    direct = reporting.cells_to_frame("m", cells, clean)
    report = reporting.build_imagenet_c_report("m", cells, clean, CONFIG, VERSIONS, "x")
    reporting.write_report_json(tmp_path / "r.json", report)
    loaded = reporting.report_to_frame(reporting.load_report(tmp_path / "r.json"))
    pd.testing.assert_frame_equal(direct, loaded)
    assert direct.iloc[0]["corruption"] == "clean" and direct.iloc[0]["severity"] == 0
    row = direct[(direct["corruption"] == COMMON[1]) & (direct["severity"] == 2)].iloc[0]
    assert row["top1_error"] == pytest.approx(1 - 22 / 50)
    assert row["top5_error"] == pytest.approx(1 - 32 / 50)


def test_nested_cell_counts_are_accepted():
    flat = {("fog", s): CellCounts(10, s) for s in SEVERITIES}
    nested = {"fog": {s: (10, s) for s in SEVERITIES}}
    assert reporting.normalize_cell_counts(flat) == reporting.normalize_cell_counts(nested)


@pytest.mark.parametrize(
    "cells, match",
    [
        ({("fog", 1): CellCounts(10, 11)}, r"\(fog, 1\).*top1_correct"),
        ({("fog", 1): CellCounts(0, 0)}, r"n must be > 0"),
        ({("fog", 6): CellCounts(10, 1)}, r"severity"),
        ({("smog", 1): CellCounts(10, 1)}, r"smog"),
        ({("fog", 1): CellCounts(10, 5, 4)}, r"top5_correct"),
        ({}, r"empty"),
    ],
)
def test_bad_cell_counts(cells, match):
    with pytest.raises(ValueError, match=match):
        reporting.build_imagenet_c_report("m", cells, None, CONFIG, VERSIONS, None)


def test_model_info_and_config_checks():
    cells = {("fog", 1): CellCounts(10, 5)}
    with pytest.raises(ValueError, match="unknown field"):
        reporting.build_imagenet_c_report("m", cells, None, {}, {}, None, model_info={"x": 1})
    with pytest.raises(ValueError, match="config"):
        reporting.build_imagenet_c_report("m", cells, None, {"a": float("nan")}, {}, None)
    info = {"link": "https://x", "architecture": "ResNet-50", "footnote": "note", "venue": "V"}
    report = reporting.build_imagenet_c_report("m", cells, None, {}, {}, None, model_info=info)
    assert report["link"] == "https://x" and report["architecture"] == "ResNet-50"
    assert report["name"] == "m" and report["number_forward_passes"] == 1


def valid_report():
    cells = {(c, s): CellCounts(10, 5) for c in COMMON for s in SEVERITIES}
    return reporting.build_imagenet_c_report("m", cells, CellCounts(10, 8), CONFIG, VERSIONS, "f")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda r: r.pop("clean_acc"), r"<root>\.clean_acc: missing"),
        (lambda r: r.update(clean_acc=76.7), r"<root>\.clean_acc: expected str"),
        (lambda r: r.update(corruptions_mce="abc"), r"corruptions_mce.*percentage"),
        (lambda r: r.update(corruptions_mce=None), r"corruptions_mce.*null exactly"),
        (lambda r: r.update(eps=0.5), r"eps"),
        (lambda r: r["details"].update(schema="other"), r"details\.schema"),
        (lambda r: r["details"]["cells"]["fog"]["1"].update(top1_error=0.1), r"fog\.1\.top1_error"),
        (lambda r: r["details"]["cells"].update(smog={}), r"details\.cells\.smog"),
        (lambda r: r["details"]["cells"]["fog"].update({"7": {}}), r"fog\.7"),
        (lambda r: r["details"].pop("config"), r"details\.config: missing"),
        (lambda r: r.update(additional_data="no"), r"additional_data"),
    ],
)
def test_validate_report_names_the_field(mutate, match):
    report = valid_report()
    reporting.validate_report(report)
    mutate(report)
    with pytest.raises(ValueError, match=match):
        reporting.validate_report(report)


def test_failed_write_leaves_nothing(tmp_path):
    report = valid_report()
    report["details"]["cells"]["fog"]["1"]["n"] = -1
    with pytest.raises(ValueError):
        reporting.write_report_json(tmp_path / "r.json", report)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="build_imagenet_p_report"):
        reporting.write_imagenet_p_json(tmp_path / "r.json", valid_report())


def test_load_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        reporting.load_report(tmp_path / "nothing.json")
    with pytest.raises(FileNotFoundError, match="directory"):
        reporting.load_report(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        reporting.load_report(bad)
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"bad\.json.*details"):
        reporting.load_report(bad)


def test_ce_frame_matches_metrics():
    rng = np.random.default_rng(5)
    errors = {c: rng.uniform(0.1, 0.9, 5) for c in COMMON}
    cells = {
        (c, s): CellCounts(1000, 1000 - int(round(e * 1000)))
        for c, errs in errors.items()
        for s, e in zip(SEVERITIES, errs)
    }
    df = reporting.cells_to_frame("m", cells, CellCounts(1000, 800))
    ces = reporting.ce_frame(df).set_index("corruption")
    table = reporting.errors_from_frame(df)
    for c in COMMON:
        expected = 100 * sum(table[c]) / sum(metrics.ALEXNET_ERRORS[c])
        assert ces.loc[c, "ce_percent"] == pytest.approx(expected)
    assert ces["ce_percent"].mean() == pytest.approx(metrics.mce(table))
    assert ces["relative_ce_percent"].mean() == pytest.approx(metrics.relative_mce(table, 0.2))


def test_collect_versions():
    versions = reporting.collect_versions()
    assert "python" in versions and versions["numpy"] == np.__version__


# ---------------------------------------------------------------------------- ImageNet-P JSON


def p_results(scale: float = 1.0, t5d: float | None = None, difficulties=(1,)) -> dict:
    return {
        (p, d): SequenceStats(100, 41 if p == "translate" else 31, scale * fp, t5d)
        for p, fp in metrics.ALEXNET_FLIP_PROBABILITIES.items()
        for d in difficulties
    }


def test_p_report_with_published_fps_and_no_t5d_baseline(tmp_path):
    report = reporting.build_imagenet_p_report("m", p_results(0.5, 2.0), CONFIG, VERSIONS, "fp")
    d = report["details"]
    assert report["mfr"] == "50.00" and d["mfr_percent"] == pytest.approx(50.0)
    assert report["mt5d"] is None and d["mt5d_percent"] is None
    assert any("robustbench_assemble.eval --model alexnet" in n for n in d["notes"])
    assert d["cells"]["tilt"]["1"]["flip_rate_percent"] == pytest.approx(50.0)
    assert d["cells"]["shear"]["1"]["flip_rate_percent"] == pytest.approx(50.0)  # validation
    assert report["dataset"] == "imagenet_p" and "eps" not in report
    path = reporting.write_imagenet_p_json(tmp_path / "imagenet_p.json", report)
    frame = reporting.report_to_frame(reporting.load_report(path))
    assert list(frame.columns) == list(reporting.TIDY_P_COLUMNS) and len(frame) == 14


def test_p_terminal_summary_flags_an_untrained_baseline(tmp_path):
    """The CLI's ImageNet-P table: FP / FR / T5D per perturbation, mFR and mT5D, and a measured
    baseline with random weights flagged on the terminal (not only in the JSON's notes)."""
    from robustbench_assemble.eval.report import p_summary

    untrained = dict(CONFIG, trained_weights=False)
    alex = reporting.build_imagenet_p_report(
        "alexnet", p_results(1.0, 4.0), untrained, VERSIONS, "fp"
    )
    path = reporting.write_imagenet_p_json(tmp_path / "alexnet" / "imagenet_p.json", alex)
    model = reporting.build_imagenet_p_report(
        "m", p_results(0.5, 3.0), CONFIG, VERSIONS, "fp", fp_baseline="alexnet", t5d_baseline=path
    )
    text = p_summary(model, tmp_path / "m.json")
    assert "mFR                50.00" in text and "mT5D               75.00" in text
    fp = metrics.ALEXNET_FLIP_PROBABILITIES["tilt"] * 0.5
    assert any(
        line.split() == ["tilt", f"{fp:.4f}", "50.00", "3.0000", "75.00"]
        for line in text.splitlines()
    )
    assert f"WARNING: the baseline {path} was measured with UNTRAINED weights" in text
    assert text.count("UNTRAINED weights (random init)") == 1  # not repeated as a plain note
    # no baseline: mT5D n/a, and the notes say what is missing
    bare = reporting.build_imagenet_p_report("m", p_results(0.5, 3.0), CONFIG, VERSIONS, "fp")
    text = p_summary(bare, tmp_path / "m.json")
    assert "mT5D                 n/a    (see the notes)" in text
    assert "--weights" in text  # the recipe for the measured AlexNet baseline


def test_p_report_with_measured_alexnet_baseline_file(tmp_path):
    alex = reporting.build_imagenet_p_report(
        "alexnet", p_results(1.0, 4.0, (1, 2)), CONFIG, VERSIONS, "fp"
    )
    assert alex["mfr"] == "100.00"  # against the published FPs
    path = reporting.write_imagenet_p_json(tmp_path / "alexnet" / "imagenet_p.json", alex)
    model = reporting.build_imagenet_p_report(
        "m",
        p_results(0.5, 3.0, (1, 2)),
        CONFIG,
        VERSIONS,
        "fp",
        fp_baseline=path,
        t5d_baseline=path,
    )
    d = model["details"]
    assert model["mfr"] == "50.00" and model["mt5d"] == "75.00"
    assert d["mfr_percent_by_difficulty"]["2"] == pytest.approx(50.0)
    assert d["mt5d_percent_by_difficulty"]["2"] == pytest.approx(75.0)
    assert not [n for n in d["notes"] if "fingerprint" in n]
    # metrics accept the same file
    fps = {p: 0.5 * v for p, v in metrics.ALEXNET_FLIP_PROBABILITIES.items()}
    assert metrics.mfr(fps, baseline=path) == pytest.approx(50.0)
    assert metrics.mfr(fps, baseline=path, difficulty=2) == pytest.approx(50.0)
    assert metrics.mt5d({p: 3.0 for p in P_TEST}, baseline=path) == pytest.approx(75.0)
    with pytest.raises(ValueError, match="difficulty 3"):
        metrics.mfr(fps, baseline=path, difficulty=3)


def test_p_report_partial_and_bad_input():
    partial = {(p, 1): SequenceStats(10, 31, 0.1) for p in P_VALIDATION}
    report = reporting.build_imagenet_p_report("m", partial, {}, {}, None)
    assert report["mfr"] is None and report["mt5d"] is None
    with pytest.raises(ValueError, match="unknown perturbation"):
        reporting.build_imagenet_p_report("m", {("blur", 1): (10, 31, 0.1)}, {}, {}, None)
    with pytest.raises(ValueError, match="flip_probability"):
        reporting.build_imagenet_p_report("m", {("tilt", 1): (10, 31, 1.5)}, {}, {}, None)
    with pytest.raises(ValueError, match="top5_distance"):
        reporting.build_imagenet_p_report("m", {("tilt", 1): (10, 31, 0.1, 16.0)}, {}, {}, None)
    with pytest.raises(ValueError, match="perturbation, difficulty"):
        reporting.build_imagenet_p_report("m", {"tilt": (10, 31, 0.1)}, {}, {}, None)


def test_sequence_stats_uses_the_metrics():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 31, 20))
    rankings = metrics.rankings_from_scores(scores, k=5)
    preds = rankings[..., 0]
    st = reporting.sequence_stats(preds, rankings, "rotate", 2)
    assert st.n_videos == 6 and st.n_frames == 31
    assert st.flip_probability == metrics.flip_probability(preds, False, 2)
    assert st.top5_distance == metrics.top5_distance(rankings, False, 2)
    assert reporting.sequence_stats(preds, None, "shot_noise").top5_distance is None


def test_baseline_that_is_not_a_trained_alexnet_is_flagged(tmp_path):
    """A measured baseline is the protocol's normaliser only if it is a trained AlexNet:
    another model or untrained weights are named in the notes (they were silently used)."""
    counts = alexnet_counts(1000)
    for name, trained in (("alexnet", True), ("resnet50", True), ("alexnet", False)):
        config = dict(CONFIG, trained_weights=trained)
        rep = reporting.build_imagenet_c_report(
            name, counts, CellCounts(1000, 560), config, VERSIONS, "fp"
        )
        path = reporting.write_imagenet_c_json(tmp_path / f"{name}{trained}.json", rep)
        notes = reporting.build_imagenet_c_report(
            "m", counts, CellCounts(1000, 700), CONFIG, VERSIONS, "fp", baseline=path
        )["details"]["notes"]
        flagged = [n for n in notes if n.startswith(f"the baseline {path}")]
        assert len(flagged) == (name != "alexnet") + (not trained), (name, trained, notes)
        assert all("resnet50" in n or "UNTRAINED" in n for n in flagged)


def test_degenerate_measured_baselines_leave_ratios_null_not_the_run(tmp_path):
    """A measured baseline whose corruption errors do not exceed its clean error (relative CE
    undefined) or whose FP is 0 (FR undefined) used to abort the run after all the evaluation:
    now that ratio is null with a note naming the file, and the rest is reported."""
    counts = alexnet_counts(1000)
    base = reporting.build_imagenet_c_report(
        "alexnet",
        counts,
        CellCounts(1000, 0),
        CONFIG,
        VERSIONS,
        "fp",  # clean error 1.0
    )
    path = reporting.write_imagenet_c_json(tmp_path / "c.json", base)
    rep = reporting.build_imagenet_c_report(
        "m", counts, CellCounts(1000, 700), CONFIG, VERSIONS, "fp", baseline=path
    )
    d = rep["details"]
    assert d["mce_percent"] == pytest.approx(100.0) and rep["clean_acc"] == "70.00"
    assert d["relative_ce_percent"] == {} and d["relative_mce_percent"] is None
    assert any("relative CE is not reported" in n and str(path) in n for n in d["notes"])

    fps = dict(metrics.ALEXNET_FLIP_PROBABILITIES, brightness=0.0)
    alex = {k: SequenceStats(2, 31, fps[k[0]], 4.0) for k in p_results()}
    ppath = reporting.write_imagenet_p_json(
        tmp_path / "p.json",
        reporting.build_imagenet_p_report("alexnet", alex, CONFIG, VERSIONS, "fp"),
    )
    model = reporting.build_imagenet_p_report(
        "m", p_results(0.5, 3.0), CONFIG, VERSIONS, "fp2", fp_baseline=ppath, t5d_baseline=ppath
    )
    md = model["details"]
    assert md["cells"]["brightness"]["1"]["flip_rate_percent"] is None
    assert md["cells"]["tilt"]["1"]["flip_rate_percent"] == pytest.approx(50.0)
    assert model["mfr"] is None and model["mt5d"] == "75.00"
    assert any("brightness: FR is not reported" in n and str(ppath) in n for n in md["notes"])
    assert len(md["notes"]) == len(set(md["notes"]))  # the fingerprint note once, not twice
