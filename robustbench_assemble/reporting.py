"""Results: tidy DataFrames, RobustBench leaderboard JSON with a ``details`` block, CSV.

Data flow: the evaluation harness counts correct predictions per (corruption, severity) cell
(:class:`CellCounts`) or measures FP / top-5 distance per (perturbation, difficulty)
(:class:`SequenceStats`), then calls

- :func:`build_imagenet_c_report` / :func:`build_imagenet_p_report` -> a JSON-ready dict,
- :func:`write_report_json` (atomic) -> ``results/<model>/imagenet_c.json`` / ``imagenet_p.json``,
- :func:`cells_to_frame` + :func:`write_unaggregated_csv` -> ``unaggregated_results.csv``.

``imagenet_c.json`` starts with RobustBench's leaderboard entry fields (``ModelInfo`` in
RobustBench ``robustbench/utils.py``; ``model_info/imagenet/corruptions/*.json``). Percentages
there are strings with exactly two decimals ("42.00"; RobustBench's ``update_json`` writes
``str(round(100 * x, 2))``, i.e. "42.0": the same number).
``corruptions_acc`` is the mean top-1 accuracy over the evaluated cells of the 15 common
corruptions (RobustBench's set; the 4 validation corruptions are kept out so the number stays
comparable) and ``corruptions_mce`` is set only when all 15 x 5 cells were evaluated. The
``details`` block holds everything else: counts, per-cell errors (fractions), CE / relative CE
per corruption and the m* aggregates (percent, keys ending in ``_percent``), the baseline,
the exact configuration, package versions and the data fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import metrics
from .atomic import atomic_write_text
from .corruptions.params import COMMON, CORRUPTIONS, SEVERITIES, check_name, check_severity
from .perturbation_names import P_TEST, PERTURBATIONS, check_perturbation

SCHEMA_C = "robustbench_assemble.imagenet_c/1"
SCHEMA_P = "robustbench_assemble.imagenet_p/1"

#: RobustBench's leaderboard entry fields, in the order of its ``ModelInfo`` dataclass.
ROBUSTBENCH_FIELDS: tuple[str, ...] = (
    "link",
    "name",
    "authors",
    "additional_data",
    "number_forward_passes",
    "dataset",
    "venue",
    "architecture",
    "eps",
    "clean_acc",
    "reported",
    "corruptions_acc",
    "corruptions_acc_3d",
    "corruptions_mce",
    "corruptions_mce_3d",
    "footnote",
)
#: Fields a caller may set through ``model_info`` (the rest are computed).
MODEL_INFO_FIELDS: tuple[str, ...] = (
    "link",
    "name",
    "authors",
    "additional_data",
    "number_forward_passes",
    "venue",
    "architecture",
    "reported",
    "footnote",
)
_P_SUMMARY_FIELDS: tuple[str, ...] = ("mfr", "mt5d")

#: Columns of the tidy ImageNet-C frame (one row per model x corruption x severity; clean rows
#: have corruption "clean" and severity 0).
TIDY_C_COLUMNS: tuple[str, ...] = (
    "model",
    "corruption",
    "severity",
    "n",
    "top1_correct",
    "top5_correct",
    "top1_error",
    "top5_error",
)
#: Columns of the tidy ImageNet-P frame (one row per model x perturbation x difficulty).
TIDY_P_COLUMNS: tuple[str, ...] = (
    "model",
    "perturbation",
    "difficulty",
    "n_videos",
    "n_frames",
    "flip_probability",
    "top5_distance",
)

_PUBLISHED_C = {
    "kind": "published",
    "model": "alexnet",
    "source": "torchvision AlexNet errors, Hendrycks & Dietterich (ICLR 2019): "
    "hendrycks/robustness mCE spreadsheet / issue #10; clean error 0.43478",
}
_PUBLISHED_P = {
    "kind": "published",
    "model": "alexnet",
    "source": "AlexNet flip probabilities, difficulty 1: clovaai/assembled-cnn "
    "mce/eval_robustness.py ALEXNET_FP",
}


class CellCounts(NamedTuple):
    """Counts of one evaluated cell: images, top-1 correct, top-5 correct (None if unknown)."""

    n: int
    top1_correct: int
    top5_correct: int | None = None


class SequenceStats(NamedTuple):
    """One ImageNet-P (perturbation, difficulty) result: videos, frames per video, FP, raw
    mean top-5 distance (None if the rankings were not kept)."""

    n_videos: int
    n_frames: int
    flip_probability: float
    top5_distance: float | None = None


# ------------------------------------------------------------------------------------- helpers


def robustbench_percent(fraction: float | None) -> str | None:
    """A fraction as a percentage string with exactly 2 decimals (``"42.00"``), the contract.

    RobustBench's own files write ``str(round(100 * x, 2))`` ("42.0"); both parse to the same
    number, and the fixed format is what our users script against.
    """
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return None
    return f"{100.0 * float(fraction):.2f}"


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _counts(value: object, what: str) -> CellCounts:
    """Validate one cell's counts (a CellCounts, a tuple or a mapping with the same fields)."""
    if isinstance(value, Mapping):
        try:
            value = CellCounts(value["n"], value["top1_correct"], value.get("top5_correct"))
        except KeyError as exc:
            raise ValueError(f"{what} lacks {exc.args[0]!r} (needs n, top1_correct)") from exc
    elif isinstance(value, (tuple, list)) and 2 <= len(value) <= 3:
        value = CellCounts(*value)
    if not isinstance(value, CellCounts):
        raise ValueError(f"{what} must be CellCounts(n, top1_correct, top5_correct), got {value!r}")
    n = _int(value.n, f"{what}.n")
    top1 = _int(value.top1_correct, f"{what}.top1_correct")
    if n <= 0:
        raise ValueError(f"{what}.n must be > 0, got {n}")
    if not 0 <= top1 <= n:
        raise ValueError(f"{what}.top1_correct must be in 0..n={n}, got {top1}")
    top5 = value.top5_correct
    if top5 is not None:
        top5 = _int(top5, f"{what}.top5_correct")
        if not top1 <= top5 <= n:
            raise ValueError(f"{what}.top5_correct must be in top1_correct..n, got {top5}")
    return CellCounts(n, top1, top5)


def normalize_cell_counts(cell_counts: Mapping) -> dict[tuple[str, int], CellCounts]:
    """Accept {(corruption, severity): counts} or {corruption: {severity: counts}}; validate."""
    if not isinstance(cell_counts, Mapping):
        raise ValueError("cell_counts must be a mapping (corruption, severity) -> CellCounts")
    out: dict[tuple[str, int], CellCounts] = {}
    for key, value in cell_counts.items():
        if isinstance(key, tuple):
            if len(key) != 2:
                raise ValueError(f"cell key must be (corruption, severity), got {key!r}")
            items = [(key, value)]
        elif isinstance(value, Mapping) and "n" not in value:
            items = [((key, s), v) for s, v in value.items()]
        else:
            raise ValueError(f"cell key must be (corruption, severity), got {key!r}")
        for (name, severity), v in items:
            name = check_name(name)
            severity = check_severity(int(severity) if isinstance(severity, str) else severity)
            out[(name, severity)] = _counts(v, f"cell ({name}, {severity})")
    order = {c: i for i, c in enumerate(CORRUPTIONS)}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])))


def _error(n: int, correct: int) -> float:
    """Error as a fraction, computed from the wrong count so 930/1000 gives exactly 0.07."""
    return (n - correct) / n


def _row(model: str, corruption: str, severity: int, c: CellCounts) -> dict:
    top5_err = None if c.top5_correct is None else _error(c.n, c.top5_correct)
    return {
        "model": model,
        "corruption": corruption,
        "severity": severity,
        "n": c.n,
        "top1_correct": c.top1_correct,
        "top5_correct": c.top5_correct,
        "top1_error": _error(c.n, c.top1_correct),
        "top5_error": top5_err,
    }


def _frame(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    for col in ("top5_correct", "top5_distance"):
        if col in df:
            df[col] = df[col].astype("Float64" if col == "top5_distance" else "Int64")
    for col in ("top5_error",):
        if col in df:
            df[col] = df[col].astype(float)
    return df


def cells_to_frame(
    model_name: str, cell_counts: Mapping, clean_counts: object | None = None
) -> pd.DataFrame:
    """The tidy ImageNet-C frame (``TIDY_C_COLUMNS``) of one model, clean row first."""
    rows = []
    if clean_counts is not None:
        rows.append(_row(model_name, "clean", 0, _counts(clean_counts, "clean_counts")))
    for (c, s), counts in normalize_cell_counts(cell_counts).items():
        rows.append(_row(model_name, c, s, counts))
    return _frame(rows, TIDY_C_COLUMNS)


def _complete(errors: Mapping[str, Mapping[int, float]]) -> dict[str, tuple[float, ...]]:
    """The corruptions whose 5 severities are all present, as 5-tuples of errors."""
    return {
        c: tuple(errors[c][s] for s in SEVERITIES)
        for c in CORRUPTIONS
        if c in errors and all(s in errors[c] for s in SEVERITIES)
    }


def errors_from_frame(df: pd.DataFrame, model: str | None = None) -> dict[str, tuple[float, ...]]:
    """{corruption: 5 top-1 errors} of the corruptions with all 5 severities in a tidy frame."""
    sub = _one_model(df, model)
    table: dict[str, dict[int, float]] = {}
    for row in sub[sub["corruption"] != "clean"].itertuples(index=False):
        table.setdefault(row.corruption, {})[int(row.severity)] = float(row.top1_error)
    return _complete(table)


def clean_error_from_frame(df: pd.DataFrame, model: str | None = None) -> float | None:
    """The clean top-1 error of one model in a tidy frame, or None if it was not evaluated."""
    sub = _one_model(df, model)
    clean = sub[sub["corruption"] == "clean"]
    return None if clean.empty else float(clean["top1_error"].iloc[0])


def _one_model(df: pd.DataFrame, model: str | None) -> pd.DataFrame:
    models = list(dict.fromkeys(df["model"]))
    if model is None:
        if len(models) != 1:
            raise ValueError(f"the frame holds models {models}; say which with model=")
        return df
    if model not in models:
        raise ValueError(f"model {model!r} not in the frame (has {models})")
    return df[df["model"] == model]


def ce_frame(
    df: pd.DataFrame,
    baseline: metrics.Baseline = "alexnet",
    baseline_clean_error: float | None = None,
) -> pd.DataFrame:
    """Tidy CE table: model, corruption, ce_percent, relative_ce_percent (NaN without a clean
    error), for each model and each corruption with all 5 severities in ``df`` and the baseline.
    """
    base, base_clean = metrics.resolve_ce_baseline(baseline)
    if baseline_clean_error is not None:
        base_clean = baseline_clean_error
    rows = []
    for model in dict.fromkeys(df["model"]):
        errors = errors_from_frame(df, model)
        clean = clean_error_from_frame(df, model)
        for c, errs in errors.items():
            if c not in base:
                continue
            # a degenerate measured baseline leaves a ratio undefined (NaN, no bar), as the
            # report leaves it null; it must not stop the figures after a whole evaluation
            ce = rce = math.nan
            with contextlib.suppress(ValueError):
                ce = 100 * metrics.corruption_error(errs, base[c])
            if clean is not None and base_clean is not None:
                with contextlib.suppress(ValueError):
                    rce = 100 * metrics.relative_corruption_error(errs, clean, base[c], base_clean)
            rows.append(
                {"model": model, "corruption": c, "ce_percent": ce, "relative_ce_percent": rce}
            )
    return pd.DataFrame(rows, columns=["model", "corruption", "ce_percent", "relative_ce_percent"])


def collect_versions(packages: Iterable[str] = ()) -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers (without importing them)."""
    names = (
        "robustbench-assemble",
        "numpy",
        "scipy",
        "torch",
        "torchvision",
        "Pillow",
        "scikit-image",
        "opencv-python",
        "imagecorruptions-imaug",
        "imagenet-c",
        "av",
        "timm",
        *packages,
    )
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _model_fields(model_name: str, model_info: Mapping | None, dataset: str) -> dict[str, Any]:
    info = dict(model_info or {})
    unknown = sorted(set(info) - set(MODEL_INFO_FIELDS))
    if unknown:
        raise ValueError(
            f"model_info has unknown field(s) {unknown}; allowed: {', '.join(MODEL_INFO_FIELDS)}"
        )
    return {
        "link": info.get("link"),
        "name": info.get("name", model_name),
        "authors": info.get("authors"),
        "additional_data": info.get("additional_data", False),
        "number_forward_passes": info.get("number_forward_passes", 1),
        "dataset": dataset,
        "venue": info.get("venue"),
        "architecture": info.get("architecture"),
        "eps": None,
        "reported": info.get("reported"),
        "footnote": info.get("footnote"),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_json(value: object, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable (no NaN): {exc}") from exc


# ------------------------------------------------------------------------------------ ImageNet-C


def imagenet_c_baseline_from_report(
    path: str | os.PathLike,
) -> tuple[dict[str, tuple[float, ...]], float | None, dict]:
    """A measured baseline from an ``imagenet_c.json``: ({corruption: 5 errors} for the
    corruptions with all 5 severities, clean error or None, provenance info)."""
    report = load_report(path)
    details = report["details"]
    if details["schema"] != SCHEMA_C:
        raise ValueError(f"{os.fspath(path)} is not an ImageNet-C results file")
    table = {
        c: {int(s): cell["top1_error"] for s, cell in sev.items()}
        for c, sev in details["cells"].items()
    }
    clean = details["clean"]["top1_error"] if details.get("clean") else None
    return _complete(table), clean, _measured_info(path, details)


def _measured_info(path: str | os.PathLike, details: Mapping) -> dict:
    """Provenance of a measured baseline: its file, model, data and whether it was trained."""
    return {
        "kind": "measured",
        "path": os.fspath(path),
        "model": details["model"],
        "data_fingerprint": details.get("data_fingerprint"),
        "trained_weights": (details.get("config") or {}).get("trained_weights"),
    }


def report_baseline(report: Mapping) -> metrics.Baseline:
    """The baseline an ``imagenet_c.json`` was computed with, to recompute its CEs (figures):
    "alexnet" (the published table), the measured result's path, or the mapping it stored."""
    info = report["details"].get("baseline") or {}
    if info.get("kind") == "measured":
        return info["path"]
    if info.get("kind") == "mapping":
        return info["top1_error"]
    return "alexnet"


def baseline_notes(info: Mapping | None) -> list[str]:
    """Warnings about what a measured baseline really is: the protocol normalises by a trained
    AlexNet, so another model, or untrained weights, changes what every ratio means."""
    if not info or info.get("kind") != "measured":
        return []
    notes = []
    if str(info.get("model", "")).lower().rpartition(":")[2] != "alexnet":  # torchvision:alexnet
        notes.append(
            f"the baseline {info['path']} is a measured {info.get('model')!r} result, not "
            "AlexNet: every CE / FR / T5D ratio here is relative to that model"
        )
    if info.get("trained_weights") is False:
        notes.append(
            f"the baseline {info['path']} was measured with UNTRAINED weights (random init): "
            "ratios against it are meaningless"
        )
    return notes


def _resolve_c_baseline(baseline: metrics.Baseline, baseline_clean_error: float | None):
    if isinstance(baseline, str) and baseline.lower() == "alexnet":
        errors, clean, info = metrics.ALEXNET_ERRORS, metrics.ALEXNET_CLEAN_ERROR, _PUBLISHED_C
    elif isinstance(baseline, Mapping):
        errors, clean, info = baseline, None, {"kind": "mapping", "model": "baseline"}
    else:
        errors, clean, info = imagenet_c_baseline_from_report(baseline)
    if baseline_clean_error is not None:
        clean = metrics._fraction(baseline_clean_error, "baseline_clean_error")
    info = dict(info, clean_error=clean)
    if info["kind"] == "mapping":
        info["top1_error"] = {
            c: metrics._severity_errors(v, f"baseline[{c!r}]").tolist() for c, v in errors.items()
        }
    return errors, clean, info


def build_imagenet_c_report(
    model_name: str,
    cell_counts: Mapping,
    clean_counts: object | None,
    config: Mapping,
    versions: Mapping[str, str],
    data_fingerprint: str | None,
    baseline: metrics.Baseline = "alexnet",
    model_info: Mapping | None = None,
    baseline_clean_error: float | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """The ``imagenet_c.json`` content of one model (see the module docstring).

    ``cell_counts``: {(corruption, severity): CellCounts} (or nested {corruption: {severity:
    counts}}); ``clean_counts``: CellCounts of the clean Resize(256)+CenterCrop(224) run or
    None; ``config``: the exact evaluation settings (JSON-serialisable); ``versions``: see
    :func:`collect_versions`; ``baseline``: "alexnet" (published), a mapping, or a measured
    AlexNet's ``imagenet_c.json``; ``model_info``: RobustBench metadata (``MODEL_INFO_FIELDS``);
    ``notes``: the caller's remarks (e.g. departures from the protocol), listed first.
    """
    cells = normalize_cell_counts(cell_counts)
    if not cells:
        raise ValueError("cell_counts is empty: no (corruption, severity) was evaluated")
    clean = None if clean_counts is None else _counts(clean_counts, "clean_counts")
    _check_json(dict(config), "config")
    _check_json(dict(versions), "versions")
    base_errors, base_clean, base_info = _resolve_c_baseline(baseline, baseline_clean_error)
    notes = [str(n) for n in notes] + baseline_notes(base_info)
    if base_info["kind"] == "measured" and base_info.get("data_fingerprint") != data_fingerprint:
        notes.append(
            f"the baseline {base_info['path']} was measured on data with fingerprint "
            f"{base_info.get('data_fingerprint')!r}, this run on {data_fingerprint!r}"
        )

    table: dict[str, dict[int, float]] = {}
    for (c, s), counts in cells.items():
        table.setdefault(c, {})[s] = _error(counts.n, counts.top1_correct)
    complete = _complete(table)
    clean_error = None if clean is None else _error(clean.n, clean.top1_correct)

    ce, rce = {}, {}
    for c, errs in complete.items():
        if c not in base_errors:
            notes.append(f"no baseline errors for {c}: its CE is not reported")
            continue
        source = base_info.get("path", "the baseline")
        try:  # a degenerate measured baseline leaves that ratio undefined, not the run
            ce[c] = 100 * metrics.corruption_error(errs, base_errors[c])
        except ValueError as exc:
            notes.append(f"{c}: CE is not reported: {exc} ({source})")
        if clean_error is not None and base_clean is not None:
            try:
                rce[c] = 100 * metrics.relative_corruption_error(
                    errs, clean_error, base_errors[c], base_clean
                )
            except ValueError as exc:
                notes.append(f"{c}: relative CE is not reported: {exc} ({source})")
    partial = sorted(set(table) - set(complete), key=CORRUPTIONS.index)
    for c in partial:
        have = ", ".join(map(str, sorted(table[c])))
        notes.append(f"{c}: only severities {have} evaluated, so no CE")
    if clean_error is None:
        notes.append("no clean evaluation: clean_acc and relative CE / mCE are not reported")
    elif base_clean is None:
        notes.append("the baseline has no clean error: relative CE / mCE are not reported")

    def mean_over(names: Sequence[str], values: Mapping[str, float]) -> float | None:
        return (
            float(np.mean([values[c] for c in names])) if all(c in values for c in names) else None
        )

    mce = mean_over(COMMON, ce)
    if mce is None:
        missing = [c for c in COMMON if c not in ce]
        notes.append(
            "mCE needs a CE for each of the 15 common corruptions (all 5 severities evaluated, "
            f"a usable baseline); without one: {missing}"
        )
    # RobustBench: the plain mean of the per-cell accuracies
    common_acc = [k.top1_correct / k.n for (c, _), k in cells.items() if c in COMMON]
    all_acc = [k.top1_correct / k.n for k in cells.values()]
    n_common = len(COMMON) * len(SEVERITIES)
    if common_acc and len(common_acc) < n_common:
        notes.append(
            f"corruptions_acc is the mean over the {len(common_acc)} evaluated of the "
            f"{n_common} common (corruption, severity) cells"
        )
    sizes = sorted({counts.n for counts in cells.values()})
    if len(sizes) > 1:
        notes.append(f"cells have different numbers of images: {sizes}")

    top: dict[str, Any] = _model_fields(model_name, model_info, "imagenet")
    top.update(
        clean_acc=robustbench_percent(None if clean is None else clean.top1_correct / clean.n),
        corruptions_acc=robustbench_percent(float(np.mean(common_acc)) if common_acc else None),
        corruptions_acc_3d=None,
        corruptions_mce=None if mce is None else f"{mce:.2f}",
        corruptions_mce_3d=None,
    )
    report = {k: top[k] for k in ROBUSTBENCH_FIELDS}
    report["details"] = {
        "schema": SCHEMA_C,
        "model": model_name,
        "created_utc": _now(),
        "units": "errors and accuracies are fractions; *_percent values are percentages",
        "clean": None if clean is None else _cell_json(clean),
        "cells": {c: {str(s): _cell_json(cells[(c, s)]) for s in sorted(table[c])} for c in table},
        "ce_percent": ce,
        "relative_ce_percent": rce,
        "mce_percent": mce,
        "relative_mce_percent": mean_over(COMMON, rce),
        "mce_19_percent_nonstandard": mean_over(CORRUPTIONS, ce),
        "relative_mce_19_percent_nonstandard": mean_over(CORRUPTIONS, rce),
        "clean_error": clean_error,
        "mean_top1_error_common": None if not common_acc else 1.0 - float(np.mean(common_acc)),
        "mean_top1_error_all_evaluated": 1.0 - float(np.mean(all_acc)),
        "baseline": base_info,
        "notes": notes,
        "config": dict(config),
        "versions": dict(versions),
        "data_fingerprint": data_fingerprint,
    }
    validate_report(report)
    return report


def _cell_json(c: CellCounts) -> dict:
    return {
        "n": c.n,
        "top1_correct": c.top1_correct,
        "top5_correct": c.top5_correct,
        "top1_error": _error(c.n, c.top1_correct),
        "top5_error": None if c.top5_correct is None else _error(c.n, c.top5_correct),
    }


def report_to_frame(report: Mapping) -> pd.DataFrame:
    """The tidy frame (``TIDY_C_COLUMNS`` or ``TIDY_P_COLUMNS``) of a loaded report."""
    details = report["details"]
    model = details["model"]
    if details["schema"] == SCHEMA_P:
        rows = [
            {
                "model": model,
                "perturbation": p,
                "difficulty": int(d),
                "n_videos": cell["n_videos"],
                "n_frames": cell["n_frames"],
                "flip_probability": cell["flip_probability"],
                "top5_distance": cell["top5_distance"],
            }
            for p, diffs in details["cells"].items()
            for d, cell in diffs.items()
        ]
        return _frame(rows, TIDY_P_COLUMNS)
    rows = []
    if details.get("clean"):
        rows.append(_row(model, "clean", 0, CellCounts(**_counts_fields(details["clean"]))))
    for c, sev in details["cells"].items():
        for s, cell in sev.items():
            rows.append(_row(model, c, int(s), CellCounts(**_counts_fields(cell))))
    return _frame(rows, TIDY_C_COLUMNS)


def _counts_fields(cell: Mapping) -> dict:
    return {k: cell[k] for k in ("n", "top1_correct", "top5_correct")}


def load_frames(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Load several results files of the same benchmark into one tidy frame (``--compare``).

    A file given twice counts once. Results of the same model name (two checkpoints of one
    architecture) get the shortest trailing part of their folder that tells them apart,
    ``"resnet50 (run_a/resnet50)"``, so figures draw them as two models, not one zig-zag.
    """
    return labelled_frame(model_labels(paths))


def labelled_frame(labelled: Sequence[tuple[Path, dict, str]]) -> pd.DataFrame:
    """One tidy frame of :func:`model_labels`' reports, each model under its label."""
    frames = [report_to_frame(report) for _, report, _ in labelled]
    if not frames:
        raise ValueError("no results files given")
    kinds = {tuple(f.columns) for f in frames}
    if len(kinds) > 1:
        raise ValueError("cannot mix imagenet_c.json and imagenet_p.json files in one frame")
    for frame, (_, _, label) in zip(frames, labelled):
        frame["model"] = label
    return pd.concat(frames, ignore_index=True)


def model_labels(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, dict, str]]:
    """(file, report, label) of each distinct results file: the label is the model's name, or
    ``"name (folder)"`` when several files hold the same model name (see :func:`load_frames`)."""
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    reports = [load_report(p) for p in unique]
    names = [str(r.get("details", {}).get("model", "")) for r in reports]
    labels = list(names)
    for name in {n for n in names if names.count(n) > 1}:
        group = [i for i, n in enumerate(names) if n == name]
        for i, folder in zip(group, _distinct_folders([unique[i] for i in group])):
            labels[i] = f"{name} ({folder})"
    return list(zip(unique, reports, labels))


def _distinct_folders(files: Sequence[Path]) -> list[str]:
    """The shortest trailing parts of the files' folders that differ between them."""
    parts = [f.parent.parts for f in files]
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(f) for f in files]  # same folder: the file names differ


# ------------------------------------------------------------------------------------ ImageNet-P


def _stats(value: object, what: str) -> SequenceStats:
    if isinstance(value, Mapping):
        try:
            value = SequenceStats(
                value["n_videos"],
                value["n_frames"],
                value["flip_probability"],
                value.get("top5_distance"),
            )
        except KeyError as exc:
            raise ValueError(f"{what} lacks {exc.args[0]!r}") from exc
    elif isinstance(value, (tuple, list)) and 3 <= len(value) <= 4:
        value = SequenceStats(*value)
    if not isinstance(value, SequenceStats):
        raise ValueError(
            f"{what} must be SequenceStats(n_videos, n_frames, fp, t5d), got {value!r}"
        )
    n_videos = _int(value.n_videos, f"{what}.n_videos")
    n_frames = _int(value.n_frames, f"{what}.n_frames")
    if n_videos <= 0 or n_frames < 2:
        raise ValueError(f"{what}: need n_videos > 0 and n_frames >= 2, got {n_videos}, {n_frames}")
    fp = metrics._fraction(value.flip_probability, f"{what}.flip_probability")
    t5d = value.top5_distance
    if t5d is not None:
        t5d = float(t5d)
        if not (math.isfinite(t5d) and 0.0 <= t5d <= 15.0):
            raise ValueError(f"{what}.top5_distance must be in [0, 15], got {t5d!r}")
    return SequenceStats(n_videos, n_frames, fp, t5d)


def sequence_stats(
    predictions: np.ndarray, rankings: np.ndarray | None, perturbation: str, difficulty: int = 1
) -> SequenceStats:
    """FP and top-5 distance of one (perturbation, difficulty) from per-frame outputs:
    ``predictions`` (videos, frames) top-1 classes, ``rankings`` (videos, frames, K>=5) or None.
    """
    preds = np.asarray(predictions)
    fp = metrics.flip_probability(preds, perturbation, difficulty)
    t5d = None if rankings is None else metrics.top5_distance(rankings, perturbation, difficulty)
    return SequenceStats(int(preds.shape[0]), int(preds.shape[1]), fp, t5d)


def imagenet_p_baseline_from_report(
    path: str | os.PathLike, difficulty: int = 1
) -> tuple[dict[str, float], dict[str, float] | None, dict]:
    """A measured baseline from an ``imagenet_p.json`` at ``difficulty``: ({perturbation: FP},
    {perturbation: raw top-5 distance} or None when none was measured, provenance info)."""
    report = load_report(path)
    details = report["details"]
    if details["schema"] != SCHEMA_P:
        raise ValueError(f"{os.fspath(path)} is not an ImageNet-P results file")
    key = str(difficulty)
    cells = {p: d[key] for p, d in details["cells"].items() if key in d}
    fps = {p: c["flip_probability"] for p, c in cells.items()}
    t5ds = {p: c["top5_distance"] for p, c in cells.items() if c["top5_distance"] is not None}
    return fps, (t5ds or None), _measured_info(path, details)


def _p_baseline_values(baseline: object, key: str, difficulty: int):
    """(values or None, info, reason) of an ImageNet-P baseline at one difficulty."""
    if baseline is None:
        what = "T5D" if key == "top5_distance" else "FR"
        return (
            None,
            None,
            f"no {what} baseline given, so no {what} ratios: " + metrics.BASELINE_HOWTO,
        )
    if isinstance(baseline, str) and baseline.lower() == "alexnet":
        if key == "top5_distance":
            return None, None, "no published AlexNet top-5 distances: " + metrics.BASELINE_HOWTO
        if difficulty != 1:
            return None, None, "the published AlexNet FPs are for difficulty 1 only"
        return metrics.ALEXNET_FLIP_PROBABILITIES, _PUBLISHED_P, None
    if isinstance(baseline, Mapping):
        # {perturbation: value} is a difficulty-1 baseline; {difficulty: {perturbation: value}}
        # gives one per difficulty.
        nested = all(isinstance(v, Mapping) for v in baseline.values())
        values = baseline.get(difficulty) if nested else (baseline if difficulty == 1 else None)
        if not values:
            return None, None, f"the {key} baseline mapping has no difficulty {difficulty}"
        return values, {"kind": "mapping", "values": dict(values)}, None
    fps, t5ds, info = imagenet_p_baseline_from_report(baseline, difficulty)
    values = fps if key == "flip_probability" else t5ds
    if not values:
        return None, info, f"{info['path']} has no {key} at difficulty {difficulty}"
    return values, info, None


def build_imagenet_p_report(
    model_name: str,
    sequence_results: Mapping,
    config: Mapping,
    versions: Mapping[str, str],
    data_fingerprint: str | None,
    fp_baseline: object = "alexnet",
    t5d_baseline: object = None,
    model_info: Mapping | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """The ``imagenet_p.json`` content of one model.

    ``sequence_results``: {(perturbation, difficulty): SequenceStats}. ``fp_baseline``:
    "alexnet" (the published difficulty-1 FPs), a mapping perturbation -> FP, or a measured
    AlexNet's ``imagenet_p.json`` (all difficulties it holds). ``t5d_baseline``: None, a
    mapping perturbation -> raw top-5 distance, or that file (there are no published AlexNet
    top-5 distances: without one mT5D is null and ``notes`` says why). mFR / mT5D (top-level
    ``mfr`` / ``mt5d``) are at difficulty 1 over the 10 test perturbations; other difficulties
    are in ``details`` when their baseline exists. ``notes``: the caller's remarks, first.
    """
    if not isinstance(sequence_results, Mapping) or not sequence_results:
        raise ValueError("sequence_results must be a non-empty {(perturbation, difficulty): ...}")
    cells: dict[tuple[str, int], SequenceStats] = {}
    for key, value in sequence_results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(
                f"sequence_results key must be (perturbation, difficulty), got {key!r}"
            )
        p, d = check_perturbation(key[0]), _int(key[1], f"difficulty of {key[0]}")
        if d < 1:
            raise ValueError(f"difficulty of {p} must be >= 1, got {d}")
        cells[(p, d)] = _stats(value, f"result ({p}, {d})")
    _check_json(dict(config), "config")
    _check_json(dict(versions), "versions")

    notes = [str(n) for n in notes]
    out_cells: dict[str, dict[str, dict]] = {}
    by_difficulty: dict[int, dict[str, dict[str, float]]] = {}
    baselines: dict[str, dict] = {"flip_probability": {}, "top5_distance": {}}
    for d in sorted({d for _, d in cells}):
        fp_base, fp_info, fp_reason = _p_baseline_values(fp_baseline, "flip_probability", d)
        t5_base, t5_info, t5_reason = _p_baseline_values(t5d_baseline, "top5_distance", d)
        baselines["flip_probability"][str(d)] = fp_info
        baselines["top5_distance"][str(d)] = t5_info
        for reason, info in ((fp_reason, fp_info), (t5_reason, t5_info)):
            notes += baseline_notes(info)
            if reason:
                notes.append(f"difficulty {d}: {reason}")
            if (
                info
                and info.get("kind") == "measured"
                and info.get("data_fingerprint") != (data_fingerprint)
            ):
                notes.append(
                    f"difficulty {d}: baseline {info['path']} has data fingerprint "
                    f"{info.get('data_fingerprint')!r}, this run {data_fingerprint!r}"
                )
        fr, t5r = {}, {}
        for p in PERTURBATIONS:
            if (p, d) not in cells:
                continue
            st = cells[(p, d)]
            source = (fp_info or {}).get("path", "the baseline")
            if fp_base is not None and p in fp_base:
                try:  # a baseline FP of 0 leaves this FR undefined, not the run
                    fr[p] = 100 * metrics.flip_rates({p: st.flip_probability}, {p: fp_base[p]})[p]
                except ValueError as exc:
                    notes.append(f"difficulty {d}: {p}: FR is not reported: {exc} ({source})")
            if t5_base is not None and p in t5_base and st.top5_distance is not None:
                if t5_base[p] > 0:
                    t5r[p] = 100 * st.top5_distance / float(t5_base[p])
                else:
                    notes.append(
                        f"difficulty {d}: {p}: the baseline's top-5 distance is 0, so its T5D "
                        f"ratio is not reported ({(t5_info or {}).get('path', 'the baseline')})"
                    )
            out_cells.setdefault(p, {})[str(d)] = {
                "n_videos": st.n_videos,
                "n_frames": st.n_frames,
                "flip_probability": st.flip_probability,
                "top5_distance": st.top5_distance,
                "flip_rate_percent": fr.get(p),
                "t5d_ratio_percent": t5r.get(p),
            }
        by_difficulty[d] = {"fr": fr, "t5r": t5r}

    def mean_test(values: Mapping[str, float]) -> float | None:
        return (
            float(np.mean([values[p] for p in P_TEST]))
            if all(p in values for p in P_TEST)
            else None
        )

    mfr_by = {str(d): mean_test(v["fr"]) for d, v in by_difficulty.items()}
    mt5d_by = {str(d): mean_test(v["t5r"]) for d, v in by_difficulty.items()}
    mfr, mt5d = mfr_by.get("1"), mt5d_by.get("1")
    if mfr is None:
        notes.append("mFR needs the 10 test perturbations at difficulty 1 with a baseline FP")
    if mt5d is None:
        notes.append(
            "mT5D needs the 10 test perturbations' top-5 distances at difficulty 1 and a "
            "measured AlexNet baseline"
        )

    report: dict[str, Any] = {
        k: v for k, v in _model_fields(model_name, model_info, "imagenet_p").items() if k != "eps"
    }
    report.update(
        mfr=None if mfr is None else f"{mfr:.2f}",
        mt5d=None if mt5d is None else f"{mt5d:.2f}",
    )
    report["details"] = {
        "schema": SCHEMA_P,
        "model": model_name,
        "created_utc": _now(),
        "units": "flip probabilities are fractions, top5_distance is the raw mean distance "
        "(0..15); *_percent values are percentages",
        "cells": out_cells,
        "mfr_percent": mfr,
        "mt5d_percent": mt5d,
        "mfr_percent_by_difficulty": mfr_by,
        "mt5d_percent_by_difficulty": mt5d_by,
        "baseline": baselines,
        "notes": list(dict.fromkeys(notes)),  # one file can be both baselines, at each difficulty
        "config": dict(config),
        "versions": dict(versions),
        "data_fingerprint": data_fingerprint,
    }
    validate_report(report)
    return report


# ---------------------------------------------------------------------------- JSON: I/O, schema


def _atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` written atomically with the usual permissions (``atomic.atomic_write_text``:
    0o666 minus the umask, not ``tempfile.mkstemp``'s owner-only 0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def write_report_json(path: str | os.PathLike, report: Mapping) -> Path:
    """Validate ``report`` and write it atomically (temp file + ``os.replace``)."""
    validate_report(report)
    return _atomic_write_text(path, json.dumps(report, indent=2, allow_nan=False) + "\n")


def write_imagenet_c_json(path: str | os.PathLike, report: Mapping) -> Path:
    """Write an ImageNet-C report (see :func:`write_report_json`)."""
    if report.get("details", {}).get("schema") != SCHEMA_C:
        raise ValueError("write_imagenet_c_json needs a report from build_imagenet_c_report")
    return write_report_json(path, report)


def write_imagenet_p_json(path: str | os.PathLike, report: Mapping) -> Path:
    """Write an ImageNet-P report (see :func:`write_report_json`)."""
    if report.get("details", {}).get("schema") != SCHEMA_P:
        raise ValueError("write_imagenet_p_json needs a report from build_imagenet_p_report")
    return write_report_json(path, report)


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate an ``imagenet_c.json`` / ``imagenet_p.json`` written by this module."""
    p = Path(path)
    if p.is_dir():
        raise FileNotFoundError(
            f"{p} is a directory; expected a results file such as {p / 'imagenet_c.json'}"
        )
    if not p.is_file():
        raise FileNotFoundError(f"results file not found: {p}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from exc
    try:
        validate_report(obj)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc
    return obj


def _fail(where: str, problem: str) -> None:
    raise ValueError(f"invalid report at {where}: {problem}")


def _expect(obj: Mapping, key: str, types: tuple, where: str, nullable: bool = False) -> Any:
    if key not in obj:
        _fail(f"{where}.{key}", "missing")
    value = obj[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in types:
        _fail(f"{where}.{key}", f"expected {'/'.join(t.__name__ for t in types)}, got {value!r}")
    if not isinstance(value, types):
        names = "/".join(t.__name__ for t in types) + (" or null" if nullable else "")
        _fail(f"{where}.{key}", f"expected {names}, got {value!r}")
    return value


def _percent_string(obj: Mapping, key: str, where: str, allow_empty: bool = False) -> None:
    value = _expect(obj, key, (str,), where, nullable=True)
    if value is None or (allow_empty and value == ""):
        return
    try:
        float(value)
    except ValueError:
        _fail(f"{where}.{key}", f"expected a percentage string such as '76.38', got {value!r}")


def _number(obj: Mapping, key: str, where: str, lo: float, hi: float, nullable: bool) -> None:
    value = _expect(obj, key, (int, float), where, nullable)
    if value is not None and not (math.isfinite(value) and lo <= value <= hi):
        _fail(f"{where}.{key}", f"expected a number in [{lo}, {hi}], got {value!r}")


def validate_report(obj: object) -> None:
    """Check the structure of an ImageNet-C / -P report; raise ValueError naming the field."""
    if not isinstance(obj, Mapping):
        _fail("<root>", f"expected a JSON object, got {type(obj).__name__}")
    details = _expect(obj, "details", (dict,), "<root>")
    schema = _expect(details, "schema", (str,), "details")
    if schema not in (SCHEMA_C, SCHEMA_P):
        _fail("details.schema", f"expected {SCHEMA_C!r} or {SCHEMA_P!r}, got {schema!r}")
    for key in ("link", "name", "authors", "venue", "architecture", "footnote"):
        _expect(obj, key, (str,), "<root>", nullable=True)
    _expect(obj, "additional_data", (bool,), "<root>", nullable=True)
    _expect(obj, "number_forward_passes", (int,), "<root>", nullable=True)
    _expect(obj, "dataset", (str,), "<root>")
    _percent_string(obj, "reported", "<root>", allow_empty=True)
    _expect(details, "model", (str,), "details")
    _expect(details, "cells", (dict,), "details")
    _expect(details, "config", (dict,), "details")
    _expect(details, "versions", (dict,), "details")
    _expect(details, "notes", (list,), "details")
    _expect(details, "data_fingerprint", (str,), "details", nullable=True)
    if schema == SCHEMA_C:
        _validate_c(obj, details)
    else:
        _validate_p(obj, details)


def _validate_cell(cell: object, where: str) -> None:
    if not isinstance(cell, Mapping):
        _fail(where, "expected an object with n, top1_correct, top5_correct, top1_error")
    n = _expect(cell, "n", (int,), where)
    top1 = _expect(cell, "top1_correct", (int,), where)
    top5 = _expect(cell, "top5_correct", (int,), where, nullable=True)
    if n <= 0 or not 0 <= top1 <= n or (top5 is not None and not top1 <= top5 <= n):
        _fail(where, f"inconsistent counts n={n}, top1_correct={top1}, top5_correct={top5}")
    _number(cell, "top1_error", where, 0.0, 1.0, nullable=False)
    if abs(cell["top1_error"] - _error(n, top1)) > 1e-9:
        _fail(f"{where}.top1_error", f"{cell['top1_error']} != 1 - top1_correct / n")
    _number(cell, "top5_error", where, 0.0, 1.0, nullable=True)


def _validate_c(obj: Mapping, details: Mapping) -> None:
    if obj["dataset"] != "imagenet":
        _fail("<root>.dataset", f"expected 'imagenet', got {obj['dataset']!r}")
    for key in ("clean_acc", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce"):
        _percent_string(obj, key, "<root>")
    _percent_string(obj, "corruptions_mce_3d", "<root>")
    if obj.get("eps") is not None:
        _fail("<root>.eps", f"expected null for corruptions, got {obj['eps']!r}")
    if "eps" not in obj:
        _fail("<root>.eps", "missing")
    if details.get("clean") is not None:
        _validate_cell(details["clean"], "details.clean")
    elif "clean" not in details:
        _fail("details.clean", "missing")
    for c, sev in details["cells"].items():
        if c not in CORRUPTIONS:
            _fail(f"details.cells.{c}", f"unknown corruption; expected one of {CORRUPTIONS}")
        if not isinstance(sev, Mapping) or not sev:
            _fail(f"details.cells.{c}", "expected {severity: cell}")
        for s, cell in sev.items():
            if s not in {str(x) for x in SEVERITIES}:
                _fail(f"details.cells.{c}.{s}", "severity keys must be '1'..'5'")
            _validate_cell(cell, f"details.cells.{c}.{s}")
    for key in ("ce_percent", "relative_ce_percent"):
        values = _expect(details, key, (dict,), "details")
        for c, v in values.items():
            if c not in CORRUPTIONS or isinstance(v, bool) or not isinstance(v, (int, float)):
                _fail(f"details.{key}.{c}", f"expected a corruption -> number, got {v!r}")
    for key in (
        "mce_percent",
        "relative_mce_percent",
        "mce_19_percent_nonstandard",
        "relative_mce_19_percent_nonstandard",
    ):
        _expect(details, key, (int, float), "details", nullable=True)
    if (obj["corruptions_mce"] is None) != (details["mce_percent"] is None):
        _fail("<root>.corruptions_mce", "must be null exactly when details.mce_percent is null")
    _number(details, "clean_error", "details", 0.0, 1.0, nullable=True)
    _expect(details, "baseline", (dict,), "details")


def _validate_p(obj: Mapping, details: Mapping) -> None:
    if obj["dataset"] != "imagenet_p":
        _fail("<root>.dataset", f"expected 'imagenet_p', got {obj['dataset']!r}")
    for key in _P_SUMMARY_FIELDS:
        _percent_string(obj, key, "<root>")
    for p, diffs in details["cells"].items():
        if p not in PERTURBATIONS:
            _fail(f"details.cells.{p}", f"unknown perturbation; expected one of {PERTURBATIONS}")
        if not isinstance(diffs, Mapping) or not diffs:
            _fail(f"details.cells.{p}", "expected {difficulty: cell}")
        for d, cell in diffs.items():
            where = f"details.cells.{p}.{d}"
            if not d.isdigit() or int(d) < 1:
                _fail(where, "difficulty keys must be positive integers as strings")
            if not isinstance(cell, Mapping):
                _fail(where, "expected an object")
            if _expect(cell, "n_videos", (int,), where) <= 0:
                _fail(f"{where}.n_videos", "must be > 0")
            if _expect(cell, "n_frames", (int,), where) < 2:
                _fail(f"{where}.n_frames", "must be >= 2")
            _number(cell, "flip_probability", where, 0.0, 1.0, nullable=False)
            _number(cell, "top5_distance", where, 0.0, 15.0, nullable=True)
            _number(cell, "flip_rate_percent", where, 0.0, math.inf, nullable=True)
            _number(cell, "t5d_ratio_percent", where, 0.0, math.inf, nullable=True)
    _expect(details, "mfr_percent", (int, float), "details", nullable=True)
    _expect(details, "mt5d_percent", (int, float), "details", nullable=True)
    if (obj["mfr"] is None) != (details["mfr_percent"] is None):
        _fail("<root>.mfr", "must be null exactly when details.mfr_percent is null")
    if (obj["mt5d"] is None) != (details["mt5d_percent"] is None):
        _fail("<root>.mt5d", "must be null exactly when details.mt5d_percent is null")


# ------------------------------------------------------------------------ unaggregated CSV


def unaggregated_frame(df: pd.DataFrame) -> pd.DataFrame:
    """RobustBench's wide layout: index = model, columns = (corruption, severity), values =
    top-1 accuracies (fractions). Clean rows are left out (RobustBench keeps them in the JSON).
    """
    missing = [c for c in ("model", "corruption", "severity", "top1_error") if c not in df]
    if missing:
        raise ValueError(f"the frame lacks column(s) {missing}; expected a tidy results frame")
    cells = df[df["corruption"] != "clean"]
    if cells.empty:
        raise ValueError("the frame has no corruption cells")
    keys = ["model", "corruption", "severity"]
    dup = cells[cells.duplicated(keys, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise ValueError(
            f"the frame has duplicated rows for ({first['model']}, {first['corruption']}, "
            f"{first['severity']}); one row per model x corruption x severity expected"
        )
    accuracy = 1.0 - cells.set_index(keys)["top1_error"].astype(float)
    wide = accuracy.unstack(["corruption", "severity"])
    present = set(wide.columns.tolist())
    order = [(c, int(s)) for c in CORRUPTIONS for s in SEVERITIES if (c, s) in present]
    wide = wide[order]
    wide.columns = pd.MultiIndex.from_tuples(order)
    wide = wide.reindex(list(dict.fromkeys(cells["model"])))
    wide.index.name = None
    return wide


def write_unaggregated_csv(path: str | os.PathLike, df: pd.DataFrame, merge: bool = False) -> Path:
    """Write ``unaggregated_results.csv`` in RobustBench's layout (two-row header: corruption,
    severity; model name as index; accuracies as fractions), atomically.

    ``merge=True`` keeps the other models of an existing file and replaces the rows of the
    models in ``df`` (no duplicated rows, unlike RobustBench's append).
    """
    wide = unaggregated_frame(df)
    path = Path(path)
    if merge and path.exists():
        old = read_unaggregated_csv(path)
        old = old.drop(index=[m for m in wide.index if m in old.index])
        wide = pd.concat([old, wide])
        cols = [(c, s) for c in CORRUPTIONS for s in SEVERITIES if (c, s) in set(wide.columns)]
        wide = wide[cols]
    # accuracies are k / n: 12 significant digits hold them exactly for any n < 1e6 and print
    # 0.2, not the 0.19999999999999996 of 1 - 0.8
    return _atomic_write_text(path, wide.to_csv(float_format="%.12g"))


def read_unaggregated_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read an ``unaggregated_results.csv`` (ours or RobustBench's) into the wide layout."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"unaggregated results file not found: {p}")
    wide = pd.read_csv(p, header=[0, 1], index_col=0)
    try:
        tuples = [(str(c), int(s)) for c, s in wide.columns]
    except ValueError as exc:
        raise ValueError(f"{p}: the second header row must hold severities 1..5") from exc
    for c, s in tuples:
        if c not in CORRUPTIONS or s not in SEVERITIES:
            raise ValueError(f"{p}: unknown column ({c!r}, {s}); expected corruption, 1..5")
    wide.columns = pd.MultiIndex.from_tuples(tuples)
    wide.index = wide.index.astype(str)
    values = wide.to_numpy(dtype=float)
    finite = values[~np.isnan(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{p}: accuracies must be fractions in [0, 1]")
    return wide


def errors_from_unaggregated(wide: pd.DataFrame, model: str) -> dict[str, tuple[float, ...]]:
    """{corruption: 5 top-1 errors} of one model of a wide unaggregated table (complete rows)."""
    if model not in wide.index:
        raise ValueError(f"model {model!r} not in the table (has {list(wide.index)})")
    row = wide.loc[model]
    table: dict[str, dict[int, float]] = {}
    for (c, s), acc in row.items():
        if not pd.isna(acc):
            table.setdefault(c, {})[int(s)] = 1.0 - float(acc)
    return _complete(table)
