"""ImageNet-P sequences: schedules, determinism, and agreement with independent computations.

The original make_imagenet_p.py is a script (not importable), so each perturbation without
randomness is compared with an *independent* computation of the published schedule on real
photos: PIL's own ``Image.rotate`` / hand-written affine matrices, OpenCV's
``getPerspectiveTransform`` from projected corners, skimage's HSV and gaussian functions, a
torch ``ToTensor``-style running mean, and Hendrycks' ImageMagick motion blur through Wand
(the ImageNet-C reference's ``MotionImage``, which make_imagenet_p.py used the same way).
Random perturbations are checked for their distributions and determinism.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
import torch
from conftest import sample_files
from PIL import Image
from skimage import color as skcolor
from skimage.filters import gaussian as sk_gaussian

from robustbench_assemble.images import center_crop, resize_short_side
from robustbench_assemble.perturbations import (
    PERTURBATIONS,
    TEST_PERTURBATIONS,
    VALIDATION_PERTURBATIONS,
    make_sequence,
    sequence_seed,
)
from robustbench_assemble.perturbations import numpy_backend as nb
from robustbench_assemble.perturbations.params import SCHEDULES, dataset_name, parse_dataset_name
from robustbench_assemble.perturbations.torch_backend import make_sequence_batch


@pytest.fixture(scope="module")
def photos256() -> list[Image.Image]:
    """Three real val photos at full size (landscape and portrait)."""
    from robustbench_assemble.images import load_rgb

    files = sample_files(3, stride=333)
    if not files:
        pytest.skip("ImageNet sample not found")
    return [load_rgb(f) for f in files]


def _resized(img: Image.Image) -> Image.Image:
    return resize_short_side(img, 256)


def _crop(img256: Image.Image) -> np.ndarray:
    return np.asarray(center_crop(img256, 224))


def _assert_close(a: np.ndarray, b: np.ndarray, max_diff: int = 1, max_frac: float = 0.0):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert d.max() <= max_diff, d.max()
    assert (d > 0).mean() <= max_frac, (d > 0).mean()


# ------------------------------------------------------------------------- vocabulary / schedules


def test_names_and_split_match_the_release():
    assert TEST_PERTURBATIONS == (
        "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
        "brightness", "translate", "rotate", "tilt", "scale",
    )  # fmt: skip
    assert VALIDATION_PERTURBATIONS == ("speckle_noise", "gaussian_blur", "spatter", "shear")
    assert PERTURBATIONS == TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS


def test_published_schedules():
    """Parameters against REFERENCE.md §2 (typed from make_imagenet_p.py)."""
    s = SCHEDULES
    assert s["gaussian_noise"].noise_levels == (0.03, 0.05, 0.08)
    assert s["shot_noise"].noise_levels == (300, 120, 60)
    assert s["speckle_noise"].noise_levels == (0.05, 0.10, 0.15)
    assert [p[2] for p in s["motion_blur"].frame_params] == list(range(-120, 1, 4))
    assert {p[:2] for p in s["motion_blur"].frame_params} == {(10, 3)}
    assert list(s["snow"].frame_params) == [4 * i - 150 for i in range(31)]
    assert s["brightness"].frame_params[0] == pytest.approx(-0.30)
    assert s["brightness"].frame_params[30] == pytest.approx(0.30)
    assert list(s["translate"].frame_params) == list(range(-20, 21))
    assert list(s["rotate"].frame_params) == list(range(-15, 16))
    assert list(s["shear"].frame_params) == list(range(-15, 16))
    assert s["scale"].frame_params[0] == pytest.approx(0.40)
    assert s["scale"].frame_params[30] == pytest.approx(1.15)
    assert s["zoom_blur"].frame_params[30] == pytest.approx(1.12)
    assert s["gaussian_blur"].frame_params[30] == pytest.approx(0.25 + 0.035 * 30)
    for name in PERTURBATIONS:
        assert s[name].frames == (41 if name == "translate" else 31)
        order = (
            "geometric"
            if name in ("zoom_blur", "translate", "rotate", "tilt", "scale", "shear")
            else "photometric"
        )
        assert s[name].order == order


def test_dataset_names_round_trip():
    assert dataset_name("gaussian_noise", 2) == "gaussian_noise_2"
    assert dataset_name("rotate", 3) == "rotate"
    for name in PERTURBATIONS:
        assert parse_dataset_name(name) == (name, 1)
    assert parse_dataset_name("speckle_noise_3") == ("speckle_noise", 3)
    with pytest.raises(ValueError):
        parse_dataset_name("rotate_2")


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_every_perturbation_shape_and_frame_count(photos256, name):
    seq = make_sequence(photos256[0], name, 1, seed=0)
    assert seq.dtype == np.uint8
    assert seq.shape == ((41 if name == "translate" else 31), 224, 224, 3)
    assert len({seq[i].tobytes() for i in range(len(seq))}) > 1  # frames do change


def test_bad_arguments(photos256):
    with pytest.raises(ValueError, match="frame"):
        make_sequence(photos256[0], "rotate", 2)
    with pytest.raises(ValueError, match="unknown perturbation"):
        make_sequence(photos256[0], "impulse_noise")
    with pytest.raises(ValueError, match="difficulty"):
        make_sequence(photos256[0], "shot_noise", 4)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        make_sequence(np.zeros((10, 10), np.uint8), "rotate")


def test_array_and_pil_inputs_agree(photos256):
    img = photos256[1]
    a = make_sequence(img, "tilt")
    b = make_sequence(np.asarray(img), "tilt")
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------- determinism / noise


@pytest.mark.parametrize(
    "name", ["gaussian_noise", "shot_noise", "speckle_noise", "snow", "spatter"]
)
def test_random_perturbations_are_seeded(photos256, name):
    img = photos256[2]
    a = make_sequence(img, name, 1, seed=7)
    assert np.array_equal(a, make_sequence(img, name, 1, seed=7))
    assert not np.array_equal(a, make_sequence(img, name, 1, seed=8))


def test_sequence_seed_depends_on_content_not_order():
    s = sequence_seed(0, "n01440764/a.JPEG", "shot_noise", 2)
    assert s == sequence_seed(0, "n01440764\\a.JPEG", "shot_noise", 2)
    others = {
        sequence_seed(1, "n01440764/a.JPEG", "shot_noise", 2),
        sequence_seed(0, "n01440764/b.JPEG", "shot_noise", 2),
        sequence_seed(0, "n01440764/a.JPEG", "gaussian_noise", 2),
        sequence_seed(0, "n01440764/a.JPEG", "shot_noise", 3),
    }
    assert s not in others and len(others) == 4
    with pytest.raises(ValueError):
        sequence_seed(-1, "a", "rotate", 1)


@pytest.mark.parametrize(
    "name,levels",
    [("gaussian_noise", (0.03, 0.05, 0.08)), ("speckle_noise", (0.05, 0.10, 0.15))],
)
def test_noise_frame0_clean_and_strength(photos256, name, levels):
    img = photos256[0]
    clean = _crop(_resized(img))
    for d, sigma in zip((1, 2, 3), levels):
        seq = make_sequence(img, name, d, seed=d)
        assert np.array_equal(seq[0], clean)
        x = clean / 255.0
        mid = (x > 0.3) & (x < 0.7)  # unclipped pixels
        resid = seq[1:] / 255.0 - x
        if name == "speckle_noise":
            resid = resid / np.where(x > 0, x, 1)
        # truncation to uint8 adds uniform noise of width 1/255 (divided by x ~ 0.5 for speckle)
        quant = 1 / 255 / math.sqrt(12) / (0.5 if name == "speckle_noise" else 1.0)
        assert resid[:, mid].std() == pytest.approx(math.hypot(sigma, quant), rel=0.08)


def test_shot_noise_is_poisson(photos256):
    img = photos256[1]
    clean = _crop(_resized(img))
    for d, c in zip((1, 2, 3), (300, 120, 60)):
        seq = make_sequence(img, "shot_noise", d, seed=3)
        assert np.array_equal(seq[0], clean)
        x = clean / 255.0
        band = (x > 0.45) & (x < 0.55)
        resid = seq[1:, band] / 255.0 - x[band]
        assert resid.var() == pytest.approx(0.5 / c + 1 / 255**2 / 12, rel=0.15)


# ------------------------------------------------------------------------- photometric, exact


def test_brightness_matches_skimage_hsv(photos256):
    for img in photos256:
        crop = _crop(_resized(img))
        seq = make_sequence(img, "brightness")
        for i in (0, 7, 15, 30):
            hsv = skcolor.rgb2hsv(crop / 255.0)
            hsv[..., 2] = np.clip(hsv[..., 2] + (i - 15) * 2 / 100.0, 0, 1)
            assert np.array_equal(seq[i], np.uint8(skcolor.hsv2rgb(hsv) * 255))


def test_gaussian_blur_matches_skimage(photos256):
    img = photos256[0]
    crop = _crop(_resized(img))
    seq = make_sequence(img, "gaussian_blur")
    for i in (0, 30):
        ref = np.uint8(
            255 * sk_gaussian(crop / 255.0, sigma=0.25 + 0.035 * i, channel_axis=-1, truncate=6.0)
        )
        assert np.array_equal(seq[i], ref)


def _wand_motion_blur(arr: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """make_imagenet_p.py's path: PNG blob -> Wand MotionImage.motion_blur -> cv2.imdecode."""
    import reference

    ref = reference.load()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    im = ref.MotionImage(blob=buf.getvalue())
    im.motion_blur(radius=radius, sigma=sigma, angle=angle)
    out = cv2.imdecode(np.frombuffer(im.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
    if out.ndim == 3:
        out = out[..., [2, 1, 0]]
    return out


def test_motion_blur_matches_imagemagick(photos256):
    img = photos256[2]
    crop = _crop(_resized(img))
    seq = make_sequence(img, "motion_blur")
    for i in (0, 13, 30):
        ref = _wand_motion_blur(crop, 10, 3, (i - 30) * 4)
        if ref.ndim == 2:
            ref = np.repeat(ref[..., None], 3, axis=2)
        _assert_close(seq[i], ref, max_diff=1, max_frac=0.01)


def test_snow_frames_follow_reference_blend(photos256):
    """Same snow layer (same generator) blurred by Wand and blended with the reference formula."""
    img = photos256[0]
    crop = _crop(_resized(img))
    seq = make_sequence(img, "snow", seed=11)
    layer = nb.snow_layer(np.random.default_rng(11), SCHEDULES["snow"].extra)
    x = crop / 255.0
    for i in (0, 30):
        flakes = _wand_motion_blur(layer, 14, 4, i * 4 - 150) / 255.0
        flakes = flakes[..., None]
        gray = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(224, 224, 1)
        z = 0.85 * x + 0.15 * np.maximum(x, gray * 1.5 + 0.5)
        ref = np.uint8(np.clip(z + flakes + np.rot90(flakes, k=2), 0, 1) * 255)
        _assert_close(seq[i], ref, max_diff=1, max_frac=0.01)


def test_spatter_drip_is_the_reference_convolution():
    layer = np.random.default_rng(0).random((50, 7))
    kernel = (0.05, 0.1, 0.15, 0.7)
    ref = np.apply_along_axis(lambda m: np.convolve(m, np.array(kernel), mode="same"), 0, layer)
    np.testing.assert_allclose(nb._drip(layer, kernel), ref, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------- geometric, exact


def test_rotate_matches_pil_rotate(photos256):
    """torchvision 0.2 affine(angle) == PIL rotate(-angle) about (w/2 + .5, h/2 + .5), bilinear.

    torchvision 0.2 documented its affine angle as clockwise; PIL's rotate is counter-clockwise.
    """
    for img in photos256:
        img256 = _resized(img)
        w, h = img256.size
        seq = make_sequence(img, "rotate")
        for i in (0, 10, 30):
            ref = img256.rotate(15 - i, Image.BILINEAR, center=(w / 2 + 0.5, h / 2 + 0.5))
            _assert_close(seq[i], _crop(ref), max_diff=1, max_frac=1e-3)


def test_scale_matches_hand_written_matrix(photos256):
    img256 = _resized(photos256[1])
    w, h = img256.size
    cx, cy = w / 2 + 0.5, h / 2 + 0.5
    seq = make_sequence(photos256[1], "scale")
    for i in (0, 24, 30):
        s = (i * 2.5 + 40) / 100
        data = (1 / s, 0, cx - cx / s, 0, 1 / s, cy - cy / s)
        ref = img256.transform(img256.size, Image.AFFINE, data, Image.BILINEAR)
        _assert_close(seq[i], _crop(ref), max_diff=1, max_frac=1e-3)


def test_shear_matches_hand_written_matrix(photos256):
    """torchvision 0.2's scalar shear s: inverse [[1, tan s], [0, 1/cos s]] about the centre."""
    img256 = _resized(photos256[0])
    w, h = img256.size
    cx, cy = w / 2 + 0.5, h / 2 + 0.5
    seq = make_sequence(photos256[0], "shear")
    for i in (0, 30):
        s = math.radians(i - 15)
        a, b, e = 1.0, math.tan(s), 1 / math.cos(s)
        data = (a, b, cx - a * cx - b * cy, 0.0, e, cy - e * cy)
        ref = img256.transform(img256.size, Image.AFFINE, data, Image.BILINEAR)
        _assert_close(seq[i], _crop(ref), max_diff=1, max_frac=1e-3)


def test_translate_is_an_integer_shift(photos256):
    img256 = _resized(photos256[2])
    seq = make_sequence(photos256[2], "translate")
    for i in (0, 20, 40):
        t = i - 20
        ref = img256.transform(img256.size, Image.AFFINE, (1, 0, -t, 0, 1, 0), Image.NEAREST)
        assert np.array_equal(seq[i], _crop(ref))


def test_tilt_matches_projected_corners(photos256):
    """Homography rebuilt from the four corners rotated in 3-D (phi = theta) and projected.

    As in make_imagenet_p.py's matrices, the image plane sits at z = 1 (its P1 keeps the
    homogeneous 1 as z), is rotated about y then x, pushed to z + f and projected with focal f.
    """
    img = photos256[0]
    img256 = _resized(img)
    arr = np.asarray(img256)
    h, w = arr.shape[:2]
    f = math.hypot(w, h)
    seq = make_sequence(img, "tilt")
    for i in (0, 15, 30):
        a = math.radians(i - 15)
        rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        ry = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        pts = np.c_[src - [w / 2, h / 2], np.ones(4)] @ (rx @ ry).T + [0, 0, f]
        dst = np.float32(pts[:, :2] * f / pts[:, 2:] + [w / 2, h / 2])
        m = cv2.getPerspectiveTransform(src, dst)
        ref = cv2.warpPerspective(arr, m, (w, h))
        _assert_close(seq[i], _crop(Image.fromarray(ref)), max_diff=2, max_frac=0.01)


def test_zoom_blur_running_mean(photos256):
    """Frame i = ToPILImage(mean of ToTensor(frames 0..i)), frames zoomed about (w/2+.5, h/2+.5)."""
    img = photos256[1]
    img256 = _resized(img)
    w, h = img256.size
    cx, cy = w / 2 + 0.5, h / 2 + 0.5
    seq = make_sequence(img, "zoom_blur")
    avg = torch.from_numpy(_crop(img256).copy()).permute(2, 0, 1).float().div(255)
    for i in range(1, 31):
        s = 1 + 0.004 * i
        z = img256.transform(
            img256.size,
            Image.AFFINE,
            (1 / s, 0, cx - cx / s, 0, 1 / s, cy - cy / s),
            Image.BILINEAR,
        )
        avg += torch.from_numpy(_crop(z).copy()).permute(2, 0, 1).float().div(255)
        if i in (1, 17, 30):
            ref = (avg / (i + 1)).mul(255).byte().permute(1, 2, 0).numpy()
            _assert_close(seq[i], ref, max_diff=1, max_frac=1e-3)


def _pil_affine_crops(img256: Image.Image, name: str) -> np.ndarray:
    """make_imagenet_p.py's path: PIL ``Image.transform`` of the whole 256 image, then crop."""
    from robustbench_assemble.perturbations.geometry import legacy_affine_inverse

    key = {"rotate": "angle", "scale": "scale", "shear": "shear", "zoom_blur": "scale"}[name]
    params = SCHEDULES[name].frame_params
    frames = []
    for p in params[1:] if name == "zoom_blur" else params:
        data = legacy_affine_inverse(img256.size, **{key: p})
        frames.append(_crop(img256.transform(img256.size, Image.AFFINE, data, Image.BILINEAR)))
    return np.stack(frames)


def _check_affine_bit_for_bit(img):
    img256 = _resized(img)
    for name in ("rotate", "scale", "shear"):
        assert np.array_equal(make_sequence(img, name), _pil_affine_crops(img256, name)), name
    # zoom_blur: the torch running mean of make_imagenet_p.py over PIL's zoomed crops
    zoomed = _pil_affine_crops(img256, "zoom_blur")
    avg = torch.from_numpy(_crop(img256).copy()).float().div(255)
    want = [_crop(img256)]
    for i, z in enumerate(zoomed, start=1):
        avg += torch.from_numpy(z).float().div(255)
        want.append((avg / (i + 1)).mul(255).byte().numpy())
    assert np.array_equal(make_sequence(img, "zoom_blur"), np.stack(want))


def test_affine_warps_are_pil_bit_for_bit(photos256):
    """The compiled warp (crop only) equals PIL's bilinear ``Image.transform`` on every frame."""
    _check_affine_bit_for_bit(photos256[1])


@pytest.mark.slow
def test_affine_warps_are_pil_bit_for_bit_on_many_photos():
    from robustbench_assemble.images import load_rgb

    files = sample_files(40, stride=25)
    if not files:
        pytest.skip("ImageNet sample not found")
    for f in files:
        _check_affine_bit_for_bit(load_rgb(f))


def test_affine_kernel_edges_and_outside():
    """Tiny images and extreme warps: clamped edges, the 'outside -> 0' test, negative FLOOR."""
    from robustbench_assemble.perturbations.kernels import affine_bilinear_crops

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    pil = Image.fromarray(img)
    mats = np.array(
        [
            (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
            (0.5, 0.0, -0.3, 0.0, 0.5, -0.2),
            (1.3, 0.4, -2.0, -0.3, 1.1, 1.5),
            (0.9, -0.2, 0.7, 0.25, 0.8, -0.6),
            (2.0, 0.0, -3.0, 0.0, 2.0, -4.0),
        ]
    )
    for src in (img, img.astype(np.float64)):  # both image dtypes the kernel accepts
        out = np.empty((len(mats), 9, 9, 3), np.uint8)
        affine_bilinear_crops(np.ascontiguousarray(src), mats, 0, 0, 9, out)
        for m, got in zip(mats, out):
            ref = np.asarray(pil.transform((9, 9), Image.AFFINE, tuple(m), Image.BILINEAR))
            assert np.array_equal(got, ref)


def test_scale_kernel_edges_and_outside():
    """The shared-row kernel for matrices without rotation/shear against PIL: zoom in and out,
    offsets that leave rows and columns outside, clamped first/last rows and columns."""
    from robustbench_assemble.perturbations.kernels import scale_bilinear_crops

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    pil = Image.fromarray(img)
    mats = np.array(
        [
            (1.0, 0.0, 0.0, -0.0, 1.0, 0.0),
            (0.5, 0.0, -0.3, -0.0, 0.5, -0.2),
            (0.37, 0.0, 0.9, 0.0, 0.41, 1.3),
            (2.0, 0.0, -3.0, 0.0, 2.0, -4.0),
            (1.7, 0.0, 0.2, -0.0, 0.6, 0.4),
            (-0.8, 0.0, 6.5, 0.0, 1.2, -0.5),
        ]
    )
    out = np.empty((len(mats), 11, 11, 3), np.uint8)
    scale_bilinear_crops(img.astype(np.float64), mats, 0, 0, 11, out)
    for m, got in zip(mats, out):
        ref = np.asarray(pil.transform((11, 11), Image.AFFINE, tuple(m), Image.BILINEAR))
        assert np.array_equal(got, ref), m


def test_packed_pixels_and_warp_kernels_against_pil():
    """pack_rgb puts r, g, b in bits 0-7, 8-15, 16-23 (the kernels' channel order); the
    packed affine and shared-row kernels equal PIL on random matrices that rotate, zoom in
    and out and leave parts outside, on a non-square image (gather, border and row sharing)."""
    from robustbench_assemble.perturbations.kernels import (
        affine_bilinear_packed,
        packed_image,
        scale_bilinear_packed,
    )

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    px = packed_image(img)
    want = img[..., 0].astype(np.uint32) | img[..., 1].astype(np.uint32) << 8
    assert np.array_equal(px, want | img[..., 2].astype(np.uint32) << 16)
    pil = Image.fromarray(img)
    for _ in range(12):
        a0, a4 = rng.uniform(0.3, 2.5, 2)
        a1, a3 = rng.uniform(-0.4, 0.4, 2)
        a2, a5 = rng.uniform(-6.0, 6.0, 2)
        for mat, kernel in (
            ((a0, a1, a2, a3, a4, a5), affine_bilinear_packed),
            ((a0, 0.0, a2, 0.0, a4, a5), scale_bilinear_packed),
            ((a0, 0.0, a2, 0.0, a4, a5), affine_bilinear_packed),
        ):
            out = np.empty((1, 19, 19, 3), np.uint8)
            kernel(px, np.array([mat]), 4, 2, 19, out)
            ref = np.asarray(pil.transform((31, 23), Image.AFFINE, mat, Image.BILINEAR))
            assert np.array_equal(out[0], ref[2:21, 4:23]), (kernel, mat)


def test_run_frames_and_split_range_cover_each_item_once():
    """The frame scheduler calls every frame once whatever the thread count and passes a
    worker's exception on; split_range's ranges tile [0, n)."""
    from robustbench_assemble.threads import run_frames, split_range

    for threads in (1, 2, 5):
        seen: list[int] = []
        run_frames(seen.append, [3, 0, 2, 1, 6, 5, 4], threads)
        assert sorted(seen) == list(range(7))
        ranges: list[tuple[int, int]] = []
        split_range(lambda lo, hi, acc=ranges: acc.append((lo, hi)), 10, threads)
        covered = sorted(i for lo, hi in ranges for i in range(lo, hi))
        assert covered == list(range(10))

    def boom(t: int) -> None:
        if t == 4:
            raise RuntimeError("frame 4")

    with pytest.raises(RuntimeError, match="frame 4"):
        run_frames(boom, range(8), 3)


def _child_sequence(img: np.ndarray) -> bytes:
    return make_sequence(img, "rotate", threads=2).tobytes()


def test_threads_work_in_a_forked_child(photos256):
    """The kept thread pool is replaced in a forked child (whose copy has no threads), so
    make_imagenet_p's fork workers do not hang and get the parent's frames."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    img = np.asarray(_resized(photos256[0]))
    want = make_sequence(img, "rotate", threads=2)  # the parent's pool exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_child_sequence, (img,)).get(timeout=120)
    assert got == want.tobytes()


def test_motion_blur_kernel_equals_numpy_motion_blur(photos256):
    """motion_blur and snow frames: the compiled taps equal corruptions.motion's numpy blur
    (itself checked against Wand in tests/test_corruptions.py) on every frame, bit for bit."""
    from robustbench_assemble.corruptions.motion import motion_blur, quantize_like_imagemagick

    img = photos256[1]
    crop = _crop(_resized(img))
    seq = make_sequence(img, "motion_blur")
    for i, (radius, sigma, angle) in enumerate(SCHEDULES["motion_blur"].frame_params):
        want = quantize_like_imagemagick(motion_blur(crop, radius, sigma, angle))
        assert np.array_equal(seq[i], want), i
    snow = SCHEDULES["snow"]
    layer = nb.snow_layer(np.random.default_rng(5), snow.extra)
    x = crop / 255.0
    gray = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(224, 224, 1)
    z = 0.85 * x + (1 - 0.85) * np.maximum(x, gray * 1.5 + 0.5)
    seq = make_sequence(img, "snow", seed=5)
    for i, angle in enumerate(snow.frame_params):
        flakes = quantize_like_imagemagick(motion_blur(layer, 14, 4, angle))[..., None] / 255.0
        want = np.uint8(np.clip(z + flakes + np.rot90(flakes, k=2), 0, 1) * 255)
        assert np.array_equal(seq[i], want), i


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_output_does_not_depend_on_thread_count(photos256, name):
    """Frames computed on 1, 2 or 3 threads are identical (draws happen before the split)."""
    img = photos256[0]
    runs = [make_sequence(img, name, seed=7, threads=t) for t in (1, 2, 3)]
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])
    with pytest.raises(ValueError, match="threads"):
        make_sequence(img, name, seed=7, threads=0)


def test_noise_frame_bits_are_the_serial_stream():
    """Per-frame draws from advanced PCG64 copies: the same bits as one serial draw, and the
    caller's generator (including its buffered 32-bit half) ends where the serial draw leaves
    it; other bit generators fall back to drawing everything up front."""
    from robustbench_assemble.perturbations.noise import frame_bits, random_bits

    for make in (
        lambda: np.random.default_rng(3),
        lambda: np.random.Generator(np.random.MT19937(3)),
    ):
        serial, split = make(), make()
        serial.integers(0, 2**32, dtype=np.uint32)  # leaves a buffered 32-bit half
        split.integers(0, 2**32, dtype=np.uint32)
        want = random_bits(serial, (5, 6))
        draw = frame_bits(split, 5, 6)
        got = np.concatenate([draw(3, 5), draw(0, 1), draw(1, 3)])
        assert np.array_equal(got, want[[3, 4, 0, 1, 2]])
        # the next 32-bit draws use the buffered half first, then fresh words
        assert (
            serial.integers(0, 2**32, size=4, dtype=np.uint32).tolist()
            == split.integers(0, 2**32, size=4, dtype=np.uint32).tolist()
        )


def test_gaussian_blur_every_frame_matches_skimage(photos256):
    crop = _crop(_resized(photos256[2]))
    seq = make_sequence(photos256[2], "gaussian_blur")
    for i, s in enumerate(SCHEDULES["gaussian_blur"].frame_params):
        ref = np.uint8(255 * sk_gaussian(crop / 255.0, sigma=s, channel_axis=-1, truncate=6.0))
        assert np.array_equal(seq[i], ref), i


def _direct_noise(levels: np.ndarray, name: str, level: float, seed: int) -> np.ndarray:
    """Noisy pixels drawn the reference's way: a variate per pixel, then the float chain."""
    if name == "gaussian_noise":  # torch float32, as make_imagenet_p.py
        x = torch.from_numpy(levels).float().div(255)
        g = torch.Generator().manual_seed(seed)
        n = torch.randn(x.shape, generator=g)
        return (torch.clamp(x + level * n, 0, 1) * 255).byte().numpy()
    rng = np.random.default_rng(seed)
    x = levels / 255.0
    if name == "shot_noise":
        return np.uint8(255 * np.clip(rng.poisson(x * level) / level, 0, 1))
    return np.uint8(255 * np.clip(x + x * rng.normal(size=x.shape, scale=level), 0, 1))


@pytest.mark.parametrize(
    "name,difficulty",
    [
        ("gaussian_noise", 1),
        ("shot_noise", 3),
        ("speckle_noise", 2),
        pytest.param("gaussian_noise", 3, marks=pytest.mark.slow),
        pytest.param("shot_noise", 1, marks=pytest.mark.slow),
        pytest.param("shot_noise", 2, marks=pytest.mark.slow),
        pytest.param("speckle_noise", 1, marks=pytest.mark.slow),
        pytest.param("speckle_noise", 3, marks=pytest.mark.slow),
    ],
)
def test_noise_sampler_matches_the_reference_chain(name, difficulty):
    """Per input level, our sampled pixels and directly drawn ones have the same histogram.

    Two-sample chi-square per level (bins with >= 20 expected counts, tails pooled); 60,000
    pixels per level and side detect a 3 % change of the noise strength (checked when written).
    """
    from scipy.stats import chi2_contingency

    from robustbench_assemble.perturbations.noise import noise_frames

    level = SCHEDULES[name].noise_levels[difficulty - 1]
    values = np.array([1, 20, 77, 128, 190, 250, 255], dtype=np.uint8)
    crop = np.repeat(values, 20000 * 3).reshape(len(values), 20000, 3)
    ours = noise_frames(crop, name, level, np.random.default_rng(difficulty), frames=1)[0]
    ref = _direct_noise(crop, name, level, seed=100 + difficulty)
    for i, v in enumerate(values):
        a = np.bincount(ours[i].ravel(), minlength=256)
        b = np.bincount(ref[i].ravel(), minlength=256)
        keep = (a + b) >= 40
        if keep.sum() < 2:  # (almost) deterministic output: must be identical
            assert np.array_equal(a, b), (name, v)
            continue
        table = np.stack([a[keep], b[keep]])
        table = np.c_[table, [a[~keep].sum(), b[~keep].sum()]] if (~keep).any() else table
        table = table[:, table.sum(0) > 0]
        p = chi2_contingency(table)[1]
        assert p > 1e-4, (name, int(v), p)


def test_noise_output_cdf_against_scipy_and_torch():
    """The tables: Poisson CDF at the mapped counts, and float32 gaussian thresholds."""
    from scipy.stats import poisson

    from robustbench_assemble.perturbations.noise import output_cdf

    cdf = output_cdf("shot_noise", 60.0)
    lam = 128 / 255.0 * 60.0
    # out = uint8(255 * K / 60) = floor(4.25 K): out <= 127 <=> K <= 30 (4.25 * 30 = 127.5)
    assert cdf[128, 127] == pytest.approx(poisson.cdf(30, lam), abs=1e-15)
    assert cdf[0, 0] == 1.0
    g = output_cdf("gaussian_noise", 0.03)
    # P(out <= 127 | v = 128) = P(128/255 + 0.03 n < 128/255 (float32)) = P(n < ~0) ~ 1/2
    assert g[128, 127] == pytest.approx(0.5, abs=1e-3)
    assert np.all(np.diff(g, axis=1) >= 0) and np.all(g[:, 255] == 1.0)


# ------------------------------------------------------------------------- torch backend


@pytest.mark.parametrize(
    "name",
    [
        "translate",
        "rotate",
        "tilt",
        "brightness",
        pytest.param("zoom_blur", marks=pytest.mark.slow),
        pytest.param("scale", marks=pytest.mark.slow),
        pytest.param("shear", marks=pytest.mark.slow),
    ],
)
def test_torch_backend_matches_numpy(photos256, name):
    imgs = photos256[:1]
    got = make_sequence_batch(imgs, name).numpy()
    want = np.stack([make_sequence(im, name) for im in imgs])
    exact = name in ("translate", "brightness")
    _assert_close(got, want, max_diff=0 if exact else 1, max_frac=0 if exact else 0.02)


@pytest.mark.parametrize(
    "name",
    [
        "gaussian_noise",
        pytest.param("shot_noise", marks=pytest.mark.slow),
        pytest.param("speckle_noise", marks=pytest.mark.slow),
    ],
)
def test_torch_noise_same_distribution(photos256, name):
    img = photos256[0]
    got = make_sequence_batch([img], name, 2, seeds=[5]).numpy()[0]
    want = make_sequence(img, name, 2, seed=5)
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got, make_sequence_batch([img], name, 2, seeds=[5]).numpy()[0])
    for stat in (np.mean, np.std):
        a = stat(got[1:].astype(float) - got[0])
        b = stat(want[1:].astype(float) - want[0])
        assert a == pytest.approx(b, abs=0.05 * max(1.0, abs(b)))


def test_torch_backend_falls_back_for_other_perturbations(photos256):
    got = make_sequence_batch(photos256[:1], "motion_blur").numpy()[0]
    assert np.array_equal(got, make_sequence(photos256[0], "motion_blur"))


@pytest.mark.gpu
def test_torch_backend_on_cuda(photos256):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for name in ("rotate", "tilt", "zoom_blur", "brightness", "translate"):
        got = make_sequence_batch(photos256, name, device="cuda").cpu().numpy()
        want = np.stack([make_sequence(im, name) for im in photos256])
        _assert_close(got, want, max_diff=1, max_frac=0.02)
    n = len(photos256)
    g = make_sequence_batch(photos256, "gaussian_noise", seeds=list(range(1, n + 1)), device="cuda")
    assert g.shape == (n, 31, 224, 224, 3) and g.is_cuda
