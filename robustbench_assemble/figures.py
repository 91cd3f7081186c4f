"""Figures from tidy results frames: CE bars, error-vs-severity curves, ImageNet-P flip bars.

Each function takes a tidy frame (:mod:`robustbench_assemble.reporting`), optionally the
Axes to draw into, and returns the Figure, so a paper can restyle it. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global backend switch; PNG goes through Agg), and
:func:`save_figure` writes PNG and PDF atomically.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import metrics, reporting
from .atomic import atomic_writer
from .corruptions.params import COMMON, CORRUPTIONS, SEVERITIES
from .perturbation_names import P_TEST, PERTURBATIONS

BASELINE_COLOR = "0.55"


def _models(df: pd.DataFrame) -> list[str]:
    if df.empty:
        raise ValueError("the results frame is empty")
    return list(dict.fromkeys(df["model"]))


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _grouped_bars(
    ax: Axes, labels: Sequence[str], series: dict[str, Sequence[float]], colors: dict | None = None
) -> None:
    """One bar group per label, one bar (a BarContainer labelled with the series name) each."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        color = (colors or {}).get(name)
        ax.bar(x + offset, values, width, label=name, color=color)
    ax.set_xticks(x, [lbl.replace("_", " ") for lbl in labels], rotation=45, ha="right")


def _separate(ax: Axes, labels: Sequence[str], first_group: Sequence[str], text: str) -> None:
    """A dotted line between the averaged names (mCE / mFR set) and the held-out ones."""
    n = sum(1 for lbl in labels if lbl in first_group)
    if 0 < n < len(labels):
        ax.axvline(n - 0.5, color=BASELINE_COLOR, linestyle=":", linewidth=1)
        ax.annotate(
            text,
            (n - 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize="x-small",
            color="0.4",
        )


def ce_bar_figure(
    df: pd.DataFrame,
    baseline: metrics.Baseline = "alexnet",
    ax: Axes | None = None,
    relative: bool = False,
) -> Figure:
    """Per-corruption CE (percent; AlexNet = 100) of every model in ``df``, grouped bars.

    Bars are drawn for the corruptions that have all 5 severities (the 15 common ones first,
    then the validation ones); the legend gives each model's mCE when all 15 are present.
    ``relative=True`` draws relative CE instead (needs clean rows in ``df``).
    """
    models = _models(df)
    ces = reporting.ce_frame(df, baseline)
    column = "relative_ce_percent" if relative else "ce_percent"
    present = set(ces["corruption"])
    labels = [c for c in CORRUPTIONS if c in present]
    if not labels:
        raise ValueError("no corruption has all 5 severities in the frame: no CE to draw")
    series = {}
    for m in models:
        sub = ces[ces["model"] == m].set_index("corruption")[column]
        values = [float(sub.get(c, math.nan)) for c in labels]
        common = [float(sub[c]) for c in COMMON if c in sub.index and not math.isnan(sub[c])]
        name = (
            f"{m} (m{'Rel' if relative else ''}CE {np.mean(common):.1f})"
            if len(common) == len(COMMON)
            else m
        )
        series[name] = values
    fig, ax = _new_axes(ax, (max(6.0, 0.55 * len(labels) * max(1, len(models)) ** 0.5), 4.0))
    _grouped_bars(ax, labels, series)
    base_name = "AlexNet" if isinstance(baseline, str) and baseline == "alexnet" else "baseline"
    ax.axhline(100.0, color=BASELINE_COLOR, linestyle="--", linewidth=1, label=f"{base_name} = 100")
    highest = max((v for vals in series.values() for v in vals if not math.isnan(v)), default=0)
    ax.set_ylim(0, max(115.0, 1.08 * highest))  # room for the AlexNet line and its note
    _separate(ax, labels, COMMON, "validation (not in mCE)")
    ax.set_ylabel(f"{'relative ' if relative else ''}CE (%)")
    ax.set_title(f"{'Relative c' if relative else 'C'}orruption error, normalised by {base_name}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def error_severity_figure(
    df: pd.DataFrame,
    axes: Sequence[Axes] | None = None,
    show_alexnet: bool = True,
    ncols: int = 5,
) -> Figure:
    """Top-1 error (%) against severity, one small panel per corruption, one line per model.

    The published AlexNet errors are drawn dashed in grey (``show_alexnet``) and each model's
    clean error, when in ``df``, as a dotted horizontal line. ``axes``: one Axes per corruption
    present (in reference order) to draw into.
    """
    models = _models(df)
    cells = df[df["corruption"] != "clean"]
    names = [c for c in CORRUPTIONS if c in set(cells["corruption"])]
    if not names:
        raise ValueError("the frame has no corruption rows")
    if axes is None:
        nrows = math.ceil(len(names) / ncols)
        fig = Figure(figsize=(2.6 * min(ncols, len(names)), 2.2 * nrows), layout="constrained")
        grid = fig.subplots(nrows, min(ncols, len(names)), squeeze=False, sharex=True, sharey=True)
        flat = list(grid.ravel())
        for extra in flat[len(names) :]:
            extra.set_visible(False)
        axes = flat[: len(names)]
        for ax in axes[-min(ncols, len(names)) :]:  # the lowest panel of each column
            ax.xaxis.set_tick_params(labelbottom=True)
    else:
        axes = list(axes)
        if len(axes) != len(names):
            raise ValueError(
                f"axes: expected {len(names)} Axes (one per corruption), got {len(axes)}"
            )
        fig = axes[0].figure
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, c in zip(axes, names):
        if show_alexnet:
            ax.plot(
                SEVERITIES,
                [100 * e for e in metrics.ALEXNET_ERRORS[c]],
                linestyle="--",
                color=BASELINE_COLOR,
                label="AlexNet (published)",
            )
        for m in models:
            sub = cells[(cells["model"] == m) & (cells["corruption"] == c)].sort_values("severity")
            if not sub.empty:
                ax.plot(
                    sub["severity"],
                    100 * sub["top1_error"],
                    marker="o",
                    ms=3,
                    label=m,
                    color=colors[m],
                )
            clean = reporting.clean_error_from_frame(df, m)
            if clean is not None:
                ax.axhline(100 * clean, linestyle=":", linewidth=1, color=colors[m])
        ax.set_title(c.replace("_", " "), fontsize="small")
        ax.set_xticks(SEVERITIES)
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("top-1 error (%)")
    axes[-1].set_xlabel("severity")
    # every model once, also one with no cell in the first panel, in the models' order
    by_label: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            by_label.setdefault(label, handle)
    labels = [t for t in ("AlexNet (published)", *models) if t in by_label]
    handles = [by_label[t] for t in labels]
    if any(reporting.clean_error_from_frame(df, m) is not None for m in models):
        # the dotted lines need a key too: one neutral entry for all models
        handles.append(Line2D([], [], linestyle=":", linewidth=1, color=BASELINE_COLOR))
        labels.append("clean error (dotted, model's colour)")
    # as many legend columns as fit the figure's width (a column of "small" text takes about
    # 0.065 in per character plus the line sample): a wider legend was clipped at both sides
    column = 0.065 * max(len(t) for t in labels) + 0.6
    fits = int(fig.get_figwidth() // column)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=max(1, min(4, len(labels), fits)),
        fontsize="small",
    )
    return fig


def flip_probability_figure(
    p_df: pd.DataFrame,
    difficulty: int = 1,
    ax: Axes | None = None,
    show_alexnet: bool = True,
) -> Figure:
    """ImageNet-P flip probability (%) per perturbation at ``difficulty``, grouped bars, with
    the published AlexNet FPs (difficulty 1 only) as a grey first bar of each group."""
    models = _models(p_df)
    sub = p_df[p_df["difficulty"] == difficulty]
    labels = [p for p in PERTURBATIONS if p in set(sub["perturbation"])]
    if not labels:
        raise ValueError(f"no ImageNet-P results at difficulty {difficulty} in the frame")
    series: dict[str, list[float]] = {}
    colors: dict[str, str] = {}
    if show_alexnet and difficulty == 1:
        series["AlexNet (published)"] = [
            100 * metrics.ALEXNET_FLIP_PROBABILITIES[p] for p in labels
        ]
        colors["AlexNet (published)"] = BASELINE_COLOR
    for m in models:
        fp = sub[sub["model"] == m].set_index("perturbation")["flip_probability"]
        series[m] = [100 * float(fp.get(p, math.nan)) for p in labels]
    fig, ax = _new_axes(ax, (max(6.0, 0.6 * len(labels) * max(1, len(series)) ** 0.5), 4.0))
    _grouped_bars(ax, labels, series, colors)
    _separate(ax, labels, P_TEST, "validation (not in mFR)")
    ax.set_ylabel("flip probability (%)")
    ax.set_ylim(bottom=0)  # all-zero FPs autoscaled to -0.04 .. 0.04 %
    ax.set_title(f"ImageNet-P flip probability, difficulty {difficulty}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def save_figure(
    fig: Figure,
    path_without_ext: str | os.PathLike,
    formats: Iterable[str] = ("png", "pdf"),
    dpi: int = 150,
) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` and ``<path>.pdf`` (each via a temp file + os.replace)."""
    base = Path(path_without_ext)
    if base.suffix.lower() in {".png", ".pdf", ".svg"}:
        raise ValueError(f"give the path without extension, got {base}")
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = base.with_name(f"{base.name}.{fmt}")
        with atomic_writer(target) as f:  # usual permissions, unlike tempfile.mkstemp's 0o600
            fig.savefig(f, format=fmt, dpi=dpi)
        written.append(target)
    return written


def _departures(labelled: Sequence[tuple[Path, dict, str]]) -> dict[str, str]:
    """Model label -> its results file's footnote (departures from the reference protocol,
    untrained weights, smoke sample), for the runs of :func:`reporting.model_labels` that have
    one; warns when the runs drawn together were evaluated on different data."""
    prints = {r.get("details", {}).get("data_fingerprint") for _, r, _ in labelled}
    if len(prints - {None}) > 1:
        warnings.warn(
            "the runs drawn together were evaluated on different data (data fingerprints "
            f"{', '.join(sorted(str(p) for p in prints))}): "
            + ", ".join(f"{label} ({f})" for f, _, label in labelled),
            UserWarning,
            stacklevel=3,
        )
    return {label: str(r["footnote"]) for _, r, label in labelled if r.get("footnote")}


def mark_departures(fig: Figure, notes: Mapping[str, str], width: int | None = None) -> Figure:
    """Mark with ``*`` the legend entries of the models in ``notes`` (label -> footnote) and
    say why at the top of the figure, so a figure copied into a paper carries what its results
    file says: a subset, a smoke sample, untrained weights, frames made otherwise... Each note
    is cut to ``width`` characters (default: what fits the figure's width)."""
    if not notes:
        return fig
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    for legend in legends:
        for text in legend.get_texts():
            label = text.get_text()
            if any(label == m or label.startswith(f"{m} (m") for m in notes):
                text.set_text(f"{label} *")
    width = width or int(15 * fig.get_figwidth())  # characters of x-small text that fit
    lines = []
    for model, note in notes.items():
        note = note.replace("Not the reference protocol: ", "")
        line = f"* {model}: {note}"
        lines.append(line if len(line) <= width else line[: width - 1].rstrip() + "…")
    fig.suptitle("\n".join(lines), fontsize="x-small", horizontalalignment="left", x=0.01)
    return fig


def _results_file(entry: str | os.PathLike, name: str) -> Path | None:
    """``entry``'s results of the benchmark ``name`` names: a folder's ``name``, or the file
    itself when its ``dataset`` field says so (whatever the file is called)."""
    p = Path(entry)
    if p.is_dir():
        p = p / name
        return p if p.is_file() else None
    if not p.is_file():
        raise FileNotFoundError(f"--compare: no results file or directory {p}")
    is_p = reporting.load_report(p).get("dataset") == "imagenet_p"  # ImageNet-C: "imagenet"
    return p if is_p == (name == "imagenet_p.json") else None


#: The figures :func:`make_figures` draws per dataset (``flip_prob_d<k>`` per difficulty): those
#: left from an earlier run that this one cannot draw are removed, so none contradicts the JSON.
_FIGURE_STEMS = {"imagenet_c": ("ce_bars", "error_vs_severity"), "imagenet_p": ("flip_prob_d",)}


def make_figures(
    results_dir: str | os.PathLike,
    compare: Iterable[str | os.PathLike] = (),
    baseline: metrics.Baseline | None = None,
    datasets: Iterable[str] = ("imagenet_c", "imagenet_p"),
) -> list[Path]:
    """Draw every figure the results in ``results_dir`` allow into ``results_dir/figures``.

    ``compare``: other results directories or ``imagenet_c.json`` / ``imagenet_p.json``
    files whose models are drawn next to this one. ``baseline``: the CE bars' normaliser;
    None (default) takes the one ``imagenet_c.json`` was computed with, so the bars never
    contradict its ``ce_percent`` (whichever run redraws them). ``datasets``: which results to
    draw; the figures of the others are left as they are (an ImageNet-P run does not redraw,
    without their ``--compare`` models, the ImageNet-C figures of an earlier run). Returns the
    written paths.
    """
    datasets = set(datasets)
    unknown = datasets - {"imagenet_c", "imagenet_p"}
    if unknown:
        raise ValueError(f"datasets: expected imagenet_c and/or imagenet_p, got {sorted(unknown)}")
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory not found: {root}")
    compare = list(compare)
    out = root / "figures"
    written: list[Path] = []
    for name in ("imagenet_c.json", "imagenet_p.json"):
        own = root / name
        if name.removesuffix(".json") not in datasets or not own.is_file():
            continue
        others = [f for f in (_results_file(e, name) for e in compare) if f is not None]
        labelled = reporting.model_labels([own, *others])  # each file read once
        df = reporting.labelled_frame(labelled)
        notes = _departures(labelled)
        if name == "imagenet_c.json":
            own_report = labelled[0][1]  # model_labels keeps the order, own first
            base = reporting.report_baseline(own_report) if baseline is None else baseline
            if not reporting.ce_frame(df, base).empty:
                fig = mark_departures(ce_bar_figure(df, base), notes)
                written += save_figure(fig, out / "ce_bars")
            fig = mark_departures(error_severity_figure(df), notes)
            written += save_figure(fig, out / "error_vs_severity")
        else:
            for d in sorted(set(df["difficulty"])):
                fig = mark_departures(flip_probability_figure(df, int(d)), notes)
                written += save_figure(fig, out / f"flip_prob_d{d}")
    mine = tuple(stem for d in datasets for stem in _FIGURE_STEMS[d])
    if out.is_dir():
        for old in out.iterdir():
            stale = old.suffix in {".png", ".pdf"} and old not in written
            if stale and old.stem.startswith(mine):
                old.unlink()
    return written
