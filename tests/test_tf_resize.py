"""The ``tf1`` clean geometry against TensorFlow's own kernels.

tests/data/tf_resize_fixture.npz holds TensorFlow's outputs (written by
tests/tf_resize_oracle.py, which runs clovaai/assembled-cnn's eval preprocessing with TF's
kernels; TF itself is not a test dependency). On the 1,000 sample photos x the three released
geometries the oracle found 0 differing values (docs/MODELS.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tf_resize_cases import PHOTO_CASES, hashed_image

from robustbench_assemble.images import load_rgb, resize_center_crop
from robustbench_assemble.models import Preprocessing, create_model, get_preprocessing
from robustbench_assemble.models.tf_resize import tf_resize_center_crop, tf_resized_size
from robustbench_assemble.models.transforms import clean_transform, normalize_batch

FIXTURE = np.load(Path(__file__).parent / "data" / "tf_resize_fixture.npz")
SMALL = sorted({k.split("_")[0] for k in FIXTURE if k.startswith("small")})


@pytest.mark.parametrize("case", SMALL)
def test_small_images_equal_tensorflow(case):
    resize, crop, new_h, new_w = FIXTURE[f"{case}_geometry"]
    image = FIXTURE[f"{case}_image"]
    assert tf_resized_size(*image.shape[:2], int(resize)) == (new_h, new_w)
    np.testing.assert_array_equal(
        tf_resize_center_crop(image, int(resize), int(crop)), FIXTURE[f"{case}_out"]
    )


@pytest.mark.parametrize("i", range(len(PHOTO_CASES)))
def test_photo_sized_images_equal_tensorflow(i):
    (h, w), (resize, crop) = PHOTO_CASES[i]
    assert list(FIXTURE[f"photo{i}_geometry"]) == [resize, crop, *tf_resized_size(h, w, resize)]
    ours = tf_resize_center_crop(hashed_image(h, w), resize, crop)
    assert ours.shape == (crop, crop, 3) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours[::5, ::5], FIXTURE[f"photo{i}_out_every5"])


def test_resized_sizes_equal_tensorflow_including_its_one_pixel_short_cases():
    table = FIXTURE["sizes"]
    ours = np.array([tf_resized_size(h, w, r) for h, w, r in table[:, :3]])
    np.testing.assert_array_equal(ours, table[:, 3:])
    # the float32 truncation really is exercised: TF gives 255 for 256 on some photo sizes
    assert (table[:, 3:].min(axis=1) < table[:, 2]).sum() >= 5


def test_torchvision_geometry_is_not_tensorflows():
    """Negative control: PIL's antialiased resize with rounded crop offsets (what the
    ``torchvision`` backend does) is far from TF's pixels on the same photo-sized input."""
    (h, w), (resize, crop) = PHOTO_CASES[0]
    image = hashed_image(h, w)
    pil = resize_center_crop(Image.fromarray(image), resize, crop).astype(np.float32)
    assert np.abs(pil[::5, ::5] - FIXTURE["photo0_out_every5"]).mean() > 10


def test_too_small_after_the_tf_rule_is_a_clear_error():
    # 188 x 250 -> 255 x 340 under TF's float32 rule: a 256 crop does not fit
    with pytest.raises(ValueError, match="smaller than the 256x256 crop"):
        tf_resize_center_crop(np.zeros((188, 250, 3), np.uint8), 256, 256)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        tf_resize_center_crop(np.zeros((40, 40), np.uint8), 32, 32)


def test_tf1_backend_validation():
    with pytest.raises(ValueError, match="resize_backend must be one of"):
        Preprocessing(resize_backend="cv2")
    with pytest.raises(ValueError, match="interpolation must be 'bilinear'"):
        Preprocessing(resize_backend="tf1", interpolation="bicubic")


def test_assembled_family_uses_the_tf_graph_geometry_and_torchvision_models_do_not():
    for name in ("resnet50d", "assemble_r50", "assemble_r152", "mobilenet_v1"):
        assert get_preprocessing(name).resize_backend == "tf1", name
    for name in ("resnet50", "alexnet", "efficientnet_lite0"):
        assert get_preprocessing(name).resize_backend == "torchvision", name


def _first_photo(sample_dir: Path) -> Path:
    return sorted(p for d in sorted(sample_dir.iterdir()) for p in sorted(d.iterdir()))[0]


def test_clean_transform_tf1_on_a_photo(sample_dir):
    """Wiring: the loader's clean transform is tf_resize_center_crop of the RGB photo, float
    pixels, and normalisation subtracts the TF means from them (assembled-cnn's last step)."""
    image = load_rgb(_first_photo(sample_dir))
    pre = create_model("assemble_r50").preprocessing
    x = clean_transform(pre)(image)
    assert x.dtype == torch.float32 and x.shape == (3, 256, 256)
    expected = tf_resize_center_crop(np.asarray(image), 292, 256)
    np.testing.assert_array_equal(x.permute(1, 2, 0).numpy(), expected)
    assert not torch.equal(x, x.round())  # float pixels: TF never rounds them to uint8
    y = normalize_batch(x[None], pre)
    tf_input = torch.from_numpy(expected).permute(2, 0, 1) - torch.tensor(
        [123.68, 116.78, 103.94]
    ).view(3, 1, 1)
    torch.testing.assert_close(y[0], tf_input, atol=1e-4, rtol=0)
    before = x.clone()
    normalize_batch(x, pre)
    assert torch.equal(x, before)  # a float32 input is not modified in place


def test_clean_transform_torchvision_unchanged(sample_dir):
    path = _first_photo(sample_dir)
    pre = get_preprocessing("resnet50")
    x = clean_transform(pre)(load_rgb(path))
    assert x.dtype == torch.uint8
    np.testing.assert_array_equal(x.permute(1, 2, 0).numpy(), resize_center_crop(load_rgb(path)))
