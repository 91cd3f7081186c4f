"""Figures: built from small synthetic frames; drawn values read back from the Axes."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from robustbench_assemble import figures, metrics, reporting
from robustbench_assemble.corruptions.params import COMMON, SEVERITIES
from robustbench_assemble.reporting import CellCounts, SequenceStats

N = 1000


def synthetic_counts(seed: int, corruptions=COMMON + ("speckle_noise",)) -> dict:
    rng = np.random.default_rng(seed)
    return {
        (c, s): CellCounts(N, int(rng.integers(100, 900))) for c in corruptions for s in SEVERITIES
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    a = synthetic_counts(0)
    a[("saturate", 1)] = CellCounts(N, 700)  # incomplete: no CE bar
    b = synthetic_counts(1)
    return pd.concat(
        [
            reporting.cells_to_frame("model_a", a, CellCounts(N, 760)),
            reporting.cells_to_frame("model_b", b, CellCounts(N, 800)),
        ],
        ignore_index=True,
    )


def expected_ce(df: pd.DataFrame, model: str, corruption: str) -> float:
    sub = df[(df["model"] == model) & (df["corruption"] == corruption)]
    errors = [(N - k) / N for k in sub.sort_values("severity")["top1_correct"]]
    return 100 * sum(errors) / sum(metrics.ALEXNET_ERRORS[corruption])


def bars(ax) -> dict[str, list[float]]:
    return {
        c.get_label(): [p.get_height() for p in c.patches]
        for c in ax.containers
        if isinstance(c, BarContainer)
    }


def test_ce_bar_heights_are_the_ce_values(frame):
    fig = figures.ce_bar_figure(frame)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    drawn = bars(ax)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [c.replace("_", " ") for c in COMMON + ("speckle_noise",)]
    assert len(drawn) == 2
    for legend, heights in drawn.items():
        model = legend.split(" (")[0]
        assert "(mCE" in legend
        want = [expected_ce(frame, model, c) for c in COMMON + ("speckle_noise",)]
        np.testing.assert_allclose(heights, want, rtol=1e-12)
        assert f"{np.mean(want[:15]):.1f}" in legend
    # the AlexNet reference line at 100
    assert any(list(line.get_ydata()) == [100.0, 100.0] for line in ax.get_lines())


def test_relative_ce_bars(frame):
    ax = figures.ce_bar_figure(frame, relative=True).axes[0]
    heights = bars(ax)
    ces = reporting.ce_frame(frame)
    for legend, values in heights.items():
        model = legend.split(" (")[0]
        want = ces[ces["model"] == model]["relative_ce_percent"].to_numpy()
        np.testing.assert_allclose(values, want, rtol=1e-12)


def test_ce_bars_into_a_given_axes(frame):
    fig = Figure()
    ax = fig.add_subplot()
    assert figures.ce_bar_figure(frame, ax=ax) is fig


def test_ce_bars_need_a_complete_corruption():
    df = reporting.cells_to_frame("m", {("fog", 1): CellCounts(N, 10)})
    with pytest.raises(ValueError, match="5 severities"):
        figures.ce_bar_figure(df)


def test_error_curves(frame):
    fig = figures.error_severity_figure(frame)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    names = list(COMMON) + ["speckle_noise", "saturate"]
    assert [ax.get_title() for ax in visible] == [c.replace("_", " ") for c in names]
    fog = visible[names.index("fog")]
    lines = {line.get_label(): line for line in fog.get_lines()}
    np.testing.assert_allclose(
        lines["AlexNet (published)"].get_ydata(), [100 * e for e in metrics.ALEXNET_ERRORS["fog"]]
    )
    sub = frame[(frame["model"] == "model_b") & (frame["corruption"] == "fog")]
    np.testing.assert_allclose(lines["model_b"].get_ydata(), 100 * sub["top1_error"].to_numpy())
    # clean error of model_a as a horizontal line, with a key in the figure legend
    assert any(np.allclose(line.get_ydata(), 24.0) for line in fog.get_lines())
    keys = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(k.startswith("clean error") for k in keys)


def test_flip_probability_bars():
    results = {
        (p, 1): SequenceStats(10, 31, 0.5 * fp)
        for p, fp in metrics.ALEXNET_FLIP_PROBABILITIES.items()
    }
    report = reporting.build_imagenet_p_report("m", results, {}, {}, None)
    df = reporting.report_to_frame(report)
    ax = figures.flip_probability_figure(df).axes[0]
    drawn = bars(ax)
    labels = [t.get_text().replace(" ", "_") for t in ax.get_xticklabels()]
    np.testing.assert_allclose(
        drawn["AlexNet (published)"], [100 * metrics.ALEXNET_FLIP_PROBABILITIES[p] for p in labels]
    )
    np.testing.assert_allclose(
        drawn["m"], [50 * metrics.ALEXNET_FLIP_PROBABILITIES[p] for p in labels]
    )
    with pytest.raises(ValueError, match="difficulty 2"):
        figures.flip_probability_figure(df, difficulty=2)


def test_save_figure_writes_png_and_pdf(tmp_path, frame):
    fig = figures.ce_bar_figure(frame)
    paths = figures.save_figure(fig, tmp_path / "sub" / "ce")
    assert [p.name for p in paths] == ["ce.png", "ce.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(os.listdir(tmp_path / "sub")) == ["ce.pdf", "ce.png"]  # no temp files left
    with pytest.raises(ValueError, match="without extension"):
        figures.save_figure(fig, tmp_path / "ce.png")


def test_make_figures_with_compare(tmp_path):
    def write(model: str, seed: int):
        rep = reporting.build_imagenet_c_report(
            model, synthetic_counts(seed), CellCounts(N, 700), {}, {}, None
        )
        reporting.write_report_json(tmp_path / model / "imagenet_c.json", rep)

    write("a", 0)
    write("b", 1)
    written = figures.make_figures(tmp_path / "a", compare=[tmp_path / "b"])
    names = sorted(p.name for p in written)
    assert names == ["ce_bars.pdf", "ce_bars.png", "error_vs_severity.pdf", "error_vs_severity.png"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        figures.make_figures(tmp_path / "a", compare=[tmp_path / "nowhere.json"])


def _write_c(path, model: str, seed: int, corruptions=COMMON + ("speckle_noise",), severities=()):
    counts = synthetic_counts(seed, corruptions)
    if severities:
        counts = {k: v for k, v in counts.items() if k[1] in severities}
    rep = reporting.build_imagenet_c_report(model, counts, CellCounts(N, 700), {}, {}, None)
    reporting.write_report_json(path, rep)


def test_compare_takes_a_result_file_by_its_content_and_tells_same_names_apart(tmp_path):
    """A renamed result file is drawn (it used to be dropped silently), and a second run of the
    same model is a second legend entry, not points merged into one line."""
    _write_c(tmp_path / "run_a" / "m" / "imagenet_c.json", "m", 0)
    _write_c(tmp_path / "run_b" / "m" / "imagenet_c.json", "m", 1)
    _write_c(tmp_path / "other.json", "o", 2)
    df = reporting.load_frames(
        [tmp_path / "run_a/m/imagenet_c.json", tmp_path / "run_b/m/imagenet_c.json"] * 2
    )
    assert sorted(set(df["model"])) == ["m (run_a/m)", "m (run_b/m)"]  # a file given twice: once
    assert len(df) == 2 * (1 + 16 * 5)
    figures.make_figures(
        tmp_path / "run_a/m", compare=[tmp_path / "run_b/m", tmp_path / "other.json"]
    )
    fig = figures.error_severity_figure(
        reporting.load_frames(
            [tmp_path / "run_a/m/imagenet_c.json", tmp_path / "run_b/m/imagenet_c.json",
             tmp_path / "other.json"]
        )
    )  # fmt: skip
    labels = {
        t.get_text() for ax in fig.axes for lg in [ax.get_legend()] if lg for t in lg.get_texts()
    }
    labels |= {t.get_text() for lg in fig.legends for t in lg.get_texts()}
    assert {"m (run_a/m)", "m (run_b/m)", "o"} <= labels
    assert figures._results_file(tmp_path / "other.json", "imagenet_c.json") is not None
    assert figures._results_file(tmp_path / "other.json", "imagenet_p.json") is None


def test_outputs_are_readable_by_others_and_stale_figures_go(tmp_path):
    """Results and figures get the usual permissions (0o666 minus the umask; mkstemp gave
    0o600), and a figure a new run cannot draw (CE bars without all 15 x 5 cells) is removed."""
    old = os.umask(0o022)
    try:
        folder = tmp_path / "m"
        _write_c(folder / "imagenet_c.json", "m", 0)
        written = figures.make_figures(folder)
        assert {p.name for p in written} >= {"ce_bars.png", "ce_bars.pdf"}
        for p in [folder / "imagenet_c.json", *written]:
            assert p.stat().st_mode & 0o777 == 0o644, p
        _write_c(folder / "imagenet_c.json", "m", 0, corruptions=("contrast",), severities=(1, 5))
        written = figures.make_figures(folder)
        assert sorted(p.name for p in (folder / "figures").iterdir()) == sorted(
            p.name for p in written
        )
        assert not (folder / "figures" / "ce_bars.png").exists()
    finally:
        os.umask(old)


def test_legend_names_a_model_absent_from_the_first_panel(tmp_path):
    """A run (or --compare run) with no cell in the first panel still gets its legend entry:
    the legend was built from the first panel only."""
    _write_c(tmp_path / "a" / "imagenet_c.json", "a", 0, corruptions=("gaussian_noise", "fog"))
    _write_c(tmp_path / "b" / "imagenet_c.json", "b", 1, corruptions=("fog",))
    df = reporting.load_frames(
        [tmp_path / "a" / "imagenet_c.json", tmp_path / "b" / "imagenet_c.json"]
    )
    fig = figures.error_severity_figure(df)
    keys = [t.get_text() for t in fig.legends[0].get_texts()]
    assert keys[:3] == ["AlexNet (published)", "a", "b"]


def test_each_benchmark_redraws_only_its_own_figures(tmp_path):
    """An ImageNet-P run must not redraw (without the earlier --compare models) the ImageNet-C
    figures, nor remove them."""
    _write_c(tmp_path / "m" / "imagenet_c.json", "m", 0)
    _write_c(tmp_path / "o" / "imagenet_c.json", "o", 1)
    written = figures.make_figures(tmp_path / "m", compare=[tmp_path / "o"])
    png = tmp_path / "m" / "figures" / "error_vs_severity.png"
    before = png.read_bytes()
    assert png in written
    again = figures.make_figures(tmp_path / "m", datasets=("imagenet_p",))  # no P results here
    assert again == [] and png.read_bytes() == before
    assert figures.make_figures(tmp_path / "m", datasets=("imagenet_c",)) != []
    assert png.read_bytes() != before  # redrawn without the --compare model
    with pytest.raises(ValueError, match="datasets"):
        figures.make_figures(tmp_path / "m", datasets=("imagenet-c",))


def test_figures_carry_each_runs_departures_and_warn_on_different_data(tmp_path):
    """A figure copied into a paper must say what its results files say: runs with a footnote
    (subset, smoke sample, untrained...) are starred in the legend and explained on top, and
    drawing runs made on different data together warns."""

    def write(model, fingerprint, footnote=None):
        rep = reporting.build_imagenet_c_report(
            model, synthetic_counts(0), CellCounts(N, 700), {}, {}, fingerprint,
            model_info={"footnote": footnote} if footnote else None,
        )  # fmt: skip
        reporting.write_report_json(tmp_path / model / "imagenet_c.json", rep)

    write("a", "f1", "Not the reference protocol: 30 images per cell (--limit 30).")
    write("b", "f1")
    figures.make_figures(tmp_path / "a", compare=[tmp_path / "b"])  # same data: no warning
    df = reporting.load_frames(
        [tmp_path / "a" / "imagenet_c.json", tmp_path / "b" / "imagenet_c.json"]
    )
    notes = figures._departures(
        reporting.model_labels(
            [tmp_path / "a" / "imagenet_c.json", tmp_path / "b" / "imagenet_c.json"]
        )
    )
    assert notes == {"a": "Not the reference protocol: 30 images per cell (--limit 30)."}
    fig = figures.mark_departures(figures.ce_bar_figure(df), notes)
    keys = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(k.startswith("a (mCE") and k.endswith(" *") for k in keys)
    assert any(k.startswith("b (mCE") and not k.endswith("*") for k in keys)
    assert fig._suptitle.get_text() == "* a: 30 images per cell (--limit 30)."
    fig = figures.mark_departures(figures.error_severity_figure(df), notes)
    assert "a *" in [t.get_text() for t in fig.legends[0].get_texts()]
    long = figures.mark_departures(figures.error_severity_figure(df), {"a": "x" * 500}, width=40)
    assert len(long._suptitle.get_text()) == 40 and long._suptitle.get_text().endswith("…")
    write("b", "f2")
    with pytest.warns(UserWarning, match="evaluated on different data"):
        figures.make_figures(tmp_path / "a", compare=[tmp_path / "b"])
