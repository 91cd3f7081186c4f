"""The numpy ImageNet-C engine (``corrupt``) against Hendrycks' original (tests/reference.py).

Three kinds of evidence, all on real photos:

- same stream: fed a ``LegacyGenerator(seed)``, our functions draw exactly the numbers the
  reference draws after ``np.random.seed(seed)``, so the outputs must be identical (this covers
  the deterministic corruptions too; impulse_noise is compared with skimage's ``random_noise``
  instead, because the reference's skimage call ignores the global seed);
- strength: with our own ``np.random.Generator`` stream the mean deviation from the clean
  image matches the reference's per severity;
- motion blur: our ImageMagick kernel equals Wand's output bit for bit at fixed angles.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import reference
from conftest import sample_files
from PIL import Image

from robustbench_assemble.corruptions import frost as frost_mod
from robustbench_assemble.corruptions import motion, numpy_backend, params, plasma
from robustbench_assemble.corruptions.numpy_backend import corrupt
from robustbench_assemble.corruptions.rng import LegacyGenerator, as_generator

RANDOM = tuple(n for n in params.CORRUPTIONS if n not in params.DETERMINISTIC)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --------------------------------------------------------------------------- rng


def test_as_generator_accepts_int_generator_none():
    a = as_generator(7).random(5)
    assert np.array_equal(a, as_generator(7).random(5))
    assert not np.array_equal(a, as_generator(8).random(5))
    g = np.random.default_rng(1)
    assert as_generator(g) is g
    assert isinstance(as_generator(None), np.random.Generator)
    assert isinstance(as_generator(np.int64(3)), np.random.Generator)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, [1]])
def test_as_generator_rejects(bad):
    with pytest.raises(ValueError, match="seed"):
        as_generator(bad)


def test_legacy_generator_replays_global_stream():
    np.random.seed(11)  # noqa: NPY002  (the legacy global stream is what we replay)
    expected = (np.random.normal(size=4), np.random.randint(-2, 2, size=(3, 2)))  # noqa: NPY002
    g = LegacyGenerator(11)
    assert np.array_equal(g.normal(size=4), expected[0])
    assert np.array_equal(g.integers(-2, 2, size=(3, 2)), expected[1])


def test_readme_reference_seeding(photos):
    """The README's way to get the reference's pixels from ``corrupt``: the package exports
    LegacyGenerator, and seeded with it a random corruption equals the reference's output
    after np.random.seed (an int seed draws other noise)."""
    from robustbench_assemble.corruptions import LegacyGenerator as Exported

    assert Exported is LegacyGenerator
    ref = reference.reference_corrupt(photos[0], "fog", 3, 0)
    assert np.array_equal(corrupt(photos[0], "fog", 3, seed=Exported(0)), ref)
    assert not np.array_equal(corrupt(photos[0], "fog", 3, seed=0), ref)


# --------------------------------------------------------------------------- plasma


@pytest.mark.parametrize("decay", [3, 2, 1.4])
def test_plasma_matches_reference_stream(decay):
    ic = reference.load()
    np.random.seed(5)  # noqa: NPY002  (the reference draws from the global stream)
    ref = ic.corruptions.plasma_fractal(wibbledecay=decay)
    ours = plasma.plasma_fractal(256, decay, rng=LegacyGenerator(5))
    assert np.array_equal(ours, ref)


def test_plasma_public_api():
    m = plasma.plasma_fractal(64, 2, rng=3)
    assert m.shape == (64, 64) and m.min() == 0 and m.max() == 1
    assert np.array_equal(m, plasma.plasma_fractal(64, 2, rng=3))
    with pytest.raises(ValueError, match="power of two"):
        plasma.plasma_fractal(100)
    assert [plasma.next_power_of_two(n) for n in (1, 224, 256, 257)] == [1, 256, 256, 512]


# --------------------------------------------------------------------------- frost


def test_frost_textures_are_the_reference_five():
    import os

    textures = frost_mod.frost_textures()
    assert len(textures) == 5
    for name, tex in zip(
        ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"), textures
    ):
        bgr = cv2.imread(os.path.join(reference.frost_dir(), name))
        assert tex.dtype == np.uint8 and tex.ndim == 3
        assert np.array_equal(tex, bgr[..., ::-1])
    assert frost_mod.frost_textures()[0] is textures[0]  # cached


def test_frost_missing_folder_raises(monkeypatch, tmp_path):
    monkeypatch.setenv(frost_mod.FROST_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="frost1.png"):
        frost_mod.frost_textures()


# --------------------------------------------------------------------------- motion


def test_gaussian_kernel1d_is_scipys_to_the_last_bit():
    """The one Gaussian formula behind every exact blur (corrupt_batch's CPU blurs, the device
    filter matrices, ImageNet-P's compiled blurs) against scipy's own ``_gaussian_kernel1d``,
    at every sigma and truncate the corruptions and perturbations use."""
    from scipy.ndimage import _filters

    from robustbench_assemble.perturbations.numpy_backend import gaussian_kernel_halves
    from robustbench_assemble.perturbations.params import SCHEDULES

    p = params.params
    cases = [
        (s, 4.0)
        for s in (
            *[p("gaussian_blur", k) for k in range(1, 6)],
            *[p("glass_blur", k)[0] for k in range(1, 6)],
            *[p("spatter", k)[2] for k in range(1, 6)],
            0.5,
            1.5,
        )
    ]
    cases += [(p("elastic_transform", k)[1], 3.0) for k in range(1, 6)]
    ip_sigmas = SCHEDULES["gaussian_blur"].frame_params
    cases += [(s, 6.0) for s in ip_sigmas]
    for sigma, truncate in cases:
        radius = int(truncate * float(sigma) + 0.5)
        ours = numpy_backend.gaussian_kernel1d(sigma, truncate)
        assert np.array_equal(ours, _filters._gaussian_kernel1d(sigma, 0, radius)), sigma
    halves, radii = gaussian_kernel_halves(tuple(ip_sigmas))
    for t, sigma in enumerate(ip_sigmas):
        full = _filters._gaussian_kernel1d(sigma, 0, int(radii[t]))
        assert np.array_equal(halves[t, : radii[t] + 1], full[radii[t] :: -1]), sigma


def test_motion_kernel_shape():
    assert [motion.kernel_width(r, 3) for r in (10, 12, 15, 20, 12.5)] == [21, 25, 31, 41, 27]
    k = motion.motion_blur_kernel(15, 5)
    assert len(k) == 31 and abs(k.sum() - 1) < 1e-12 and np.all(np.diff(k) < 0)
    with pytest.raises(ValueError, match="sigma"):
        motion.motion_blur_kernel(10, 0)


def _wand_motion_blur(img: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    ic = reference.load()
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    wand = ic.corruptions.MotionImage(blob=buffer.getvalue())
    wand.motion_blur(radius=radius, sigma=sigma, angle=angle)
    out = cv2.imdecode(np.frombuffer(wand.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
    return out[..., ::-1] if out.ndim == 3 else out


@pytest.mark.parametrize("radius,sigma", [(10, 3), (15, 8), (20, 15), (12, 4)])
def test_motion_blur_matches_wand(photos, radius, sigma):
    for img, angle in zip(photos[:2], (-37.3, 12.0)):
        for a in (angle, -90.0, -128.6):
            ours = motion.quantize_like_imagemagick(motion.motion_blur(img, radius, sigma, a))
            assert np.array_equal(ours, _wand_motion_blur(img, radius, sigma, a)), (radius, a)
    gray = photos[2][..., 1].copy()  # the snow layer is a one-channel PNG
    ours = motion.quantize_like_imagemagick(motion.motion_blur(gray, radius, sigma, -100.0))
    assert np.array_equal(ours, _wand_motion_blur(gray, radius, sigma, -100.0))


# --------------------------------------------------------------------------- corrupt: API


@pytest.mark.parametrize("name", params.CORRUPTIONS)
def test_corrupt_shape_dtype_seeding(photos, name):
    img = photos[0]
    for severity in params.SEVERITIES:
        out = corrupt(img, name, severity, seed=3)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(out, corrupt(img, name, severity, seed=3))
        if name in RANDOM:
            assert not np.array_equal(out, corrupt(img, name, severity, seed=4))
        if not (name == "spatter" and severity == 1):  # s1 may leave a photo unchanged
            assert not np.array_equal(out, img)
    g = np.random.default_rng(0)
    if name in RANDOM:  # a Generator is a stream: consecutive calls differ
        assert not np.array_equal(corrupt(img, name, 2, g), corrupt(img, name, 2, g))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "fogg"}, "unknown corruption.*gaussian_noise"),
        ({"severity": 0}, "severity must be in 1..5"),
        ({"severity": 6}, "severity must be in 1..5"),
        ({"severity": 2.0}, "severity must be an int"),
        ({"image": np.zeros((64, 64, 3), np.float32)}, "uint8"),
        ({"image": np.zeros((64, 64), np.uint8)}, "HxWx3"),
        ({"image": np.zeros((64, 64, 4), np.uint8)}, "HxWx3"),
        ({"image": np.zeros((16, 64, 3), np.uint8)}, ">= 32"),
        ({"image": [[[0, 0, 0]]]}, "numpy.ndarray"),
        ({"seed": -2}, "seed"),
    ],
)
def test_corrupt_rejects_bad_input(kwargs, match):
    args = {"image": np.zeros((64, 64, 3), np.uint8), "name": "fog", "severity": 1, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        corrupt(**args)


@pytest.mark.parametrize("shape", [(200, 300), (300, 260), (40, 33)])
def test_corrupt_other_sizes(photos, shape):
    img = cv2.resize(photos[1], shape[::-1], interpolation=cv2.INTER_AREA)
    for name in params.CORRUPTIONS:
        out = corrupt(img, name, 5, seed=1)
        assert out.shape == img.shape and out.dtype == np.uint8, name


def test_frost_larger_than_textures(photos):
    img = cv2.resize(photos[3], (600, 400), interpolation=cv2.INTER_LINEAR)
    for seed in range(6):
        out = corrupt(img, "frost", 3, seed=seed)
        assert out.shape == img.shape and mad(out, img) > 5


def _literal_glass_loop(x: np.ndarray, delta: int, rng) -> np.ndarray:
    """The reference's pixel loop written out (numpy views make the 'swap' a one-way copy)."""
    x = x.copy()
    h_img, w_img = x.shape[:2]
    draws = rng.integers(
        -delta,
        delta,
        size=(len(range(h_img - delta, delta, -1)), len(range(w_img - delta, delta, -1)), 2),
    )
    for i, h in enumerate(range(h_img - delta, delta, -1)):
        for j, w in enumerate(range(w_img - delta, delta, -1)):
            dx, dy = draws[i, j]
            x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
    return x


@pytest.mark.parametrize("delta", [1, 2, 4])
def test_glass_shuffle_equals_loop_on_non_square(delta):
    x = np.random.default_rng(delta).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    ours = numpy_backend._glass_shuffle(x, delta, np.random.default_rng(9))
    assert np.array_equal(ours, _literal_glass_loop(x, delta, np.random.default_rng(9)))


# --------------------------------------------------------------------------- vs reference


def _same_stream_cases(n_photos: int, glass_photos: int):
    for name in params.CORRUPTIONS:
        if name == "impulse_noise":
            continue
        yield name, glass_photos if name == "glass_blur" else n_photos


@pytest.mark.parametrize("name,n_photos", list(_same_stream_cases(2, 1)))
def test_same_stream_equals_reference(photos, name, n_photos):
    reference.load()
    for seed, img in enumerate(photos[:n_photos]):
        for severity in params.SEVERITIES:
            ref = reference.reference_corrupt(img, name, severity, seed=seed)
            ours = corrupt(img, name, severity, LegacyGenerator(seed))
            assert np.array_equal(ours, ref), (name, severity, mad(ours, ref))


@pytest.fixture(scope="module")
def photos_292_256() -> list[np.ndarray]:
    """Two photos as clovaai's generator framed them for validation_292_256."""
    from robustbench_assemble.images import load_benchmark_image

    files = sample_files(2, stride=499)
    if not files:
        pytest.skip("ImageNet sample not found")
    return [load_benchmark_image(f, 292, 256, "clovaai") for f in files]


@pytest.mark.parametrize("name,n_photos", list(_same_stream_cases(2, 1)))
def test_same_stream_equals_clovaai_generator_at_256(photos_292_256, name, n_photos):
    """At 256 px our size rules are what clovaai's CE_validation_generator.py computed (the
    reference with 224 -> 256) for the assembled models' mCE data: bit for bit."""
    reference.load()
    if name == "glass_blur":  # control: the unmodified reference does not (224-px loops)
        img = photos_292_256[0]
        unmodified = reference.reference_corrupt(img, name, 1, seed=0)
        assert not np.array_equal(unmodified, corrupt(img, name, 1, LegacyGenerator(0)))
    for seed, img in enumerate(photos_292_256[:n_photos]):
        for severity in params.SEVERITIES:
            ref = reference.reference_corrupt(img, name, severity, seed=seed, size=256)
            ours = corrupt(img, name, severity, LegacyGenerator(seed))
            assert np.array_equal(ours, ref), (name, severity, mad(ours, ref))


@pytest.mark.parametrize("name", sorted(params.DETERMINISTIC))
def test_deterministic_public_api_equals_reference(photos, name):
    reference.load()
    for img in photos[2:4]:
        for severity in params.SEVERITIES:
            ours = corrupt(img, name, severity)
            ref = reference.reference_corrupt(img, name, severity)
            assert mad(ours, ref) < 0.5
            assert np.array_equal(ours, ref)


def test_impulse_noise_is_skimage_s_and_p(photos):
    from skimage.util import random_noise

    for seed, img in enumerate(photos[:3]):
        for severity in params.SEVERITIES:
            amount = params.params("impulse_noise", severity)
            sk = random_noise(img / 255.0, mode="s&p", rng=seed, amount=amount)
            expected = np.uint8(np.clip(sk, 0, 1) * 255)
            assert np.array_equal(corrupt(img, "impulse_noise", severity, seed), expected)


def _strength_ratio(images, name, severity, seeds, base):
    ours, ref = [], []
    for k, img in enumerate(images):
        for j in range(seeds):
            ours.append(mad(corrupt(img, name, severity, base + k * seeds + j), img))
            ref.append(mad(reference.reference_corrupt(img, name, severity, k * seeds + j), img))
    ours, ref = np.array(ours), np.array(ref)
    r = ours.mean() / ref.mean()
    se = r * np.sqrt(
        (ours.var(ddof=1) / ours.mean() ** 2 + ref.var(ddof=1) / ref.mean() ** 2) / len(ours)
    )
    return r, se


@pytest.mark.parametrize("name", RANDOM)
def test_strength_matches_reference(photos, name):
    """Our Generator stream vs the reference's global stream: mean |x' - x| per severity."""
    reference.load()
    images, seeds = (photos[:3], 1) if name == "glass_blur" else (photos, 2)
    for severity in (2, 5):
        r, se = _strength_ratio(images, name, severity, seeds, base=1000)
        assert abs(r - 1) < max(0.05, 4 * se), (name, severity, r, se)


@pytest.mark.slow
@pytest.mark.parametrize("name", RANDOM)
def test_strength_matches_reference_thorough(name):
    reference.load()
    from robustbench_assemble.images import load_benchmark_image

    n = 24 if name == "glass_blur" else 80
    images = [load_benchmark_image(f) for f in sample_files(n, stride=1000 // n)]
    if not images:
        pytest.skip("ImageNet sample not found")
    for severity in params.SEVERITIES:
        r, se = _strength_ratio(images, name, severity, 2, base=5000)
        assert abs(r - 1) < max(0.03, 4 * se), (name, severity, r, se)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in params.CORRUPTIONS if n != "impulse_noise"])
def test_same_stream_equals_reference_thorough(name):
    reference.load()
    from robustbench_assemble.images import load_benchmark_image

    n = 8 if name == "glass_blur" else 40
    for seed, f in enumerate(sample_files(n, stride=1000 // n)):
        img = load_benchmark_image(f)
        for severity in params.SEVERITIES:
            ref = reference.reference_corrupt(img, name, severity, seed=seed + 100)
            ours = corrupt(img, name, severity, LegacyGenerator(seed + 100))
            assert np.array_equal(ours, ref), (name, severity, f.name)
