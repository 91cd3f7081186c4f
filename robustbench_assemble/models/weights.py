"""Reading weight files safely and loading them into a model with readable errors.

Only two formats are read, both without executing code:

* ``.safetensors`` -- :func:`safetensors.torch.load_file`;
* ``.pt`` / ``.pth`` / ``.bin`` -- ``torch.load(path, weights_only=True, map_location="cpu")``.
  ``weights_only`` restricts unpickling to tensors and plain containers: a pickle that would
  build any other object (and so could run arbitrary code) is refused with
  :class:`UnsafeCheckpointError`, never executed.

Wrappers accepted (explicitly, in this order, one level deep):

* a dict holding the state dict under ``"state_dict"`` (Lightning, timm train checkpoints),
  ``"model_state_dict"`` (the PyTorch tutorial habit) or ``"model"`` (DeiT / MAE / many repos);
  other keys next to it (optimizer, epoch, ...) are ignored;
* key prefixes ``"module."`` (``DataParallel`` / ``DistributedDataParallel``) and ``"_orig_mod."``
  (``torch.compile``), removed when *every* key carries them.

Anything else (EMA copies, ``"state_dict_ema"``, renamed layers) must be converted by the user:
guessing would silently load the wrong tensors.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

#: File suffixes read as weights (lower case).
SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".bin")
WEIGHT_SUFFIXES = SAFETENSORS_SUFFIXES + TORCH_SUFFIXES
#: Keys under which a checkpoint may hold the state dict, tried in this order.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
#: Prefixes stripped when every key has them.
STRIP_PREFIXES = ("module.", "_orig_mod.")
#: How many names an error message lists before "... and N more".
MAX_LISTED = 10

# torch.hub's convention: "<name>-<sha256 prefix>.<ext>" (torch.hub.HASH_REGEX).
_HASH_RE = re.compile(r"-([a-f0-9]*)\.")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hub files are named by its first digits; runs record it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hub_hash_prefix(name: str) -> str | None:
    """The sha256 prefix a torch.hub file name carries (``resnet50-11ad3fa6.pth``), if any."""
    match = _HASH_RE.search(name)
    return match.group(1) if match and match.group(1) else None


class UnsafeCheckpointError(ValueError):
    """A weights file holds pickled objects other than tensors; it was not unpickled."""


class WeightsMismatchError(ValueError):
    """A state dict does not fit the model (missing / unexpected keys, shape mismatches)."""


@dataclass
class LoadResult:
    """What :func:`load_weights` did: keys the model kept at their initial values, keys ignored."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


def _torch_reason(message: str) -> str:
    """The informative line of torch's long ``weights_only`` error message."""
    boiler = ("weights only load failed", "check the documentation", "please file an issue")
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.lower().startswith(boiler)]
    useful = [ln.removeprefix("WeightsUnpickler error:").strip() for ln in useful]
    useful = [ln for ln in useful if ln]
    return useful[-1] if useful else (lines[0] if lines else "unknown error")


def is_weights_file(value: str | os.PathLike) -> bool:
    """True when ``value`` names a weights file (a path object, a known suffix, or an existing
    file) rather than a named weight set such as ``"IMAGENET1K_V1"``."""
    if isinstance(value, os.PathLike):
        return True
    return (
        str(value).lower().endswith(WEIGHT_SUFFIXES)
        or os.sep in str(value)
        or os.path.isfile(str(value))
    )


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The raw content of a weights file, read without executing code (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    if suffix in TORCH_SUFFIXES:
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            reason = _torch_reason(str(exc))
            if "global" in reason.lower():
                raise UnsafeCheckpointError(
                    f"{path}: refused to load: the file contains pickled objects other than "
                    "tensors and plain containers, which could run arbitrary code. Only state "
                    "dicts are accepted; re-save the weights with torch.save(model.state_dict(), "
                    f"...) or as safetensors. (torch: {reason})"
                ) from exc
            raise ValueError(f"{path}: not a readable torch weights file ({reason})") from exc
        except (RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError) as exc:
            # a text or truncated file dies inside the unpickler with whatever it hit
            raise ValueError(
                f"{path}: not a readable torch weights file ({type(exc).__name__}: {exc})"
            ) from exc
    raise ValueError(
        f"{path}: unsupported weights file type {suffix!r}; expected one of {WEIGHT_SUFFIXES}"
    )


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap a checkpoint into a flat ``{name: tensor}`` dict (wrappers: module docstring)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping), got {type(obj).__name__}")
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(
            f"{source}: not a state dict: entries {_listing(bad)} are not tensors "
            f"(accepted wrappers: a dict with one of the keys {WRAPPER_KEYS})"
        )
    state = OrderedDict((str(k), v) for k, v in obj.items())
    metadata = getattr(obj, "_metadata", None)  # per-module versions, used by BatchNorm & co.
    if metadata is not None:
        state._metadata = metadata.copy()  # type: ignore[attr-defined]
    for prefix in STRIP_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            consume_prefix_in_state_dict_if_present(state, prefix)
    return state


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``read_checkpoint`` + ``extract_state_dict``: the tensors of a weights file, on the CPU."""
    return extract_state_dict(read_checkpoint(path), source=str(path))


def load_weights(
    model: nn.Module,
    weights: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
) -> LoadResult:
    """Load a weights file (or a state dict) into ``model``.

    Shape mismatches always raise :class:`WeightsMismatchError` (they cannot be loaded), before
    anything is copied. With ``strict=True`` (the default) missing or unexpected keys raise it
    too, naming them (lists truncated after ``MAX_LISTED``); the model may then hold part of the
    new weights and should be discarded. With ``strict=False`` the matching tensors are loaded
    and the result lists what was missing / unexpected.
    """
    if isinstance(weights, Mapping):
        source = "state dict"
        state = extract_state_dict(weights, source)
    else:
        source = str(weights)
        state = load_state_dict_file(weights)
    own = model.state_dict()
    shapes = [
        f"{k} (file {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        background = any(
            tuple(v.shape[:1]) == (own[k].shape[0] + 1,) == (1001,)
            for k, v in state.items()
            if k in own and k.startswith("fc.") and own[k].dim() >= 1
        )
        hint = (
            " (1001 outputs: a checkpoint that kept the TF background logit; convert it "
            "without --keep-background)"
            if background
            else ""
        )
        raise WeightsMismatchError(
            f"{source} does not fit {type(model).__name__}: {len(shapes)} shape mismatch(es): "
            f"{_listing(shapes)}{hint}"
        )
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
        raise WeightsMismatchError(
            f"{source} does not fit {type(model).__name__}: " + "; ".join(parts) + " "
            "(the evaluation CLI loads strictly; in Python, create_model(..., strict=False) "
            "loads the matching tensors only)"
        )
    return LoadResult(missing, unexpected)


def cached_hub_file(
    url: str,
    *,
    model_dir: str | os.PathLike | None = None,
    file_name: str | None = None,
    check_hash: bool = True,
) -> Path:
    """The torch hub cache file for ``url``, which must already be there: nothing is downloaded.

    Same location as :func:`torch.hub.load_state_dict_from_url` (``<hub dir>/checkpoints/<name>``,
    ``TORCH_HOME`` respected). With ``check_hash`` the file's SHA-256 must start with the hash
    in its name (torch hub's naming convention), which catches truncated or foreign files.
    """
    from urllib.parse import urlparse

    directory = Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / "checkpoints"
    name = file_name or os.path.basename(urlparse(url).path)
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights {name} are not in the torch hub cache ({path}) and this tool "
            f"never downloads. Fetch {url} on a machine with network access and put it at "
            f"{path} (or set TORCH_HOME), or pass the local file as the weights argument."
        )
    prefix = hub_hash_prefix(name)
    if check_hash and prefix:
        digest = file_sha256(path)
        if not digest.startswith(prefix):
            raise ValueError(
                f"{path}: SHA-256 {digest[:16]}... does not match the hash "
                f"{prefix!r} in its name (incomplete or different file); delete it and "
                f"fetch {url} again"
            )
    return path
