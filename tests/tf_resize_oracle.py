"""TensorFlow as the oracle of ``models/tf_resize.py`` (run by hand; needs TensorFlow, not torch).

Runs clovaai/assembled-cnn's eval preprocessing (``preprocessing/imagenet_preprocessing.py``:
``decode_jpeg(dct_method="INTEGER_ACCURATE")``, ``_smallest_size_at_least``,
``tf.compat.v1.image.resize_images(BILINEAR, align_corners=False)``, ``central_crop``) with
TensorFlow's own kernels, transcribed from that file, and:

* ``--fixture F``: writes TF's outputs on small synthetic images (and on the sizes of real
  ImageNet photos) to ``F`` (tests/data/tf_resize_fixture.npz, read by tests/test_tf_resize.py
  in every CI run, where TensorFlow is not installed);
* ``--photos DIR``: compares TF with ``tf_resize_center_crop`` on every photo under DIR (the
  1,000-image sample) and with PIL's decoder, and prints the differences.

Usage (a throwaway environment: ``python -m venv /tmp/tf && /tmp/tf/bin/pip install
tensorflow-cpu pillow``)::

    /tmp/tf/bin/python tests/tf_resize_oracle.py --fixture tests/data/tf_resize_fixture.npz \\
        --photos ../shared/data/imagenet-sample/val
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tf_resize_cases import PHOTO_CASES, hashed_image

ROOT = Path(__file__).resolve().parents[1]
#: (resize, crop) of the released models: 224 models (crop_type 0: int(224 / 0.875) = 256),
#: 256 models (int(256 / 0.875) = 292) and Assemble-R152 (crop_type 1: 256 + 1).
GEOMETRIES = ((256, 224), (292, 256), (257, 256))


def _ours():
    spec = importlib.util.spec_from_file_location(
        "tf_resize", ROOT / "robustbench_assemble" / "models" / "tf_resize.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- transcribed from clovaai/assembled-cnn preprocessing/imagenet_preprocessing.py (TF 1.x) --
def _smallest_size_at_least(height, width, resize_min):
    resize_min = tf.cast(resize_min, tf.float32)
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    smaller_dim = tf.minimum(height, width)
    scale_ratio = resize_min / smaller_dim
    return tf.cast(height * scale_ratio, tf.int32), tf.cast(width * scale_ratio, tf.int32)


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int32),
    ]
)
def tf_eval_geometry(image, resize_min, crop):
    """Dynamic shapes, as in the eval graph (so no static same-size shortcut applies)."""
    shape = tf.shape(image)
    new_height, new_width = _smallest_size_at_least(shape[0], shape[1], resize_min)
    resized = tf.compat.v1.image.resize_images(
        image, [new_height, new_width], method=tf.image.ResizeMethod.BILINEAR, align_corners=False
    )
    top = (new_height - crop) // 2
    left = (new_width - crop) // 2
    return tf.slice(resized, [top, left, 0], [crop, crop, -1]), new_height, new_width


def tf_decode(path: Path) -> np.ndarray:
    data = tf.io.read_file(str(path))
    return tf.image.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy()


# --------------------------------------------------------------------------------------------


def write_fixture(path: Path, photos: list[Path]) -> None:
    rng = np.random.default_rng(20261126)
    cases = {}
    # small random images through every geometry rule: smaller than, equal to and larger than
    # the target, portrait and landscape
    small = [((23, 31), 17, 15), ((31, 23), 17, 15), ((40, 40), 21, 19), ((9, 50), 12, 11)]
    small += [((15, 20), 30, 28), ((17, 17), 17, 17)]
    for i, ((h, w), resize, crop) in enumerate(small):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out, nh, nw = tf_eval_geometry(image, resize, crop)
        cases[f"small{i}_image"] = image
        cases[f"small{i}_out"] = out.numpy()
        cases[f"small{i}_geometry"] = np.array([resize, crop, int(nh), int(nw)])
    # photo-sized images (too large to store: hashed_image, which the test recomputes), full
    # geometry; every 5th output row and column is kept
    for i, ((h, w), (resize, crop)) in enumerate(PHOTO_CASES):
        image = hashed_image(h, w)
        out, nh, nw = tf_eval_geometry(image, resize, crop)
        cases[f"photo{i}_out_every5"] = out.numpy()[::5, ::5]
        cases[f"photo{i}_geometry"] = np.array([resize, crop, int(nh), int(nw)])
    # TF's resized sizes for every (height, width) of the photos x every resize used
    sizes = sorted({Image.open(p).size[::-1] for p in photos} | {(375, 500), (500, 375)})
    table = []
    for h, w in sizes:
        for resize in sorted({g[0] for g in GEOMETRIES}):
            nh, nw = _smallest_size_at_least(h, w, resize)
            table.append((h, w, resize, int(nh), int(nw)))
    cases["sizes"] = np.array(table, dtype=np.int64)
    cases["tensorflow_version"] = np.array(tf.__version__)
    np.savez_compressed(path, **cases)
    short = sum(min(r[3], r[4]) != r[2] for r in table)
    print(f"wrote {path}: {len(small)} small images, 3 photo-sized, {len(table)} sizes "
          f"({short} come out one pixel short of the asked short side)")  # fmt: skip


def compare_photos(photos: list[Path]) -> None:
    ours = _ours()
    worst, differing, decode_diff, skipped = 0.0, 0, 0, 0
    for path in photos:
        try:
            pixels = tf_decode(path)
        except tf.errors.InvalidArgumentError:  # not a JPEG TF decodes (PNG/CMYK): skip
            skipped += 1
            continue
        pil = np.asarray(Image.open(path).convert("RGB"))
        decode_diff += int(not np.array_equal(pil, pixels))
        for resize, crop in GEOMETRIES:
            expected = tf_eval_geometry(pixels, resize, crop)[0].numpy()
            got = ours.tf_resize_center_crop(pil, resize, crop)
            diff = float(np.abs(got - expected).max())
            worst = max(worst, diff)
            differing += int(diff > 0)
    n = len(photos) - skipped
    print(f"{n} photos ({skipped} skipped) x {len(GEOMETRIES)} geometries: TF decode != PIL "
          f"decode on {decode_diff}; tf_resize_center_crop != TF on {differing} outputs, "
          f"max |diff| {worst:.3g} (0..255 scale)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fixture", type=Path, help="write the CI fixture here")
    p.add_argument("--photos", type=Path, help="val folder to compare on (<wnid>/<file>)")
    args = p.parse_args()
    photos = sorted(args.photos.glob("*/*")) if args.photos else []
    if args.fixture:
        write_fixture(args.fixture, photos)
    if photos:
        compare_photos(photos)


if __name__ == "__main__":
    main()
