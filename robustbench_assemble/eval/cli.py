"""Command line of ``python -m robustbench_assemble.eval``: flags -> :class:`EvalConfig`.

    python -m robustbench_assemble.eval --model NAME [--weights FILE] [--data VAL_DIR]
        [--imagenet-c DIR] [--imagenet-p DIR] [--corruptions a,b|common|all]
        [--severities 1,2] [--limit N] [--batch-size N] [--workers N] [--device D]
        [--precision fp32|bf16|fp16] [--out DIR] [--source files|on-the-fly] [--seed N]
        [--on-the-fly-jpeg QUALITY|none]
        [--resize-policy P] [--clean-resize torchvision|tf1] [--decode cpu|gpu] [--compare FILE ...]
        [--baseline PATH ...] [--perturbations P] [--difficulties 1,2,3] [--list-models]
        [--no-figures] [--no-progress]

With no data flag at all it evaluates the embedded smoke sample (five scikit-image photos,
corruptions computed on the fly): a pipeline check that runs anywhere in a few minutes.
User errors (a missing folder, an unknown model, ``--severities 0``) exit with status 2 and a
one-line message; they never print a traceback.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import check_output_folder
from ..corruptions.params import resolve_names, resolve_severities
from ..images import JPEG_QUALITY
from ..models.registry import RESIZE_BACKENDS
from ..models.transforms import RESIZE_POLICIES
from ..threads import available_cores
from .loop import PRECISIONS
from .sources import DECODERS, SOURCES

EXIT_USER_ERROR = 2


@dataclass(frozen=True)
class EvalConfig:
    """Everything one evaluation run depends on (validated)."""

    model: str
    weights: Path | None = None
    data: Path | None = None
    imagenet_c: Path | None = None
    imagenet_p: Path | None = None
    perturbations: str = "present"
    difficulties: tuple[int, ...] = (1,)
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    limit: int | None = None
    batch_size: int | None = None
    workers: int | None = None
    device: str | None = None
    precision: str = "fp32"
    out: Path = Path("results")
    source: str | None = None
    seed: int = 0
    resize_policy: str | None = None
    clean_resize: str | None = None  # Preprocessing.resize_backend override (None: the model's)
    decode: str = "cpu"
    #: on-the-fly frames are saved and reloaded as JPEG at this quality in memory, as the
    #: released files were saved at q85 (None: skipped)
    on_the_fly_jpeg: int | None = JPEG_QUALITY
    compare: tuple[Path, ...] = ()
    baseline_c: Path | None = None  # measured AlexNet imagenet_c.json (None: published table)
    baseline_p: Path | None = None  # measured AlexNet imagenet_p.json (None: published FPs)
    figures: bool = True
    progress: bool = True

    @property
    def smoke(self) -> bool:
        """No data flag at all: evaluate the embedded smoke sample."""
        return self.data is None and self.imagenet_c is None and self.imagenet_p is None

    @property
    def run_c(self) -> bool:
        """ImageNet-C is evaluated unless only --imagenet-p was given."""
        return self.smoke or self.data is not None or self.imagenet_c is not None

    @property
    def resolved_source(self) -> str:
        if self.source is not None:
            return self.source
        return "files" if self.imagenet_c is not None else "on-the-fly"


class _ListModels(argparse.Action):
    """``--list-models``: print and exit (like ``--help``, so ``--model`` is not required)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from ..models import list_models
        from ..models.registry import registered

        entries = registered()
        for name in list_models():
            entry = entries.get(name)
            source = entry.pretrained if entry is not None else None
            print(
                f"{name:28s} {'pretrained: ' + source if source else 'random init: pass --weights'}"
            )
        print("also: torchvision:<name> (any torchvision classifier), timm:<name> (timm models)")
        parser.exit()


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once: argparse's ``(default: ...)`` only where the help does not
    already say it and there is a default to show (not for None, False, [] or SUPPRESS)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == []:
            return text
        if default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustbench_assemble.eval",
        description=(
            "Evaluate an ImageNet classifier on ImageNet-C (clean accuracy, corruption "
            "accuracy, mCE) and ImageNet-P (mFR, mT5D). Without data flags, runs the embedded "
            "smoke sample (5 photos; a pipeline check, not an ImageNet result)."
        ),
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        help="a registered name (see --list-models), torchvision:<name> (any torchvision "
        "classifier) or timm:<name> (any timm model, timm installed)",
    )
    p.add_argument(
        "--list-models", action=_ListModels, help="print the registered model names and exit"
    )
    p.add_argument(
        "--weights", type=Path, help="checkpoint (.pt/.pth via weights_only, or .safetensors)"
    )
    p.add_argument(
        "--data", type=Path, help="ImageNet val folder <wnid>/<file>.JPEG (clean images)"
    )
    p.add_argument("--imagenet-c", type=Path, help="ImageNet-C root (generated or released layout)")
    p.add_argument("--imagenet-p", type=Path, help="ImageNet-P root (HDF5 files or MP4 tree)")
    p.add_argument(
        "--corruptions",
        default="common",
        help="common (15), all (19), extra, a,b,... or none (clean accuracy only)",
    )
    p.add_argument(
        "--perturbations",
        default="present",
        help="ImageNet-P: present (those under --imagenet-p), test (10), all (14) or a,b,...",
    )
    p.add_argument(
        "--difficulties",
        default="1",
        help="ImageNet-P difficulties, e.g. 1,2,3 (mFR / mT5D are at 1; noise difficulties 2 "
        "and 3 are their own datasets, <name>_2 / <name>_3; others are frame strides)",
    )
    p.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities in 1..5")
    p.add_argument(
        "--limit", type=int, help="evaluate a fixed subset of N images (spread over classes)"
    )
    p.add_argument("--batch-size", type=int, help="default: 256 on CUDA, 32 on CPU")
    p.add_argument(
        "--workers", type=int, help="DataLoader workers (default: CUDA cores-4, CPU min(8, cores))"
    )
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp16 needs CUDA")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root: <out>/<model>/")
    p.add_argument(
        "--source",
        choices=SOURCES,
        help="files: the ImageNet-C JPEGs (default with --imagenet-c); on-the-fly: corrupt val "
        "images on the eval device and save/reload them as JPEG in memory (default without; "
        "random corruptions draw other noise than the files, see --on-the-fly-jpeg)",
    )
    p.add_argument(
        "--on-the-fly-jpeg",
        metavar="QUALITY|none",
        default=argparse.SUPPRESS,  # the help says the default; absent = not given
        help=f"JPEG quality of the in-memory save and reload of on-the-fly frames (default "
        f"{JPEG_QUALITY}, as the released files were saved; on the CPU deterministic "
        "corruptions then give the generator's files exactly); none skips the save (cells "
        "move by several points)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of on-the-fly corruptions and random init. The random corruptions' draws "
        "also depend on --batch-size, the device and the number of torchrun processes (one "
        "batched draw per field): all are recorded with the results, and the cell cache "
        "recomputes when one changes",
    )
    p.add_argument(
        "--resize-policy",
        choices=RESIZE_POLICIES,
        help="how 224x224 ImageNet-C frames meet a model whose input size is not 224 (default: "
        "error, i.e. refuse; with a 224 model every policy feeds the frames as they are, as the "
        "reference does): as-is = feed the 224 frames unchanged; resize = a second resize to the "
        "model's size; center-crop = crop (models under 224); native = corrupt val images at "
        "the model's own size on the fly (the assembled-cnn protocol, with --source on-the-fly)",
    )
    p.add_argument(
        "--clean-resize",
        choices=RESIZE_BACKENDS,
        help="how clean val images are resized and cropped (default: the model's): torchvision "
        "= PIL Resize + CenterCrop (torchvision/timm models); tf1 = the TF 1.x eval graph of "
        "clovaai/assembled-cnn, where the assembled family's published top-1 was measured",
    )
    p.add_argument(
        "--decode",
        default="cpu",
        choices=DECODERS,
        help="JPEG decoder of the ImageNet-C files: cpu = libjpeg-turbo on the workers "
        "(simplejpeg, PIL's pixels exactly, else PIL itself: the reference's decoder); "
        "gpu = nvjpeg on the CUDA device, batched (opt-in: its pixels are not PIL's, 30 %% of "
        "values differ, mean 0.6 levels, see docs/BENCHMARKS.md). Clean images always use PIL",
    )
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="other runs drawn next to this one in the figures: result folders "
        "(<out>/<model>) or result JSON files, whatever their names; runs of the same model "
        "name are labelled by their folders",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="measured AlexNet results replacing the published constants: imagenet_c.json "
        "and/or imagenet_p.json files, or a results folder holding them (e.g. results/alexnet); "
        "needed for mT5D, which has no published AlexNet values",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/PDF figures")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    """Parse and validate; any user error is a ValueError / FileNotFoundError naming the flag."""
    ns = build_parser().parse_args(argv)
    corruptions = () if ns.corruptions == "none" else resolve_names(ns.corruptions)
    severities = resolve_severities(ns.severities)
    if ns.limit is not None and ns.limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {ns.limit}")
    if ns.batch_size is not None and ns.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {ns.batch_size}")
    if ns.workers is not None and ns.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {ns.workers}")
    for flag, path in (
        ("--data", ns.data),
        ("--imagenet-c", ns.imagenet_c),
        ("--imagenet-p", ns.imagenet_p),
    ):
        if path is not None and not path.is_dir():
            if path.exists():
                raise NotADirectoryError(f"{flag} {path}: not a folder (expected a folder)")
            raise FileNotFoundError(f"{flag} {path}: folder does not exist")
    if ns.weights is not None and not ns.weights.is_file():
        raise FileNotFoundError(f"--weights {ns.weights}: file does not exist")
    for path in ns.compare:
        result_files("--compare", path)
    check_output_folder(ns.out)
    if ns.source == "files" and ns.imagenet_c is None:
        raise ValueError("--source files needs --imagenet-c DIR (the ImageNet-C JPEG tree)")
    if ns.source == "on-the-fly" and ns.imagenet_c is not None and ns.data is None:
        raise ValueError("--source on-the-fly corrupts val images: it needs --data VAL_DIR")
    if ns.decode == "gpu" and ns.imagenet_c is None:
        raise ValueError("--decode gpu decodes the ImageNet-C files: it needs --imagenet-c DIR")
    given = getattr(ns, "on_the_fly_jpeg", None)
    on_the_fly_jpeg = _on_the_fly_jpeg(given)
    files = ns.source == "files" or (ns.source is None and ns.imagenet_c is not None)
    if given is not None and files:
        raise ValueError(
            "--on-the-fly-jpeg applies to on-the-fly corruption; the ImageNet-C files "
            "(--imagenet-c) are already JPEGs"
        )
    p_only = ns.imagenet_p is not None and ns.data is None and ns.imagenet_c is None
    if given is not None and (p_only or not corruptions):
        raise ValueError(
            "--on-the-fly-jpeg applies to on-the-fly ImageNet-C corruption, and this run "
            "corrupts no ImageNet-C cell"
        )
    baseline_c, baseline_p = resolve_baselines(ns.baseline)
    return EvalConfig(
        model=ns.model,
        weights=ns.weights,
        data=ns.data,
        imagenet_c=ns.imagenet_c,
        imagenet_p=ns.imagenet_p,
        perturbations=ns.perturbations,
        difficulties=_difficulties(ns.difficulties),
        corruptions=corruptions,
        severities=severities,
        limit=ns.limit,
        batch_size=ns.batch_size,
        workers=ns.workers,
        device=ns.device,
        precision=ns.precision,
        out=ns.out,
        source=ns.source,
        seed=ns.seed,
        resize_policy=ns.resize_policy,
        clean_resize=ns.clean_resize,
        decode=ns.decode,
        on_the_fly_jpeg=on_the_fly_jpeg,
        compare=tuple(ns.compare),
        baseline_c=baseline_c,
        baseline_p=baseline_p,
        figures=not ns.no_figures,
        progress=not ns.no_progress,
    )


def _difficulties(spec: str) -> tuple[int, ...]:
    from ..perturbations import resolve_difficulties  # loads the kernels: not at --help

    return resolve_difficulties(spec)


def _on_the_fly_jpeg(spec: str | None) -> int | None:
    if spec is None:
        return JPEG_QUALITY
    if spec.strip().lower() == "none":
        return None
    try:
        quality = int(spec)
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise ValueError(f"--on-the-fly-jpeg {spec!r}: expected a JPEG quality in 1..100 or none")
    return quality


def result_files(flag: str, path: Path) -> list[tuple[Path, str]]:
    """(file, dataset) of the result files ``path`` names: a results folder's imagenet_c.json /
    imagenet_p.json, or one such file; anything else is an error naming ``flag``."""
    from ..reporting import load_report

    if path.is_dir():
        files = [path / n for n in ("imagenet_c.json", "imagenet_p.json") if (path / n).is_file()]
        if not files:
            raise FileNotFoundError(
                f"{flag} {path}: folder holds neither imagenet_c.json nor imagenet_p.json"
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    out = []
    for f in files:
        try:
            out.append((f, load_report(f)["dataset"]))
        except (ValueError, KeyError, OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{flag} {f}: not a result file of this tool ({exc})") from exc
    return out


def resolve_baselines(paths: list[Path]) -> tuple[Path | None, Path | None]:
    """Sort ``--baseline`` paths into (ImageNet-C result, ImageNet-P result) by their content.

    A folder contributes its ``imagenet_c.json`` / ``imagenet_p.json``; a file is classified by
    its ``dataset`` field. Two files of the same kind, or none of a usable kind, is an error.
    """
    found: dict[str, Path] = {}
    for path in paths:
        for f, dataset in result_files("--baseline", path):
            kind = "p" if dataset == "imagenet_p" else "c"
            if kind in found:
                raise ValueError(f"--baseline: both {found[kind]} and {f} are {dataset} results")
            found[kind] = f
    return found.get("c"), found.get("p")


def default_workers(device: torch.device | None = None) -> int:
    """DataLoader workers when ``--workers`` is not given.

    On CUDA, JPEG decoding feeds the GPU, but workers on every core starve the main process
    that drives it: on a 16-core H100 host, 12 workers beat 14 and 16 with PIL decoding in
    all three runs (docs/BENCHMARKS.md), so all cores but four. On the CPU the model needs
    the cores: at most 8.
    """
    cores = available_cores()
    if device is not None and device.type == "cuda":
        return max(1, cores - 4)
    return min(8, cores)
