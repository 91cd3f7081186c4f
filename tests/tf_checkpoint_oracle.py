"""TensorFlow-side oracle for the TF1-checkpoint -> PyTorch converter (run by hand, not by pytest).

Why: the official Assemble-ResNet checkpoints are TF1 checkpoints written by clovaai/assembled-cnn
(TF 1.14). To test a converter without those multi-hundred-MB files, this script builds the SAME
graph with THEIR model code (imported unchanged under TF 2.x with ``tensorflow.compat.v1``), fills
every variable (BN moving statistics included) with seeded random values, saves a real TF
checkpoint, and records the logits their inference graph gives for a fixed input. A converter that
reproduces these logits from the checkpoint maps every tensor correctly.

Needs a separate environment with TensorFlow >= 2.16 and tf-keras (NOT the project's venv)::

    /tmp/tfvenv/bin/python tests/tf_checkpoint_oracle.py --repo /path/to/assembled-cnn \
        --out /tmp/tfckpt/assemble_r50 [--variant assemble_r50|assemble_r152|resnet50_v1|...]

``--repo`` is a checkout of clovaai/assembled-cnn (only ``nets/model_helper.py``,
``nets/blocks.py`` and ``nets/resnet_model.py`` are imported). Outputs under ``--out``:

* ``ckpt/model.ckpt.*``: ``tf.train.Saver`` checkpoint of all global variables;
* ``variables.npz``: variable name (without ``:0``) -> float32 array, the values saved;
* ``variables.txt``: ``name<TAB>shape`` per variable in creation (``tf.global_variables()``) order;
* ``logits.npz``: ``input`` (N, 256, 256, 3) float32 mean-subtracted RGB, ``logits`` (N, 1001);
* ``meta.json``: constructor arguments, data format, image source, seed, counts, TF version.

Shims, all outside their code: ``TF_USE_LEGACY_KERAS=1`` (``tf.layers`` / ``tf.keras`` resolve to
tf-keras, i.e. Keras 2), ``tf.disable_v2_behavior()`` and ``sys.modules["tensorflow"]`` pointing
at ``tensorflow.compat.v1`` while their three modules are imported (restored afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# Their preprocessing (preprocessing/imagenet_preprocessing.py): RGB minus these means, no std.
CHANNEL_MEANS = (123.68, 116.78, 103.94)
IMAGE_SIZE = 256  # preprocessing_type=imagenet_224_256: evaluation at 256 x 256
NUM_CLASSES = 1001  # functions/data_config.py ImageNet.num_classes (background class 0)
# the repository's sibling ../shared (as tests/conftest.py finds it)
DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample" / "val"

# Flags of the README eval commands / nets/hparams_config.py defaults; the Model subclass of
# functions/model_fns.py turns them into resnet_model.Model arguments (replicated in build_model).
# Flag defaults (plain ResNet-50, resnet_version=1, every tweak off; zero_gamma=False,
# no_downsample=False are not flags here).
_DEFAULTS = dict(
    resnet_size=50,
    resnet_version=1,
    use_sk_block=False,
    use_se_block=False,
    use_resnet_d=False,
    anti_alias_type="",
    anti_alias_filter_size=0,
    bl_alpha=2,
    bl_beta=4,
)
# README "Assemble-ResNet50": --resnet_version=2 --resnet_size=50 --use_sk_block=True
# --use_resnet_d=False --anti_alias_type=sconv --anti_alias_filter_size=3.
_ASSEMBLE = dict(_DEFAULTS, resnet_version=2, use_sk_block=True, anti_alias_type="sconv",
                 anti_alias_filter_size=3)  # fmt: skip
VARIANTS: dict[str, dict] = {
    "assemble_r50": _ASSEMBLE,
    # README "Assemble-ResNet152": the same with --resnet_size=152 --bl_alpha=1 --bl_beta=2
    "assemble_r152": dict(_ASSEMBLE, resnet_size=152, bl_alpha=1, bl_beta=2),
    "resnet50_v1": _DEFAULTS,
    "resnet50d_v1": dict(_DEFAULTS, use_resnet_d=True),  # deep stem + avg-pool shortcut
}


def import_their_code(repo: Path):
    """Import nets.resnet_model from ``repo`` with ``tensorflow`` aliased to compat.v1."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not (repo / "nets" / "resnet_model.py").is_file():
        raise FileNotFoundError(f"--repo {repo}: expected nets/resnet_model.py inside it")
    import tensorflow as real_tf
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    if "tf_keras" not in type(tf.keras.layers.UpSampling2D((2, 2))).__module__:
        raise RuntimeError(
            "tf.keras is not tf-keras: install tf-keras and set TF_USE_LEGACY_KERAS=1"
        )
    sys.path.insert(0, str(repo))
    sys.modules["tensorflow"] = tf
    try:
        from nets import resnet_model
    finally:
        sys.modules["tensorflow"] = real_tf
        sys.path.remove(str(repo))
    return tf, resnet_model


def get_block_sizes(resnet_size: int, resnet_version: int) -> list[int]:
    """functions/model_fns.py get_block_sizes (BL-ResNet uses its own per-stage counts)."""
    if resnet_version == 2:
        return {50: [3, 4, 6, 3], 101: [4, 8, 18, 3], 152: [5, 12, 30, 3]}[resnet_size]
    return {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}[
        resnet_size
    ]


def build_model(tf, resnet_model, cfg: dict, data_format: str) -> tuple[dict, object]:
    """Construct resnet_model.Model exactly as functions/model_fns.Model.__init__ does."""
    version = cfg["resnet_version"]
    kwargs = dict(
        resnet_size=cfg["resnet_size"],
        bottleneck=cfg["resnet_size"] >= 50,
        num_classes=NUM_CLASSES,
        num_filters=64,
        kernel_size=7,
        conv_stride=2,
        first_pool_size=3,
        first_pool_stride=2,
        block_sizes=get_block_sizes(cfg["resnet_size"], version),
        block_strides=[2, 2, 1, 2] if version == 2 else [1, 2, 2, 2],  # no_downsample=False
        resnet_version=version,
        data_format=data_format,
        zero_gamma=False,
        use_se_block=cfg["use_se_block"],
        use_sk_block=cfg["use_sk_block"],
        bn_momentum=0.997,
        embedding_size=0,
        anti_alias_filter_size=cfg["anti_alias_filter_size"],
        anti_alias_type=cfg["anti_alias_type"],
        pool_type="gap",
        bl_alpha=cfg["bl_alpha"],
        bl_beta=cfg["bl_beta"],
        loss_type="softmax",
    )
    return kwargs, resnet_model.Model(dtype=tf.float32, **kwargs)


def build_eval_graph(tf, resnet_model, cfg: dict, data_format: str, batch: int):
    """The eval path of nets/run_loop_classification.resnet_model_fn (mode=EVAL)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.train.get_or_create_global_step()  # created first by resnet_model_fn
        kwargs, model = build_model(tf, resnet_model, cfg, data_format)
        images = tf.placeholder(tf.float32, [batch, IMAGE_SIZE, IMAGE_SIZE, 3], name="images")
        # keep_prob_fn is None without --use_dropblock -> keep_prob=1.0; training=False.
        logits = model(images, False, False, use_resnet_d=cfg["use_resnet_d"], keep_prob=1.0)
        logits = tf.cast(logits, tf.float32)
    return graph, kwargs, images, logits


def random_value(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Seeded values with non-trivial BN: inference BN must not be identity anywhere."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "global_step":
        return np.array(123456, dtype=np.int64)
    if leaf == "gamma":
        return rng.uniform(0.6, 1.4, shape)
    if leaf == "beta":
        return rng.normal(0.0, 0.2, shape)
    if leaf == "moving_mean":
        return rng.normal(0.0, 0.3, shape)
    if leaf == "moving_variance":
        return rng.uniform(0.5, 2.0, shape)
    if leaf == "bias":
        return rng.normal(0.0, 0.1, shape)
    if leaf == "kernel":
        fan_in = int(np.prod(shape[:-1]))  # conv HWIO / dense (in, out)
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    raise ValueError(f"unexpected variable {name!r}: no rule to initialise it")


def _source_variable(tensor) -> str:
    """Name of the variable a BN op input reads (through Identity/ReadVariableOp/Cast)."""
    op = tensor.op
    while op.type not in ("VariableV2", "VarHandleOp"):
        if op.type not in ("Identity", "ReadVariableOp", "Cast") or not op.inputs:
            raise RuntimeError(f"cannot trace {tensor.name} back to a variable (at {op.type})")
        op = op.inputs[0].op
    return op.name


def _feeds_residual_add(op) -> bool:
    """Does this BN's output reach an Add (through Identity ops): the end of a residual branch
    or a projection shortcut?"""
    todo = list(op.outputs[0].consumers())
    while todo:
        consumer = todo.pop()
        if consumer.type in ("Add", "AddV2"):
            return True
        if consumer.type == "Identity":
            todo.extend(consumer.outputs[0].consumers())
    return False


def calibrate_bn(
    tf,
    graph,
    sess,
    feed: dict,
    values: dict,
    rng: np.random.Generator,
    residual_gamma: tuple[float, float] | None = None,
) -> int:
    """Set each BN's moving stats near the statistics of its actual input, then perturb them.

    Why: with purely random moving stats the activations of a 50-layer net drift so far that the
    logits hardly depend on the image (correlation 0.99 between two photos). Calibrated in graph
    order, every BN output is roughly normalised, so the logits respond to the input and to every
    tensor; the perturbation (mean shift ~N(0, 0.2) std, variance x U(0.5, 2)) keeps BN
    non-trivial. Returns the number of BN ops calibrated.

    ``residual_gamma`` (low, high): the gammas of BNs that end in a residual add are drawn from
    U(low, high) instead. Why: in a 152-layer random net every block adds an O(1) branch, and
    rounding differences grow so fast that float32 and float64 logits differ by ~0.8 (logit std
    1.1); small branch gammas keep the net well conditioned, so the logits can be compared.
    """
    bn_ops = [op for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]
    for op in bn_ops:
        if op.get_attr("data_format") not in (b"NHWC", "NHWC"):
            raise RuntimeError(f"{op.name}: calibration assumes NHWC")
        mean_var = graph.get_operation_by_name(_source_variable(op.inputs[3]))
        var_var = graph.get_operation_by_name(_source_variable(op.inputs[4]))
        if residual_gamma is not None and _feeds_residual_add(op):
            gamma_op = graph.get_operation_by_name(_source_variable(op.inputs[1]))
            gamma = rng.uniform(*residual_gamma, op.inputs[1].shape.as_list()).astype(np.float32)
            [v for v in tf.global_variables() if v.op is gamma_op][0].load(gamma, sess)
            values[gamma_op.name] = gamma
        act = sess.run(op.inputs[0], feed).astype(np.float64)
        mean, var = act.mean(axis=(0, 1, 2)), act.var(axis=(0, 1, 2))
        std = np.sqrt(var)
        new_mean = (mean + rng.normal(0.0, 0.2, mean.shape) * std).astype(np.float32)
        new_var = (var * rng.uniform(0.5, 2.0, var.shape) + 1e-3).astype(np.float32)
        for v_op, val in ((mean_var, new_mean), (var_var, new_var)):
            variable = [v for v in tf.global_variables() if v.op is v_op][0]
            variable.load(val, sess)
            values[v_op.name] = val
    return len(bn_ops)


def load_inputs(sample_dir: Path | None, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Two fixed photos (292 short side, bilinear, centre crop 256, minus means) or noise."""
    if sample_dir is not None and sample_dir.is_dir():
        from PIL import Image

        files = sorted(sample_dir.glob("*/*.JPEG"))
        if len(files) >= 2:
            picked = [files[0], files[len(files) // 2]]
            out = []
            for f in picked:
                img = Image.open(f).convert("RGB")
                w, h = img.size
                s = 292 / min(w, h)
                nw, nh = max(292, round(w * s)), max(292, round(h * s))
                img = img.resize((nw, nh), Image.BILINEAR)
                left, top = (nw - IMAGE_SIZE) // 2, (nh - IMAGE_SIZE) // 2
                img = img.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
                out.append(np.asarray(img, dtype=np.float32) - np.float32(CHANNEL_MEANS))
            return np.stack(out).astype(np.float32), [str(f) for f in picked]
    noise = rng.uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3)) - np.array(CHANNEL_MEANS)
    return noise.astype(np.float32), ["seeded uniform noise in [0, 255) minus means"]


def atomic_save(path: Path, write) -> None:
    """Write via a temporary name, then os.replace, so a crash never leaves a half file."""
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    write(tmp)
    os.replace(tmp, path)


def variable_shapes(tf, resnet_model, cfg: dict, data_format: str) -> list[tuple[str, tuple]]:
    graph, *_ = build_eval_graph(tf, resnet_model, cfg, data_format, batch=2)
    with graph.as_default():
        return [(v.op.name, tuple(v.shape.as_list())) for v in tf.global_variables()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, required=True, help="checkout of clovaai/assembled-cnn")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="assemble_r50")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--residual-gamma",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="draw the gammas of BNs ending a residual branch from U(LOW, HIGH) (deep variants: "
        "e.g. 0.05 0.2 for assemble_r152, see calibrate_bn)",
    )
    ap.add_argument("--sample-dir", type=Path, default=DEFAULT_SAMPLE, help="ImageNet val sample")
    args = ap.parse_args(argv)

    tf, resnet_model = import_their_code(args.repo.resolve())
    cfg = VARIANTS[args.variant]
    data_format = "channels_last"  # their GPU default is channels_first; CPU needs NHWC
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    graph, kwargs, images, logits = build_eval_graph(tf, resnet_model, cfg, data_format, 2)
    with graph.as_default():
        variables = tf.global_variables()
        names = [v.op.name for v in variables]
        values = {}
        for v in variables:
            shape = tuple(v.shape.as_list())
            values[v.op.name] = np.asarray(
                random_value(v.op.name, shape, rng), dtype=v.dtype.base_dtype.as_numpy_dtype
            )
        saver = tf.train.Saver(variables)
        x, image_source = load_inputs(args.sample_dir, rng)
        with tf.Session(graph=graph) as sess:
            for v in variables:
                v.load(values[v.op.name], sess)
            n_bn = calibrate_bn(
                tf, graph, sess, {images: x}, values, rng, residual_gamma=args.residual_gamma
            )
            out = sess.run(logits, {images: x})
            ckpt_dir = args.out / "ckpt"
            ckpt_dir.mkdir(exist_ok=True)
            saver.save(sess, str(ckpt_dir / "model.ckpt"), write_meta_graph=False)
            trainable = {v.op.name for v in tf.trainable_variables()}

    # The checkpoint must hold exactly the values we assigned (read back through TF's reader).
    reader = tf.train.load_checkpoint(str(args.out / "ckpt" / "model.ckpt"))
    for name in names:
        if not np.array_equal(reader.get_tensor(name), values[name]):
            raise RuntimeError(f"checkpoint value of {name} differs from the assigned one")

    # A fresh graph restored from the checkpoint alone must give the same logits.
    graph2, _, images2, logits2 = build_eval_graph(tf, resnet_model, cfg, data_format, 2)
    with graph2.as_default(), tf.Session(graph=graph2) as sess:
        tf.train.Saver().restore(sess, str(args.out / "ckpt" / "model.ckpt"))
        restored = sess.run(logits2, {images2: x})
    restore_diff = float(np.abs(restored - out).max())
    if restore_diff > 1e-5 * float(np.abs(out).max()):
        raise RuntimeError(f"restored checkpoint gives different logits (max diff {restore_diff})")

    # Variable names/shapes do not depend on data_format (kernels are HWIO in both layouts).
    other = variable_shapes(tf, resnet_model, cfg, "channels_first")
    same_nchw = other == [(n, values[n].shape) for n in names]
    if not same_nchw:
        raise RuntimeError("channels_first graph has different variable names/shapes")

    moving = [n for n in names if n.endswith(("moving_mean", "moving_variance"))]
    n_train = sum(values[n].size for n in names if n in trainable)
    n_moving = sum(values[n].size for n in moving)
    atomic_save(args.out / "variables.npz", lambda p: np.savez(p, **values))
    atomic_save(
        args.out / "logits.npz", lambda p: np.savez(p, input=x, logits=out.astype(np.float32))
    )
    lines = "".join(f"{n}\t{list(values[n].shape)}\n" for n in names)
    atomic_save(args.out / "variables.txt", lambda p: p.write_text(lines))
    meta = dict(
        variant=args.variant,
        flags=cfg,
        model_kwargs=kwargs,
        data_format=data_format,
        variable_shapes_equal_channels_first=same_nchw,
        seed=args.seed,
        residual_gamma=args.residual_gamma,
        image_source=image_source,
        preprocessing="PIL bilinear short side 292, centre crop 256, RGB minus means",
        channel_means=CHANNEL_MEANS,
        n_bn_layers_calibrated=n_bn,
        n_variables=len(names),
        n_trainable_params=int(n_train),
        n_bn_moving_values=int(n_moving),
        n_other_values=int(sum(values[n].size for n in names) - n_train - n_moving),
        logits_argmax=out.argmax(1).tolist(),
        logits_std=float(out.std()),
        logits_corr_between_images=float(np.corrcoef(out)[0, 1]),
        restore_max_abs_diff=restore_diff,
        tensorflow=tf.__version__,
    )
    atomic_save(args.out / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=1)))
    print(json.dumps({k: meta[k] for k in ("variant", "n_variables", "n_trainable_params")}))
    print(f"n_bn_moving_values={n_moving} logits std={out.std():.4g} argmax={out.argmax(1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
