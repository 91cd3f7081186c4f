"""The released TF1 checkpoints of clovaai/assembled-cnn -> our ResNet modules.

The official Assemble-ResNet weights are TF1 checkpoints of ``nets/resnet_model.py``, whose
layers are unnamed ``tf.layers`` objects: TF numbers them per variable scope in creation order
(``conv2d``, ``conv2d_1``, ..., ``batch_normalization``, ``batch_normalization_1``, ...).
:func:`tf_variable_names` walks one of our :class:`~.assembled.ResNet` models in the TF code's
creation order and gives every parameter its TF name, so a checkpoint converts by name, with
every name and shape checked. The names were checked against the variables that clovaai's own
code creates (``tests/tf_checkpoint_oracle.py`` runs it under TensorFlow; the name lists are
``tests/data/tf_variables_*.txt``), and the converted weights give that graph's logits
(docs/MODELS.md).

Reading a checkpoint needs TensorFlow (``tf.train.load_checkpoint``); a ``.npz`` of the
variables (``{name: array}``, e.g. dumped where TensorFlow is installed) needs only numpy.
"""

from __future__ import annotations

import collections
import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .assembled import BigLittleStage, BigLittleStem, Bottleneck, ResNet
from .layers.selective_kernel import SelectiveKernel

#: TF variables of a checkpoint that are not model weights (training state).
IGNORED_SUFFIXES = ("global_step", "/Momentum", "/ExponentialMovingAverage")
_BN_VARS = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"))  # fmt: skip


@dataclass(frozen=True)
class TFVariable:
    """One TF variable and the tensor of ours it becomes (``kind``: how it is laid out)."""

    tf_name: str
    key: str
    kind: str  # "conv" (HWIO -> OIHW), "bn", "dense_kernel" ((in, out) -> (out, in)), "bias"


class _Namer:
    """TF1's naming of unnamed layers: ``<scope>/<base>`` then ``<base>_1``, ... per scope."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def __call__(self, scope: str, base: str) -> str:
        n = self.counts[(scope, base)]
        self.counts[(scope, base)] += 1
        return f"{scope}/{base}" + (f"_{n}" if n else "")


class _Walk:
    """Emits :class:`TFVariable` entries in the TF code's creation order."""

    def __init__(self, model: ResNet) -> None:
        self.model, self.name = model, _Namer()
        self.prefix = {m: name for name, m in model.named_modules()}
        self.out: list[TFVariable] = []

    def conv(self, scope: str, module: nn.Conv2d, name: str | None = None) -> None:
        layer = f"{scope}/{name}" if name else self.name(scope, "conv2d")
        self.out.append(TFVariable(f"{layer}/kernel", f"{self.prefix[module]}.weight", "conv"))

    def bn(self, scope: str, module: nn.BatchNorm2d) -> None:
        layer = self.name(scope, "batch_normalization")
        for tf_var, ours in _BN_VARS:
            self.out.append(TFVariable(f"{layer}/{tf_var}", f"{self.prefix[module]}.{ours}", "bn"))

    def layers(self, scope: str, modules: Iterator[nn.Module]) -> None:
        """Convs and BNs of a plain sequence (stems, shortcuts), in order."""
        for m in modules:
            if isinstance(m, nn.Conv2d):
                self.conv(scope, m)
            elif isinstance(m, nn.BatchNorm2d):
                self.bn(scope, m)

    def block(self, scope: str, b: Bottleneck) -> None:
        # _bottleneck_block_v1: projection shortcut + BN first, then the residual branch
        if b.downsample is not None:
            self.layers(scope, b.downsample.modules())
        self.conv(scope, b.conv1)
        self.bn(scope, b.bn1)
        if isinstance(b.conv2, SelectiveKernel):  # blocks.sk_conv2d
            sk = b.conv2
            self.conv(scope, sk.conv)
            self.bn(scope, sk.bn)
            inner = self.name(scope, "sk_block")
            self.conv(inner, sk.fc1, "sk_fc_1")
            self.bn(inner, sk.bn_fc)
            self.conv(inner, sk.fc2, "sk_fc_2")
        else:
            self.conv(scope, b.conv2)
            self.bn(scope, b.bn2)
        self.conv(scope, b.conv3)
        self.bn(scope, b.bn3)
        if b.se is not None:  # blocks.se_block
            inner = self.name(scope, "se_block")
            self.conv(inner, b.se.fc1, "seblock_dense_1")
            self.conv(inner, b.se.fc2, "seblock_dense_2")

    def group(self, scope: str, group: nn.Sequential) -> None:
        for b in group:
            self.block(scope, b)

    def run(self) -> list[TFVariable]:
        m, root = self.model, "resnet_model"
        big_little = isinstance(m.maxpool, BigLittleStem)
        # resnet_version 2 opens variable_scope(None, 'stage0') twice around the stem
        conv_scope, bn_scope = (f"{root}/stage0", f"{root}/stage0_1") if big_little else (root,) * 2
        if isinstance(m.conv1, nn.Conv2d):
            self.conv(conv_scope, m.conv1)
        else:  # ResNet-D deep stem: conv, BN, conv, BN, conv; its last BN is bn1
            self.layers(conv_scope, m.conv1.modules())
        self.bn(bn_scope, m.bn1)
        if big_little:
            stem = f"{root}/stage0/pool"
            for part in (m.maxpool.big, m.maxpool.little, m.maxpool.merge):
                self.layers(stem, part.modules())
        for i in range(1, 5):
            stage = getattr(m, f"layer{i}")
            if isinstance(stage, BigLittleStage):
                self.group(f"{root}/stage{i}/big{i}", stage.big)
                self.group(f"{root}/stage{i}/little{i}", stage.little)
                self.layers(f"{root}/stage{i}/little{i}", stage.little_e.modules())
                self.group(f"{root}/stage{i}/merge{i}", stage.merge)
            else:
                self.group(f"{root}/stage{i}" if big_little else root, stage)
        self.out.append(TFVariable(f"{root}/dense/kernel", "fc.weight", "dense_kernel"))
        self.out.append(TFVariable(f"{root}/dense/bias", "fc.bias", "bias"))
        return self.out


def tf_variable_names(model: ResNet) -> list[TFVariable]:
    """Every parameter and BN statistic of ``model`` with its name in a checkpoint of
    clovaai/assembled-cnn's ``resnet_model``, in the TF code's creation order."""
    if not isinstance(model, ResNet):
        raise ValueError(
            "TF checkpoints convert into the assembled ResNets (assemble_r50, assemble_r152, "
            f"resnet50d, ...), not a {type(model).__name__}"
        )
    return _Walk(model).run()


def read_tf_variables(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The variables of a TF checkpoint (prefix such as ``model.ckpt-600000`` or its folder;
    needs TensorFlow) or of a ``.npz`` dump ``{name: array}`` (numpy only)."""
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(
                f"--checkpoint {path}: not a readable .npz of variable arrays "
                f"({type(exc).__name__}: {exc})"
            ) from None
    # a file of the bundle (model.ckpt.index, model.ckpt.data-00000-of-00001): its prefix
    prefix = re.sub(r"\.(index|data-\d+-of-\d+)$", "", path.name)
    if prefix != path.name:
        path = path.with_name(prefix)
    if not (path.is_dir() or path.with_name(path.name + ".index").is_file()):
        raise FileNotFoundError(
            f"--checkpoint {path}: no TF checkpoint there (expected a folder with a "
            f"'checkpoint' file, or a prefix with {path.name}.index next to it)"
        )
    try:
        import tensorflow as tf
    except ImportError:
        raise ValueError(
            f"--checkpoint {path}: reading a TF checkpoint needs TensorFlow "
            "(pip install tensorflow-cpu), or pass a .npz of its variables"
        ) from None
    try:
        reader = tf.train.load_checkpoint(str(path))
    except (ValueError, tf.errors.OpError) as exc:
        raise ValueError(f"--checkpoint {path}: not a readable TF checkpoint ({exc})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _to_ours(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":
        return value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    if kind == "dense_kernel":
        return value.T
    return value


def convert_tf_variables(
    variables: Mapping[str, np.ndarray], model: ResNet, *, drop_background: bool = True
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(state dict for ``model``, names of unused checkpoint variables).

    ``drop_background``: the checkpoints have 1001 outputs, index 0 the background class; drop
    that row so the weights load into the usual 1000-class model (the same predictions as
    :func:`~.assembled.drop_background_logit` on 1001 logits). Raises ValueError naming every
    missing variable or shape mismatch.
    """
    expected = tf_variable_names(model)
    ours = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for v in expected:
        if v.tf_name not in variables:
            problems.append(f"missing {v.tf_name} (for {v.key})")
            continue
        value = _to_ours(np.asarray(variables[v.tf_name]), v.kind)
        if drop_background and v.key in ("fc.weight", "fc.bias"):
            if value.shape[0] != 1001:
                problems.append(f"{v.tf_name}: {value.shape[0]} outputs, expected 1001")
                continue
            value = value[1:]
        if tuple(value.shape) != tuple(ours[v.key].shape):
            problems.append(
                f"{v.tf_name}: shape {tuple(value.shape)} for {v.key} {tuple(ours[v.key].shape)}"
            )
            continue
        state[v.key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        if len(problems) > len(expected) // 10:
            shown += (
                f" -- the checkpoint has {len(variables)} variables for the model's "
                f"{len(expected)} tensors: is it a checkpoint of this model variant?"
            )
        raise ValueError(f"the checkpoint does not fit {type(model).__name__}: {shown}")
    for key, tensor in ours.items():  # BN step counters: not in TF
        state.setdefault(key, tensor)
    used = {v.tf_name for v in expected}
    unused = sorted(
        n for n in variables if n not in used and not any(s in n for s in IGNORED_SUFFIXES)
    )
    return state, unused
