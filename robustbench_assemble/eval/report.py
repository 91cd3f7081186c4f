"""Results of a run -> files (via :mod:`robustbench_assemble.reporting`) and a short summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..corruptions.params import COMMON
from ..reporting import baseline_notes, robustbench_percent
from .cli import EvalConfig
from .protocol import protocol_departures
from .runner import CResults

SMOKE_FOOTNOTE = (
    "SMOKE SAMPLE: 5 scikit-image photos with hand-chosen labels, corrupted on the fly; "
    "a pipeline check, not an ImageNet result"
)


def config_dict(cfg: EvalConfig, results: CResults) -> dict[str, Any]:
    """The exact settings, JSON-ready, recorded in the results file."""
    return {
        "model": cfg.model,
        "data": str(cfg.data) if cfg.data else None,
        "imagenet_c": str(cfg.imagenet_c) if cfg.imagenet_c else None,
        "corruptions": list(cfg.corruptions),
        "severities": list(cfg.severities),
        **{k: v for k, v in results.meta.items() if k != "data_fingerprint"},
    }


def departures(results: CResults, config: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(footnote, notes) of a run (:func:`~.protocol.protocol_departures` over its cells'
    sizes), the smoke sample's own footnote first."""
    sizes = [v.n for v in results.cells.values()]
    sizes += [results.clean.n] if results.clean is not None else []
    footnote, notes = protocol_departures(config, sizes, "imagenet_c")
    smoke = SMOKE_FOOTNOTE if results.meta.get("smoke_sample") else None
    # the notes repeat every departure of the footnote, the smoke sample's too
    notes = [f"{smoke}."] + notes if smoke else notes
    c = results.clean
    if c is not None and c.n >= 20 and c.top1 < 0.02 and results.meta.get("trained_weights"):
        # a trained ImageNet model does not score under 2 % on 20+ val images
        notes.append(
            f"WARNING: clean top-1 {100 * c.top1:.2f} % on {c.n} images is at chance level: "
            "untrained weights, another model's weights, or the wrong preprocessing?"
        )
    return " ".join(t for t in (smoke, footnote) if t) or None, notes


def build_report(results: CResults, cfg: EvalConfig) -> dict:
    """The ``imagenet_c.json`` content (built by :mod:`robustbench_assemble.reporting`)."""
    from .. import reporting

    counts = {
        k: reporting.CellCounts(v.n, v.correct1, v.correct5) for k, v in results.cells.items()
    }
    clean = results.clean
    config = config_dict(cfg, results)
    footnote, notes = departures(results, config)
    return reporting.build_imagenet_c_report(
        results.model,
        counts,
        None if clean is None else reporting.CellCounts(clean.n, clean.correct1, clean.correct5),
        config,
        reporting.collect_versions(),
        results.meta.get("data_fingerprint"),
        baseline=str(cfg.baseline_c) if cfg.baseline_c is not None else "alexnet",
        model_info={"footnote": footnote} if footnote else None,
        notes=notes,
    )


def write_c_outputs(
    results: CResults, cfg: EvalConfig, report: dict | None = None
) -> dict[str, Path]:
    """Write imagenet_c.json, unaggregated_results.csv and figures; return their paths."""
    from .. import reporting

    folder = cfg.out / results.model
    folder.mkdir(parents=True, exist_ok=True)
    report = report if report is not None else build_report(results, cfg)
    paths = {"results": reporting.write_imagenet_c_json(folder / "imagenet_c.json", report)}
    if results.cells:
        frame = reporting.report_to_frame(report)
        paths["csv"] = reporting.write_unaggregated_csv(folder / "unaggregated_results.csv", frame)
    if cfg.figures:
        paths.update(write_figures(cfg, folder))
    return paths


def write_figures(cfg: EvalConfig, folder: Path) -> dict[str, Path]:
    """CE bars and error-vs-severity curves (PNG + PDF) of this model and the --compare ones."""
    from .. import figures

    # CE against the JSON's baseline; the ImageNet-P figures are the ImageNet-P run's to draw
    written = figures.make_figures(folder, cfg.compare, datasets=("imagenet_c",))
    return {f"figure {p.stem}.{p.suffix[1:]}": p for p in written if p.suffix == ".png"}


def summary(results: CResults, report: dict, paths: dict[str, Path]) -> str:
    """A short table for the terminal, with the numbers of the written report."""
    d = report["details"]
    lines = [f"\n{results.model} on {results.meta.get('data')}"]
    if results.meta.get("smoke_sample"):
        lines.append("  SMOKE SAMPLE: a pipeline check on 5 photos, not an ImageNet result")
    if not results.meta.get("trained_weights"):
        lines.append("  WARNING: untrained weights (random init): chance-level numbers")
    _, notes = departures(results, d["config"])
    lines += [f"  {n}" for n in notes if not n.startswith(("UNTRAINED", "SMOKE SAMPLE"))]
    if results.clean is not None:
        c = results.clean
        lines.append(f"  clean top-1       {100 * c.top1:6.2f} %  ({c.correct1}/{c.n} images)")
    if report.get("corruptions_acc") is not None:
        n = sum(1 for c, _ in results.cells if c in COMMON)
        lines.append(
            f"  corruptions acc   {float(report['corruptions_acc']):6.2f} %  "
            f"(mean top-1 over {n} common corruption x severity cells)"
        )
    base = d.get("baseline") or {}
    measured = base.get("kind") == "measured"
    lines += [f"  WARNING: {n}" for n in baseline_notes(base)]
    if d.get("mce_percent") is not None:
        unit = f"measured {base.get('model')} = 100" if measured else "AlexNet = 100"
        lines.append(f"  mCE               {d['mce_percent']:6.2f}    (15 x 5, {unit})")
        if d.get("relative_mce_percent") is not None:
            lines.append(f"  relative mCE      {d['relative_mce_percent']:6.2f}")
    else:
        lines.append(
            "  mCE                  n/a    (needs a CE for each of the 15 common corruptions: "
            "all 5 severities and a usable baseline; see the notes)"
        )
    for name, path in paths.items():
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)


def p_summary(report: dict, path: Path) -> str:
    """The terminal table of an ImageNet-P run: FP / FR and T5D per perturbation at difficulty
    1, mFR and mT5D, and every note of the report (the baseline's warnings marked)."""
    d = report["details"]
    config = d.get("config") or {}
    lines = [f"\n{d['model']} on ImageNet-P {config.get('imagenet_p', '')}".rstrip()]
    if config.get("trained_weights") is False:
        lines.append("  WARNING: untrained weights (random init): chance-level numbers")
    warnings = {
        n
        for by_difficulty in (d.get("baseline") or {}).values()
        for info in by_difficulty.values()
        for n in baseline_notes(info)
    }
    lines += [f"  WARNING: {n}" for n in sorted(warnings)]
    lines += [
        f"  {n}" for n in d.get("notes", []) if n not in warnings and not n.startswith("UNTRAINED")
    ]
    rows = {p: c["1"] for p, c in d.get("cells", {}).items() if "1" in c}
    if rows:
        head = ("FP", 8), ("FR %", 8), ("T5D", 8), ("T5D/base %", 11)
        lines.append(f"  {'difficulty 1':18s} " + " ".join(f"{h:>{w}s}" for h, w in head))

    def fmt(value, spec: str, width: int) -> str:
        return f"{value:{width}{spec}}" if value is not None else f"{'n/a':>{width}s}"

    for name, c in rows.items():
        lines.append(
            f"  {name:18s} {fmt(c['flip_probability'], '.4f', 8)} "
            f"{fmt(c['flip_rate_percent'], '.2f', 8)} {fmt(c['top5_distance'], '.4f', 8)} "
            f"{fmt(c['t5d_ratio_percent'], '.2f', 11)}"
        )
    for key, label in (("mfr_percent", "mFR"), ("mt5d_percent", "mT5D")):
        value = d.get(key)
        text = f"{value:6.2f}" if value is not None else "   n/a    (see the notes)"
        lines.append(f"  {label:17s} {text}")
    lines.append(f"  results: {path}")
    return "\n".join(lines)


def write_clean_only(results: CResults, cfg: EvalConfig) -> tuple[Path, dict]:
    """``--corruptions none``: ``<out>/<model>/clean.json`` (counts, accuracy, settings);
    returns its path and content."""
    from ..atomic import atomic_write_json

    c = results.clean
    if c is None:
        raise ValueError("--corruptions none needs clean images: pass --data VAL_DIR")
    path = cfg.out / results.model / "clean.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = config_dict(cfg, results)
    footnote, notes = departures(results, config)
    entry = {
        "model": results.model,
        "clean": {"n": c.n, "top1_correct": c.correct1, "top5_correct": c.correct5},
        # the same units as imagenet_c.json's clean_acc (a 2-decimal percentage string);
        # the exact fractions under their own names
        "clean_acc": robustbench_percent(c.top1),
        "clean_top1": c.top1,
        "clean_top5": c.top5,
        "footnote": footnote,
        "notes": notes,
        "config": config,
        "data_fingerprint": results.meta.get("data_fingerprint"),
    }
    atomic_write_json(path, entry)
    return path, entry


def clean_summary(results: CResults, path: Path, notes: list[str]) -> str:
    """The terminal lines of a clean-only run, with the warnings among its ``notes``."""
    c = results.clean
    warnings = [n for n in notes if "WARNING" in n]
    counts = f"top-1 {100 * c.top1:6.2f} %  top-5 {100 * c.top5:6.2f} %  ({c.correct1}/{c.n})"
    return (
        f"\n{results.model} on {results.meta.get('data')}\n"
        + "".join(f"  {n}\n" for n in warnings)
        + f"  clean {counts}\n  results: {path}"
    )
