"""``create_model`` / ``list_models`` / ``get_preprocessing`` over three namespaces.

* registered names (``alexnet``, ``efficientnet_lite0``, the assembled family, ...);
* ``torchvision:<name>`` -- any torchvision classification model, optionally with torchvision's
  named weights (``"IMAGENET1K_V1"``, ``"DEFAULT"``) read from the torch hub cache;
* ``timm:<name>`` -- any timm model when timm is installed (built without weights).

``weights`` is either a file (``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin``, loaded safely
and strictly by :mod:`robustbench_assemble.models.weights`) or a torchvision weights name.
Every model comes back in eval mode with ``model.preprocessing`` (its evaluation
:class:`Preprocessing`), ``model.model_name`` and ``model.weights_source`` set.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from . import external
from .external import TIMM_PREFIX, TORCHVISION_PREFIX
from .registry import ModelEntry, Preprocessing, registered
from .weights import is_weights_file, load_weights


class UnknownModelError(ValueError):
    """A model name that no namespace knows; the message lists close matches."""


def _all_names() -> dict[str, str]:
    """Every known name -> the part compared for suggestions (the name without its prefix)."""
    names = {n: n for n in registered()}
    names.update({TORCHVISION_PREFIX + n: n for n in external.torchvision_names()})
    names.update({TIMM_PREFIX + n: n for n in external.timm_names()})
    return names


def _unknown(name: str, namespace: str = "") -> UnknownModelError:
    names = _all_names()
    if namespace:
        names = {k: v for k, v in names.items() if k.startswith(namespace)}
    base = name[len(namespace) :] if namespace else name.split(":", 1)[-1]
    keys = difflib.get_close_matches(base, sorted(set(names.values())), n=5, cutoff=0.6)
    matches = [k for key in keys for k in sorted(names) if names[k] == key][:8]
    hint = f"; did you mean: {', '.join(matches)}" if matches else ""
    if name.startswith(TIMM_PREFIX) and not external.timm_names():
        hint += " (timm is not installed: pip install 'robustbench-assemble[timm]')"
    return UnknownModelError(
        f"unknown model {name!r}{hint}. Known: list_models() for registered names, "
        f"'{TORCHVISION_PREFIX}<name>' for torchvision classifiers, '{TIMM_PREFIX}<name>' for timm"
    )


def list_models(pattern: str | None = None, *, include_external: bool = False) -> list[str]:
    """Sorted model names matching the shell-style ``pattern`` (all when None).

    Registered names only, unless ``include_external`` is set or the pattern starts with
    ``torchvision:`` / ``timm:`` -- then that namespace's names are listed too.
    """
    names = set(registered())
    if include_external or (pattern or "").startswith(TORCHVISION_PREFIX):
        names.update(TORCHVISION_PREFIX + n for n in external.torchvision_names())
    if include_external or (pattern or "").startswith(TIMM_PREFIX):
        names.update(TIMM_PREFIX + n for n in external.timm_names())
    return sorted(n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern))


def _entry(name: str) -> ModelEntry:
    entry = registered().get(name)
    if entry is None:
        raise _unknown(name)
    return entry


def _torchvision_base(name: str) -> str:
    base = name[len(TORCHVISION_PREFIX) :]
    if base not in external.torchvision_names():
        raise _unknown(name, TORCHVISION_PREFIX)
    return base


def _timm_base(name: str) -> str:
    base = name[len(TIMM_PREFIX) :]
    timm = external._import_timm()
    if not timm.is_model(base.split(".", 1)[0]):
        raise _unknown(name, TIMM_PREFIX)
    return base


def _no_named_weights(name: str, weights: str) -> ValueError:
    return ValueError(
        f"{name}: weights={weights!r} is neither an existing file nor a weights name this model "
        "knows; pass a .safetensors / .pt / .pth / .bin file (named torchvision weights work for "
        "'torchvision:<name>' models and for models registered with a torchvision_name)"
    )


def get_preprocessing(name: str, weights: str | os.PathLike | None = None) -> Preprocessing:
    """The evaluation :class:`Preprocessing` of ``name`` (with ``weights``), without building
    the model where possible. Named torchvision weights bring their own recipe; a weights file
    keeps the model's default one, except a torchvision architecture's file under its hub name
    (:func:`external.torchvision_file_preprocessing`)."""
    if isinstance(weights, Mapping):
        weights = None  # a state dict in memory: the model's default recipe
    named = weights is not None and not is_weights_file(weights)
    if name.startswith(TORCHVISION_PREFIX):
        base = _torchvision_base(name)
        if named:
            entry = external.torchvision_weights(base, str(weights))
            return external.preprocessing_from_torchvision(entry)
        if weights is not None:
            return external.torchvision_file_preprocessing(base, weights)
        return external.torchvision_default_preprocessing(base)
    if name.startswith(TIMM_PREFIX):
        return external.timm_preprocessing(_timm_base(name))
    entry = _entry(name)
    if named and not entry.torchvision_name:
        raise _no_named_weights(name, str(weights))
    if named:
        tv_weights = external.torchvision_weights(entry.torchvision_name, str(weights))
        return external.preprocessing_from_torchvision(tv_weights)
    if weights is not None:
        return _file_preprocessing(entry, weights)
    return entry.preprocessing


def _file_preprocessing(entry: ModelEntry, path: str | os.PathLike) -> Preprocessing:
    """A registered model's recipe for a weights file: torchvision's for that file when the
    model is a torchvision architecture evaluated with torchvision's default recipe."""
    tv = entry.torchvision_name
    if tv and entry.preprocessing == external.torchvision_default_preprocessing(tv):
        return external.torchvision_file_preprocessing(tv, path)
    return entry.preprocessing


def create_model(
    name: str,
    weights: str | os.PathLike | Mapping[str, Any] | None = None,
    num_classes: int = 1000,
    *,
    strict: bool = True,
    preprocessing: Preprocessing | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build model ``name`` in eval mode, load ``weights`` and attach its preprocessing.

    ``weights``: None (the model's own: packaged weights for ``efficientnet_lite0``, random
    initialisation otherwise), a weights file (strict unless ``strict=False``; a torchvision
    architecture's file under its hub name gets that entry's recipe), a state dict already in
    memory, or a torchvision weights name (``"IMAGENET1K_V1"``, ``"DEFAULT"``) for
    ``torchvision:`` models and registered models with a ``torchvision_name`` -- read from the
    torch hub cache, never downloaded. ``preprocessing`` overrides the model's evaluation
    preprocessing (then report it). ``kwargs`` go to the builder.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(weights, Mapping):  # a state dict in memory: built bare, then loaded
        entry = registered().get(name)
        if entry is not None and entry.pretrained is not None:
            kwargs = {"pretrained": False, **kwargs}
        model = create_model(name, None, num_classes, preprocessing=preprocessing, **kwargs)
        load_weights(model, weights, strict=strict)
        model.weights_source = "state dict (in memory)"
        return model
    if not isinstance(weights, (str, os.PathLike, type(None))):
        raise ValueError(
            f"{name}: weights must be a file path, a torchvision weights name, a state dict or "
            f"None, got {type(weights).__name__}"
        )
    weight_file = weights if weights is not None and is_weights_file(weights) else None
    if weight_file is not None and not os.path.isfile(weight_file):
        raise FileNotFoundError(f"weights file not found: {weight_file}")
    named = None if weights is None or weight_file is not None else str(weights)

    if name.startswith(TORCHVISION_PREFIX):
        base = _torchvision_base(name)
        model, pre = external.build_torchvision(base, named, num_classes, **kwargs)
    elif name.startswith(TIMM_PREFIX):
        base = _timm_base(name)
        if named is not None:
            raise _no_named_weights(name, named)
        model, pre = external.build_timm_with_preprocessing(base, num_classes, **kwargs)
    else:
        entry = _entry(name)
        if named is not None and not entry.torchvision_name:
            raise _no_named_weights(name, named)
        if entry.pretrained is not None and weights is not None:
            kwargs = {"pretrained": False, **kwargs}
        model = entry.builder(num_classes=num_classes, **kwargs)
        pre = entry.preprocessing
        if named is not None:
            pre = external.load_torchvision_weights_into(
                model, entry.torchvision_name, named, strict=strict
            )
    if weight_file is not None:
        load_weights(model, weight_file, strict=strict)
        if preprocessing is None and not name.startswith(TIMM_PREFIX):
            pre = get_preprocessing(name, weight_file)  # a hub-named torchvision file: its recipe

    model.eval()
    model.preprocessing = preprocessing or pre
    model.model_name = name
    model.weights_source = _weights_source(name, weights, named)
    return model


def _weights_source(name: str, weights: str | os.PathLike | None, named: str | None) -> str | None:
    """Provenance for result files: the file, the resolved torchvision enum entry (``DEFAULT``
    changes between torchvision versions), the packaged weights, or None (random init)."""
    if named is not None:
        tv_name = (
            name[len(TORCHVISION_PREFIX) :]
            if name.startswith(TORCHVISION_PREFIX)
            else registered()[name].torchvision_name
        )
        return str(external.torchvision_weights(tv_name, named))
    if weights is not None:
        return str(weights)
    entry = registered().get(name)
    return entry.pretrained if entry is not None else None
