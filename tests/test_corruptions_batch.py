"""``corrupt_batch`` (torch, batched) against Hendrycks' original ImageNet-C code.

Three kinds of checks, all against the reference (``tests/reference.py``), never against our
own earlier output:

- deterministic corruptions: mean absolute difference per value from the reference;
- random corruptions, draw replay: the reference is run with a numpy seed, the same numbers are
  replayed from that seed into the engine's ``_<name>_apply`` step, and the images must agree
  (this checks every step after the draws: kernels, borders, interpolation, quantisation);
- random corruptions, strength: with torch's own draws, the mean absolute deviation from the
  clean photo matches the reference's per severity (checks the distributions drawn).
"""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch

from robustbench_assemble.corruptions import torch_backend as tb
from robustbench_assemble.corruptions import torch_ops as ops
from robustbench_assemble.corruptions.params import (
    CORRUPTIONS,
    DETERMINISTIC,
    SEVERITIES,
    SEVERITY_PARAMS,
    params,
)
from robustbench_assemble.corruptions.torch_backend import corrupt_batch

RANDOM = tuple(c for c in CORRUPTIONS if c not in DETERMINISTIC)
#: Per-value draws (law of large numbers): strength agrees to a fraction of a percent.
PER_PIXEL_RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def to_numpy(batch: torch.Tensor) -> np.ndarray:
    return batch.permute(0, 2, 3, 1).cpu().numpy()


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).mean())


def reference_batch(images, name, severity, seeds) -> np.ndarray:
    return np.stack(
        [reference.reference_corrupt(im, name, severity, seed=s) for im, s in zip(images, seeds)]
    )


@pytest.fixture(scope="module")
def batch(photos) -> torch.Tensor:
    return to_batch(photos)


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_dtype_device_and_seeded_determinism(batch, name):
    x = batch[:2]
    for severity in SEVERITIES:
        a = corrupt_batch(x, name, severity, torch.Generator().manual_seed(7))
        b = corrupt_batch(x, name, severity, torch.Generator().manual_seed(7))
        assert a.shape == x.shape and a.dtype == torch.uint8 and a.device == x.device
        assert torch.equal(a, b), f"{name} s{severity}: same seed gave different output"
        assert mad(to_numpy(a), to_numpy(x)) > 0.1, f"{name} s{severity} left images intact"


@pytest.mark.parametrize("name", RANDOM)
def test_random_corruptions_depend_on_the_seed(batch, name):
    x = batch[:2]
    a = corrupt_batch(x, name, 3, torch.Generator().manual_seed(1))
    b = corrupt_batch(x, name, 3, torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_cpu_output_does_not_depend_on_the_thread_count(batch, name):
    """The CPU splits the batch into one chunk per thread after drawing every random field
    for the whole batch: 1, 2 and 3 threads (chunks 3, 2+1, 1+1+1) must give the same bytes."""
    x = batch[:3]
    saved = torch.get_num_threads()
    try:
        for severity in (1, 5):
            outs = []
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                outs.append(corrupt_batch(x, name, severity, torch.Generator().manual_seed(5)))
            for threads, out in zip((2, 3), outs[1:]):
                assert torch.equal(outs[0], out), f"{name} s{severity}: {threads} threads differ"
    finally:
        torch.set_num_threads(saved)
    assert torch.get_num_threads() == saved


def test_memory_format_is_preserved(batch):
    x = batch[:2].contiguous(memory_format=torch.channels_last)
    out = corrupt_batch(x, "contrast", 2)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out.contiguous(), corrupt_batch(batch[:2], "contrast", 2))


@pytest.mark.parametrize("shape", [(2, 3, 40, 300), (1, 3, 640, 700)])
def test_other_image_sizes_run(shape):
    """Non-224 sizes follow the numpy engine's rules (fog map >= 256, frost texture upscaled)."""
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for name in ("frost", "fog", "glass_blur", "zoom_blur", "pixelate", "elastic_transform"):
        assert corrupt_batch(x, name, 2).shape == x.shape, name


def test_bad_inputs_raise_clear_errors(batch):
    x = batch[:1]
    with pytest.raises(ValueError, match="uint8"):
        corrupt_batch(x.float(), "contrast", 1)
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        corrupt_batch(x[0], "contrast", 1)
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        corrupt_batch(torch.cat((x, x[:, :1]), dim=1), "contrast", 1)
    with pytest.raises(ValueError, match=">= 32 pixels"):
        corrupt_batch(x[..., :16, :], "contrast", 1)
    with pytest.raises(ValueError, match="torch.Tensor"):
        corrupt_batch(to_numpy(x), "contrast", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_batch(x, "rain", 1)
    for bad in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match="severity"):
            corrupt_batch(x, "contrast", bad)
    with pytest.raises(ValueError, match="generator"):
        corrupt_batch(x, "gaussian_noise", 1, generator=123)


# ----------------------------------------------------------------------------- deterministic


@pytest.fixture(scope="module")
def saturated_photo(photos) -> np.ndarray:
    """A photo with a white background, as many product shots have: in float32, blurs of a
    saturated area truncate one level below the reference's float64 over the whole area
    (defocus s3: 31,331 values of the sample's n02094258 photo, 27 % white)."""
    photo = photos[1].copy()
    photo[:, :90] = 255
    return photo


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_corruptions_match_reference(photos, saturated_photo, name):
    """On the CPU every deterministic corruption gives the reference's pixels exactly (the
    issue allowed 0.5 gray levels MAD), which also makes on-the-fly cells with the q85 save
    equal to the generator's files."""
    images = [*photos[:4], saturated_photo]
    for severity in SEVERITIES:
        ours = to_numpy(corrupt_batch(to_batch(images), name, severity))
        ref = reference_batch(images, name, severity, [None] * len(images))
        print(f"{name} s{severity}: MAD vs reference {mad(ours, ref):.4f}")
        assert np.array_equal(ours, ref), f"{name} s{severity}: {(ours != ref).sum()} values"


def test_pil_box_resize_is_bit_exact(photos):
    """The device path of pixelate (CPU uses Pillow itself) against Pillow."""
    from PIL import Image

    x = to_batch(photos[:2])
    for c in SEVERITY_PARAMS["pixelate"]:
        size = int(224 * c)
        small = ops.pil_box_resize(x, size, size)
        ours = to_numpy(ops.pil_box_resize(small, 224, 224))
        ref = [
            np.asarray(
                Image.fromarray(p).resize((size, size), Image.BOX).resize((224, 224), Image.BOX)
            )
            for p in photos[:2]
        ]
        assert np.array_equal(ours, np.stack(ref)), f"pixelate factor {c}"


def test_fft_filter2d_matches_opencv(photos):
    """The device path of defocus_blur (CPU calls cv2.filter2D itself) against OpenCV."""
    import cv2

    x = to_batch(photos[:2]).float() / 255
    for radius, alias in SEVERITY_PARAMS["defocus_blur"]:
        kernel = tb.defocus_kernel(radius, alias)
        ours = ops.filter2d(x, kernel).permute(0, 2, 3, 1).numpy()
        ref = np.stack([cv2.filter2D(p.astype(np.float32) / 255, -1, kernel) for p in photos[:2]])
        assert np.abs(ours - ref).max() < 1e-5, f"defocus radius {radius}"


# ----------------------------------------------------------------------------- CPU kernels


@pytest.mark.parametrize("name", ["brightness", "saturate"])
def test_cpu_hsv_kernel_is_bit_identical_to_skimage(name):
    """The compiled HSV round trip vs skimage's rgb2hsv/hsv2rgb on 200k random colours plus
    every gray, primary and 0/255 corner (ties and delta == 0 / v == 0 cases)."""
    import skimage.color as skc

    rng = np.random.default_rng(0)
    levels = np.arange(256, dtype=np.uint8)
    special = [np.stack([levels] * 3, 1)]  # grays
    for ch in range(3):
        p = np.zeros((256, 3), np.uint8)
        p[:, ch] = levels
        special.append(p)
    corners = np.array(np.meshgrid(*[[0, 1, 127, 128, 254, 255]] * 3)).reshape(3, -1).T
    colours = np.concatenate([*special, corners, rng.integers(0, 256, (200_000, 3))])
    colours = colours.astype(np.uint8)[: (len(colours) // 64) * 64].reshape(-1, 64, 3)
    x = torch.from_numpy(colours).permute(2, 0, 1)[None].contiguous()
    for severity in SEVERITIES:
        c = params(name, severity)
        hsv = skc.rgb2hsv(colours / 255.0)
        if name == "brightness":
            hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        else:
            hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
        ref = np.uint8(np.clip(skc.hsv2rgb(hsv), 0, 1) * 255)
        ours = to_numpy(corrupt_batch(x, name, severity))[0]
        assert np.array_equal(ours, ref), f"{name} s{severity}: {(ours != ref).sum()} values"


def test_cpu_glass_loop_equals_vectorised_form():
    """The compiled sequential loop and the device path's pointer doubling, same draws."""
    from robustbench_assemble.corruptions import cpu_kernels as ck

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8, generator=g)
    for d in (1, 3):
        off = torch.randint(-d, d, (2, 40 - 2 * d, 48 - 2 * d, 2), generator=g)
        loop = y.clone()
        ck.glass_copy(loop.numpy(), off.numpy(), d, 0, 2)
        assert torch.equal(loop, ops.glass_shuffle(y, off, d)), f"delta {d}"


@pytest.mark.parametrize("name", ["pixelate", "jpeg_compression"])
def test_cpu_pillow_steps_are_bit_exact(photos, name):
    """CPU pixelate (compiled fixed-point BOX) and jpeg_compression (OpenCV's libjpeg-turbo)
    against Pillow itself, the reference's library, on 8 photos x 5 severities."""
    import io

    from PIL import Image

    def pillow(p: np.ndarray, c) -> np.ndarray:
        im = Image.fromarray(p)
        if name == "pixelate":
            small = im.resize((int(224 * c), int(224 * c)), Image.BOX)
            return np.asarray(small.resize((224, 224), Image.BOX))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=c)
        return np.asarray(Image.open(buf))

    x = to_batch(photos)
    for severity in SEVERITIES:
        c = params(name, severity)
        ours = to_numpy(corrupt_batch(x, name, severity))
        ref = np.stack([pillow(p, c) for p in photos])
        assert np.array_equal(ours, ref), f"{name} s{severity}: {(ours != ref).sum()} values"


def test_jpeg_round_trip_is_the_release_save_and_reload(photos):
    """``jpeg_round_trip`` (on-the-fly's stand-in for the files' q85 save) against the
    generator's own PIL save (quality 85, optimize=True) reloaded with PIL, bit for bit, in
    both memory formats; and it changes the pixels (a lossless stand-in would pass too)."""
    import io

    from PIL import Image

    from robustbench_assemble.make_imagenet_c import encode_jpeg

    def reference(images):
        return np.stack([np.asarray(Image.open(io.BytesIO(encode_jpeg(p)))) for p in images])

    x = to_batch(photos)
    ref = reference(photos)
    for batch in (x, x.contiguous(memory_format=torch.channels_last)):
        out = tb.jpeg_round_trip(batch, 85)
        assert out.is_contiguous(memory_format=torch.channels_last) == (batch is not x)
        assert np.array_equal(to_numpy(out), ref), f"{(to_numpy(out) != ref).sum()} values"
    assert not np.array_equal(ref, np.stack(photos))
    # other frame sizes (256 for the assembled models' native policy; odd sides pad the
    # 16 x 16 chroma blocks)
    for h, w in ((256, 256), (227, 201)):
        crops = [np.ascontiguousarray(np.resize(p, (h, w, 3))) for p in photos[:2]]
        got = to_numpy(tb.jpeg_round_trip(to_batch(crops), 85))
        assert np.array_equal(got, reference(crops)), (h, w)
    for bad, words in ((0, "1..100"), (85.0, "1..100"), (True, "1..100")):
        with pytest.raises(ValueError, match=words):
            tb.jpeg_round_trip(x, bad)
    with pytest.raises(ValueError, match="uint8"):
        tb.jpeg_round_trip(x.float(), 85)


def test_jpeg_round_trip_falls_back_to_pillow_when_opencv_differs(photos, monkeypatch):
    """An OpenCV whose JPEG codec is not Pillow's (another libjpeg build) is caught by the
    per-process check: a warning, and Pillow does the work, so the pixels stay the
    reference's."""
    import io

    from PIL import Image

    def other_codec(x, quality, out):  # a codec one level off somewhere
        real(x, quality, out)
        out[0, 0, 0] ^= 1

    real = tb._cv2_jpeg
    monkeypatch.setattr(tb, "_cv2_jpeg", other_codec)
    monkeypatch.setattr(tb, "_CV2_JPEG_OK", {})
    x = to_batch(photos[:2])
    with pytest.warns(RuntimeWarning, match="does not give Pillow's pixels at quality 85"):
        got = to_numpy(tb.jpeg_round_trip(x, 85))
    ref = []
    for p in photos[:2]:
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, "JPEG", quality=85)
        ref.append(np.asarray(Image.open(buf)))
    assert np.array_equal(got, np.stack(ref))
    assert tb._CV2_JPEG_OK == {85: False}


@pytest.mark.gpu
def test_jpeg_round_trip_on_cuda_equals_cpu(photos):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x = to_batch(photos[:4])
    got = tb.jpeg_round_trip(x.cuda().contiguous(memory_format=torch.channels_last), 85)
    assert got.device.type == "cuda" and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got.cpu(), tb.jpeg_round_trip(x, 85))


def _direct_chain(name: str, c: float, v: int, n: int, rng) -> np.ndarray:
    """The reference's float64 noise chain for n copies of value v (then np.uint8)."""
    x = np.full(n, v / 255.0)
    if name == "gaussian_noise":
        y = x + rng.normal(size=n, scale=c)
    elif name == "shot_noise":
        y = rng.poisson(x * c) / float(c)
    else:
        y = x + x * rng.normal(size=n, scale=c)
    return np.uint8(np.clip(y, 0, 1) * 255)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "speckle_noise"])
def test_noise_tables_match_reference_chain_chi_square(name):
    """Table sampling (CPU) vs direct draws through the reference's float64 chain: both
    histograms against the table's probabilities (chi-square, bins with >= 5 expected)."""
    from scipy.stats import chisquare

    from robustbench_assemble.corruptions import cpu_kernels as ck
    from robustbench_assemble.corruptions.noise_tables import BITS, sampling_tables

    n = 200_000
    rng = np.random.default_rng(1)
    g = torch.Generator().manual_seed(1)
    for severity in (1, 5):
        c = params(name, severity)
        thresholds, guide = sampling_tables(name, float(c))
        for v in (0, 3, 60, 128, 200, 255):
            probs = np.diff(thresholds[v].astype(np.float64), prepend=0.0) / 2**BITS
            bits = torch.empty(n, dtype=torch.int32).random_(generator=g).numpy()
            table = ck.sample_table(np.full(n, v, np.uint8), bits, thresholds, guide,
                                    np.empty(n, np.uint8))  # fmt: skip
            direct = _direct_chain(name, c, v, n, rng)
            keep = probs * n >= 5
            for label, draws in (("table", table), ("direct", direct)):
                counts = np.bincount(draws, minlength=256).astype(np.float64)
                assert counts[~keep].sum() <= max(20, 3 * probs[~keep].sum() * n), label
                if keep.sum() < 2:  # (nearly) deterministic output, e.g. v = 0
                    assert counts[keep].sum() >= n - 20, f"{name} s{severity} v{v} {label}"
                    continue
                obs, exp = counts[keep], probs[keep] / probs[keep].sum() * counts[keep].sum()
                p = chisquare(obs, exp).pvalue
                assert p > 1e-4, f"{name} s{severity} v={v} {label}: chi-square p = {p:.2g}"


# ----------------------------------------------------------------------------- draw replay


def _t(arrays) -> torch.Tensor:
    return torch.as_tensor(np.stack(arrays))


def replay_elastic(images, severity, seeds):
    c = params("elastic_transform", severity)
    jit, ux, uy = [], [], []
    for s in seeds:
        rs = np.random.RandomState(s)
        jit.append(rs.uniform(-c[2], c[2], size=(3, 2)))
        ux.append(rs.uniform(-1, 1, size=(224, 224)))
        uy.append(rs.uniform(-1, 1, size=(224, 224)))
    return tb._elastic_apply(to_batch(images), c, _t(jit), _t(ux)[:, None], _t(uy)[:, None])


def replay_motion_blur(images, severity, seeds):
    angles = [float(np.random.RandomState(s).uniform(-45, 45)) for s in seeds]
    return tb._motion_blur_apply(to_batch(images), params("motion_blur", severity), angles)


def replay_snow(images, severity, seeds):
    c = params("snow", severity)
    layers, angles = [], []
    for s in seeds:
        rs = np.random.RandomState(s)
        layers.append(rs.normal(size=(224, 224), loc=c[0], scale=c[1]))
        angles.append(float(rs.uniform(-135, -45)))
    return tb._snow_apply(to_batch(images), c, _t(layers)[:, None], angles)


def replay_spatter(images, severity, seeds):
    c = params("spatter", severity)
    layers = [np.random.RandomState(s).normal(size=(224, 224), loc=c[0], scale=c[1]) for s in seeds]
    return tb._spatter_apply(to_batch(images), c, _t(layers)[:, None])


def replay_frost(images, severity, seeds):
    from robustbench_assemble.corruptions.frost import frost_textures

    shapes = [t.shape for t in frost_textures()]
    choices = []
    for s in seeds:
        rs = np.random.RandomState(s)
        idx = int(rs.randint(5))
        top = int(rs.randint(0, shapes[idx][0] - 224))
        left = int(rs.randint(0, shapes[idx][1] - 224))
        choices.append((idx, top, left))
    return tb._frost_apply(to_batch(images), params("frost", severity), choices)


def replay_fog(images, severity, seeds):
    """The CPU path on the reference's draws: per level, three k x k U[0, 1) fields."""
    c = params("fog", severity)
    fields = [[] for _ in range(24)]  # 8 levels (k = 1 .. 128) x 3
    for s in seeds:
        rs = np.random.RandomState(s)
        for f, k in zip(range(24), np.repeat(2 ** np.arange(8), 3)):
            fields[f].append(rs.random_sample((k, k)))
    return tb._fog_from_uniforms(to_batch(images), c, tuple(_t(f) for f in fields))


def replay_glass_blur(images, severity, seeds):
    _, d, iterations = params("glass_blur", severity)
    span = 224 - 2 * d
    offsets = [[] for _ in range(iterations)]
    for s in seeds:
        rs = np.random.RandomState(s)
        for it in range(iterations):
            # the reference visits h, w descending and draws (dx, dy) per pixel
            draws = np.array([rs.randint(-d, d, size=(2,)) for _ in range(span * span)])
            offsets[it].append(draws.reshape(span, span, 2)[::-1, ::-1])
    offsets = [torch.as_tensor(np.ascontiguousarray(np.stack(o))) for o in offsets]
    return tb._glass_apply(to_batch(images), params("glass_blur", severity), offsets)


REPLAYS = {
    "elastic_transform": replay_elastic,
    "motion_blur": replay_motion_blur,
    "snow": replay_snow,
    "spatter": replay_spatter,
    "frost": replay_frost,
    "fog": replay_fog,
    "glass_blur": replay_glass_blur,
}


#: Random corruptions whose CPU path gives the reference's pixels exactly on the reference's own
#: draws: all of them (glass_blur has its own tests below: its reference loop is slow).
EXACT_REPLAYS = ("elastic_transform", "motion_blur", "snow", "spatter", "frost", "fog")


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", EXACT_REPLAYS)
def test_replayed_draws_equal_reference(photos, saturated_photo, name, severity):
    """The CPU path on the reference's own draws: every value equal, white band included.
    Before 2026-11-26 (this test run against the previous code), values that differed per
    severity: elastic 1,658-3,968 (float32 grid_sample), motion_blur 3-25 (float32 tap sums),
    snow 0-6 (float32 tap sums, zoom of its layer, gray and final sum), spatter 0 at s1-s3 and
    2-4 at s4-s5 (float32 blur of the mud mask), fog 2-6 (float32 map and blend); frost was
    exact."""
    images, seeds = [photos[0], saturated_photo] * 2, [11, 13, 14, 15]
    ours = to_numpy(REPLAYS[name](images, severity, seeds))
    ref = reference_batch(images, name, severity, seeds)
    assert np.array_equal(ours, ref), f"{name} s{severity}: {(ours != ref).sum()} values"


@pytest.mark.parametrize("severity", [1, 5])
def test_glass_blur_loop_equals_reference(saturated_photo, severity):
    """The CPU path (float64 blurs, the sequential pixel loop compiled) on the reference's own
    draws: every value equal, white background included (float32 blurs left 400-703 values of
    it one level lower)."""
    ours = to_numpy(replay_glass_blur([saturated_photo], severity, [5]))
    ref = reference_batch([saturated_photo], "glass_blur", severity, [5])
    assert np.array_equal(ours, ref), f"glass_blur s{severity}: {(ours != ref).sum()} values"


@pytest.mark.parametrize("decay", [3, 2, 1.7, 1.5, 1.4])
def test_plasma_kernel_equals_reference_map(decay):
    """fog's compiled float64 map against the reference's ``plasma_fractal`` on the same
    stream, value for value (every wibble decay fog uses)."""
    from robustbench_assemble.corruptions import cpu_kernels as ck

    ic = reference.load()
    np.random.seed(7)  # noqa: NPY002  (the reference draws from the global stream)
    ref = ic.corruptions.plasma_fractal(wibbledecay=decay)
    rs = np.random.RandomState(7)
    fields = [rs.random_sample((k, k)).ravel() for k in np.repeat(2 ** np.arange(8), 3)]
    ours = np.empty((1, 256, 256))
    ck.plasma_fractal(np.concatenate(fields)[None], float(decay), 0, 1, ours)
    assert np.array_equal(ours[0], ref)


def test_device_paths_agree_with_the_exact_cpu_path(photos, saturated_photo):
    """The accelerator paths (motion's float32 batched gathers, fog's float32 diamond-square
    and blend, snow's formula gray, elastic's grid_sample) run on CPU tensors too: they must
    match the CPU engine's exact path up to float32 ties (a wrong tap offset, map update,
    blend or border would move most values)."""
    import cv2

    from robustbench_assemble.corruptions import cpu_kernels as ck
    from robustbench_assemble.corruptions.motion import motion_blur_kernel, motion_blur_offsets

    x = to_batch([*photos[:2], saturated_photo])
    weights = motion_blur_kernel(15, 5)
    offsets = [motion_blur_offsets(len(weights), a) for a in (-40.0, 7.5, 44.0)]
    exact = tb._motion(x, 15, 5, [-40.0, 7.5, 44.0])
    device = tb._motion_device(x, weights, offsets)
    assert (exact != device).float().mean() < 1e-3 and (exact.int() - device.int()).abs().max() <= 1

    c = params("fog", 3)
    uniforms = tb._plasma_uniforms(x, c, torch.Generator().manual_seed(0))[0]
    exact = tb._fog_from_uniforms(x, c, uniforms)
    it = iter(uniforms)
    plasma = ops.plasma_fractal_batch(
        3, 256, c[1], None, torch.device("cpu"), dtype=tb.DTYPE, uniform=lambda s: next(it)
    )
    device = tb._fog_apply(x, c, plasma)
    assert (exact != device).float().mean() < 1e-3 and (exact.int() - device.int()).abs().max() <= 1

    levels = torch.randint(0, 256, (3, 1, 224, 224), dtype=torch.uint8)
    levels[levels < 200] = 0  # sparse flakes, as the thresholded blurred layer
    xn, out = x.numpy(), torch.empty_like(x)
    gray = np.stack([cv2.cvtColor(np.ascontiguousarray(i.transpose(1, 2, 0), dtype=np.float32)
                                  / 255.0, cv2.COLOR_RGB2GRAY) for i in xn])  # fmt: skip
    ck.snow_blend(xn, gray, levels[:, 0].contiguous().numpy(), 0.7, 0, 3, out.numpy())
    device = tb._snow_blend_device(x, levels, 0.7)
    assert (out != device).float().mean() < 1e-3 and (out.int() - device.int()).abs().max() <= 1

    c = params("elastic_transform", 2)  # float32 fields take the accelerator path
    jitter, ux, uy = tb._elastic_fields(3, 224, 224, c, torch.Generator().manual_seed(2), x.device)
    exact = tb._elastic_apply(x, c, jitter, ux, uy)
    device = tb._elastic_apply(x, c, jitter, ux.float(), uy.float())
    # measured 0.3-0.5 % of values one level apart (float32 interpolation of the white band)
    assert (exact != device).float().mean() < 0.01 and (exact.int() - device.int()).abs().max() <= 1


#: Corruptions whose device path reads values back to the host (angles, texture crops, the
#: JPEG codec, the water mask, glass's pointer doubling), so they cannot run on "meta".
_HOST_READS = ("glass_blur", "motion_blur", "snow", "frost", "jpeg_compression")


@pytest.mark.parametrize("severity", [1, 5])
def test_device_paths_run_on_the_meta_device(severity):
    """The accelerator code (never run in CPU-only CI) on "meta" tensors: shapes, dtypes and
    devices flow through every device branch without data, so an API or dtype mistake there
    fails here rather than on the first GPU (motion and snow by their apply steps)."""
    x = torch.empty((2, 3, 224, 224), dtype=torch.uint8, device="meta")
    for name in CORRUPTIONS:
        if name in _HOST_READS or (name == "spatter" and severity < 4):  # water: OpenCV mask
            continue
        y = corrupt_batch(x, name, severity)
        assert (y.shape, y.dtype, y.device.type) == (x.shape, torch.uint8, "meta"), name
    layer = torch.empty((2, 1, 224, 224), dtype=torch.float64, device="meta")
    for y in (
        tb._motion_blur_apply(x, params("motion_blur", severity), [10.0, -30.0]),
        tb._snow_apply(x, params("snow", severity), layer, [-60.0, -100.0]),
    ):
        assert (y.shape, y.dtype, y.device.type) == (x.shape, torch.uint8, "meta")


def test_elastic_resample_equals_scipy_map_coordinates():
    """The compiled resampler against scipy's ``map_coordinates(order=1, mode='reflect')``
    itself, value for value, at positions that exercise every branch of scipy's reflection:
    far outside (several periods), exactly on the border, -1e-16, half-integers, ties."""
    from scipy.ndimage import map_coordinates

    from robustbench_assemble.corruptions import cpu_kernels as ck

    rng = np.random.default_rng(0)
    h, w = 7, 9
    planes = rng.random((1, 2, h, w), dtype=np.float32)
    planes[0, 1] = 1.0  # a saturated plane: must stay exactly 1
    special = [0.0, -1e-16, -0.5, -1.0, -h, -w, -2.0 * w, -2.0 * w - 0.25, -5.0 * w + 0.5,
               h - 1.0, h - 0.5, w - 1.0, w + 0.5, 2.0 * w, 3.0 * h + 0.75, 1e-16, 0.5]  # fmt: skip
    fields = rng.uniform(-4 * w, 4 * w, size=(1, 2, h, w))
    flat = fields.reshape(2, -1)
    flat[:, : len(special)] = special
    flat[1, ::3] = np.round(flat[1, ::3])  # integers
    fields = fields.astype(np.float32).astype(np.float64)  # alpha = 1: positions exact
    ours = np.empty_like(planes)
    ck.elastic_resample(planes, fields, 1.0, 0, 1, ours)
    rows = np.arange(h)[:, None] + fields[0, 1]
    cols = np.arange(w)[None, :] + fields[0, 0]
    for k in range(2):
        ref = map_coordinates(planes[0, k], np.stack((rows, cols)), order=1, mode="reflect")
        assert np.array_equal(ours[0, k], ref), f"plane {k}: {(ours[0, k] != ref).sum()} values"
    assert (ours[0, 1] == 1.0).all()


@pytest.mark.slow
@pytest.mark.parametrize("severity", SEVERITIES)
def test_glass_blur_all_severities_slow(photos, severity):
    ours = to_numpy(replay_glass_blur(photos[:2], severity, [21, 22]))
    ref = reference_batch(photos[:2], "glass_blur", severity, [21, 22])
    print(f"glass_blur s{severity}: replayed draws, MAD vs reference {mad(ours, ref):.4f}")
    assert np.array_equal(ours, ref), f"glass_blur s{severity}: {(ours != ref).sum()} values"


# ----------------------------------------------------------------------------- strength


def strength(images: np.ndarray, corrupted: np.ndarray) -> float:
    return float(np.abs(corrupted.astype(np.float64) - images.astype(np.float64)).mean())


@pytest.mark.parametrize("name", PER_PIXEL_RANDOM)
def test_noise_strength_matches_reference(photos, batch, name):
    clean = np.stack(photos)
    for severity in SEVERITIES:
        ours = to_numpy(corrupt_batch(batch, name, severity, torch.Generator().manual_seed(3)))
        ref = reference_batch(photos, name, severity, range(len(photos)))
        a, b = strength(clean, ours), strength(clean, ref)
        print(f"{name} s{severity}: strength ours {a:.3f} reference {b:.3f} ratio {a / b:.3f}")
        assert abs(a / b - 1) < 0.02, f"{name} s{severity}: ours {a:.3f} vs reference {b:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", RANDOM)
def test_random_strength_matches_reference_slow(name):
    """48 photos x 2 draws. Corruptions with few draws per image (affine jitter, angle,
    texture, plasma) vary a lot from image to image, so the bound is 3 standard errors of the
    ratio (at least 2 %, at most 10 %)."""
    from conftest import sample_files

    from robustbench_assemble.images import load_benchmark_image

    files = sample_files(48, stride=20)
    if len(files) < 48:
        pytest.skip("ImageNet sample not found")
    photos = [load_benchmark_image(f) for f in files]
    clean = np.stack(photos).astype(np.float64)
    x = to_batch(photos)
    rounds = 1 if name == "glass_blur" else 2  # the reference loop takes ~1 s per image
    for severity in [1] if name == "glass_blur" else SEVERITIES:
        ours, ref = [], []
        for r in range(rounds):
            g = torch.Generator().manual_seed(9 + r)
            out = to_numpy(corrupt_batch(x, name, severity, g)).astype(np.float64)
            ours.append(np.abs(out - clean).mean(axis=(1, 2, 3)))
            seeds = range(1000 * r, 1000 * r + len(photos))
            out = reference_batch(photos, name, severity, seeds).astype(np.float64)
            ref.append(np.abs(out - clean).mean(axis=(1, 2, 3)))
        a, b = np.concatenate(ours), np.concatenate(ref)
        ratio = a.mean() / b.mean()
        se = ratio * np.hypot(a.std(ddof=1) / a.mean(), b.std(ddof=1) / b.mean()) / np.sqrt(a.size)
        print(f"{name} s{severity}: strength ours {a.mean():.3f} reference {b.mean():.3f} "
              f"ratio {ratio:.3f} +- {se:.3f}")  # fmt: skip
        assert abs(ratio - 1) < min(0.10, max(0.02, 3 * se)), f"{name} s{severity}"


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cuda_matches_cpu_and_reference(photos):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = to_batch(photos[:4])
    xc = x.cuda()
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            g = torch.Generator(device="cuda").manual_seed(4)
            out = corrupt_batch(xc, name, severity, g)
            assert out.device == xc.device and out.dtype == torch.uint8 and out.shape == x.shape
            again = corrupt_batch(xc, name, severity, torch.Generator(device="cuda").manual_seed(4))
            assert torch.equal(out, again), f"{name} s{severity} not reproducible on CUDA"
            if name in DETERMINISTIC:
                cpu = to_numpy(corrupt_batch(x, name, severity))
                # measured on an H200: <= 0.16 (saturate s3: CUDA fuses multiply-adds, so values
                # the reference puts exactly on an integer can truncate one level lower)
                assert mad(to_numpy(out), cpu) < 0.25, f"{name} s{severity} CPU vs CUDA"
    with pytest.raises(ValueError, match="generator"):
        corrupt_batch(xc, "gaussian_noise", 1, torch.Generator())


def _device_strength_vs_cpu(device: str, n_photos: int = 32, rounds: int = 2) -> dict:
    """Per random corruption and severity: the device engine's strength (mean |corrupted -
    clean|) over the CPU engine's, which replays the reference exactly given its random
    numbers (so this is the device against the reference, one step removed), with one
    standard error of the ratio. Different streams on the two sides, the same photos: the
    error is the paired one (photo by photo, each photo's mean over its draws), so the spread
    between photos, which cancels in the ratio, does not widen the bound."""
    from conftest import sample_files

    from robustbench_assemble.images import load_benchmark_image

    files = sample_files()  # spread over the classes of whatever sample is there
    if len(files) < n_photos:
        pytest.skip(f"needs an ImageNet sample of {n_photos} photos")
    files = files[:: len(files) // n_photos][:n_photos]
    photos = [load_benchmark_image(f) for f in files]
    clean = np.stack(photos).astype(np.float64)
    x = to_batch(photos)
    xd = x.to(device)
    out = {}
    for name in RANDOM:
        for severity in SEVERITIES:
            dev, cpu = np.zeros(n_photos), np.zeros(n_photos)
            for r in range(rounds):
                g = torch.Generator(device=device).manual_seed(20 + r)
                y = to_numpy(corrupt_batch(xd, name, severity, g)).astype(np.float64)
                dev += np.abs(y - clean).mean(axis=(1, 2, 3)) / rounds
                y = corrupt_batch(x, name, severity, torch.Generator().manual_seed(40 + r))
                cpu += np.abs(to_numpy(y).astype(np.float64) - clean).mean(axis=(1, 2, 3)) / rounds
            ratio = dev.mean() / cpu.mean()
            se = np.std(dev - ratio * cpu, ddof=1) / cpu.mean() / np.sqrt(n_photos)
            out[name, severity] = (ratio, se)
    return out


@pytest.mark.gpu
def test_cuda_random_corruptions_have_the_cpu_engines_strength():
    """The device paths of the random corruptions (float32 warps, blends and draws) against
    the CPU engine, 32 photos x 2 draws. Bound: 3.5 paired standard errors of the ratio, at
    least 2 %, at most 15 % (spatter s1, a thresholded liquid layer, moves by ~6 % from one
    draw to the next; the blurs by under 1 %, so a device path using the next severity's
    parameters, 8-11 % stronger, fails)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    bad = []
    for (name, severity), (ratio, se) in _device_strength_vs_cpu("cuda").items():
        print(f"cuda/cpu strength {name} s{severity}: {ratio:.3f} +- {se:.3f}")
        if abs(ratio - 1) >= min(0.15, max(0.02, 3.5 * se)):
            bad.append(f"{name} s{severity} {ratio:.3f} +- {se:.3f}")
    assert not bad, bad


def test_cpu_thread_pool_under_inference_mode(photos):
    """The evaluation harness calls corrupt_batch inside torch.inference_mode(); the CPU
    thread pool must carry that mode into its threads (it is thread-local)."""
    x = torch.from_numpy(np.stack(photos[:4])).permute(0, 3, 1, 2).contiguous()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(0)
        want = corrupt_batch(x, "gaussian_blur", 2, generator=g)
        with torch.inference_mode():
            xi = x.clone()
            got = corrupt_batch(xi, "gaussian_blur", 2, generator=torch.Generator().manual_seed(0))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(got, want)


def test_empty_batch_for_every_corruption():
    """0 images: an empty batch back (6 corruptions failed with obscure errors before)."""
    x = torch.empty((0, 3, 224, 224), dtype=torch.uint8)
    for name in CORRUPTIONS:
        y = corrupt_batch(x, name, 3, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.dtype == torch.uint8, name
