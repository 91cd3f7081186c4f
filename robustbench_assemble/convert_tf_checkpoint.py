"""Convert a released clovaai/assembled-cnn TF1 checkpoint into safetensors for ``--weights``.

    python -m robustbench_assemble.convert_tf_checkpoint --checkpoint DIR/model.ckpt-N
        --model assemble_r50 --out assemble_r50.safetensors [--keep-background]

``--checkpoint`` is a TF checkpoint prefix (or its folder; reading it needs TensorFlow,
``pip install tensorflow-cpu``) or a ``.npz`` of its variables. Every variable is matched by
name and shape (``models.tf_checkpoint``); the background logit (index 0 of the 1001 outputs)
is dropped unless ``--keep-background``, so the file loads into the 1000-class model that
``python -m robustbench_assemble.eval --model assemble_r50 --weights FILE`` builds. The file is
written under a temporary name and renamed when complete. Exit status: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .atomic import atomic_write_bytes


def convert(
    checkpoint: str | Path, model_name: str, out: str | Path, *, keep_background: bool = False
) -> tuple[int, list[str]]:
    """Write ``out``; returns (number of tensors, unused checkpoint variables)."""
    from safetensors.torch import save

    from .models import create_model
    from .models.tf_checkpoint import convert_tf_variables, read_tf_variables

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out {out}: expected a .safetensors file name")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name")
    variables = read_tf_variables(checkpoint)  # first: a bad path fails before any model work
    model = create_model(model_name, num_classes=1001 if keep_background else 1000)
    state, unused = convert_tf_variables(variables, model, drop_background=not keep_background)
    tensors = {k: v.contiguous() for k, v in state.items()}  # every key of the model's
    metadata = {
        "source": str(checkpoint),
        "converter": f"robustbench_assemble {__version__} convert_tf_checkpoint",
        "model": model_name,
        "background_logit": "kept (1001 outputs)" if keep_background else "dropped",
        "unused_variables": str(len(unused)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, save(tensors, metadata=metadata))
    return len(tensors), unused


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustbench_assemble.convert_tf_checkpoint",
        description=__doc__.split("\n")[0],
    )
    p.add_argument(
        "--checkpoint", required=True, help="TF checkpoint prefix or folder, or a .npz dump"
    )
    p.add_argument("--model", required=True, help="assemble_r50, assemble_r152, resnet50d, ...")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument(
        "--keep-background",
        action="store_true",
        help="keep the 1001st (background, index 0) output instead of dropping it",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        n, unused = convert(
            args.checkpoint, args.model, args.out, keep_background=args.keep_background
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if unused:
        print(
            f"warning: {len(unused)} checkpoint variables were not used, e.g. "
            + ", ".join(unused[:5]),
            file=sys.stderr,
        )
    print(f"wrote {args.out}: {n} tensors of {args.model}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
