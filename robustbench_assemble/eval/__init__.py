"""The evaluation harness: ``python -m robustbench_assemble.eval --model NAME [...]``.

Writes ``<out>/<model>/imagenet_c.json`` (RobustBench fields: ``clean_acc``,
``corruptions_acc`` = mean top-1 over the evaluated (corruption, severity) cells,
``corruptions_mce`` only when all 15 x 5 common cells were evaluated), the unaggregated CSV,
figures, and with ``--imagenet-p`` also ``imagenet_p.json``. Finished cells are cached under
``<out>/<model>/cache/`` so an interrupted run resumes where it stopped. Under ``torchrun``
the images are sharded over the processes and the counts summed.

Modules: :mod:`.cli` (flags), :mod:`.sources` (where images come from), :mod:`.smoke` (the
embedded sample), :mod:`.modelio` (model + input pipeline), :mod:`.loop` (one cell),
:mod:`.cache` (resume), :mod:`.distributed` (torchrun), :mod:`.runner` (a whole run),
:mod:`.report` (files and summary).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..atomic import OutputError
from ..images import ImageReadError

EXIT_OK = 0
EXIT_USER_ERROR = 2

#: Exceptions that mean "bad input" (exit 2, one line), not "bug" (traceback).
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    PermissionError,
    ImageReadError,
    OutputError,
)


def user_message(exc: BaseException) -> str:
    """One line for the user; errors re-raised from DataLoader workers carry a traceback
    in their message, whose last line is the original ``Type: message``."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1].strip()
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; returns the process exit status (0 ok, 2 user error)."""
    from .cli import parse_args
    from .distributed import init_distributed, shutdown

    try:
        cfg = parse_args(argv)
    except USER_ERRORS as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        ctx = init_distributed(cfg.device)
    except USER_ERRORS as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    logging.basicConfig(
        level=logging.INFO if ctx.is_main else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)
    try:
        return _run(cfg, ctx)
    except USER_ERRORS as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            "interrupted; finished cells are cached, rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        shutdown(ctx)


def _run(cfg, ctx) -> int:
    from . import report
    from .runner import run_imagenet_c

    if cfg.run_c:
        results = run_imagenet_c(cfg, ctx)
        if ctx.is_main:
            if results.cells:
                rep = report.build_report(results, cfg)
                paths = report.write_c_outputs(results, cfg, rep)
                print(report.summary(results, rep, paths))
            else:  # --corruptions none: clean accuracy only
                path, entry = report.write_clean_only(results, cfg)
                print(report.clean_summary(results, path, entry["notes"]))
    if cfg.imagenet_p is not None:
        from .runner import run_imagenet_p

        written = run_imagenet_p(cfg, ctx)
        if ctx.is_main and written:
            path, p_report = written
            print(report.p_summary(p_report, path))
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:  # for documentation tools (sphinx-argparse etc.)
    from .cli import build_parser

    return build_parser()


__all__ = ["main", "EXIT_OK", "EXIT_USER_ERROR"]
