"""The fast JPEG path (simplejpeg's libjpeg-turbo) gives exactly PIL's pixels, or steps aside.

PIL is the reference decoder (Hendrycks' evaluation reads the frames through torchvision's
ImageFolder, i.e. PIL); every comparison here is against ``np.asarray(load_rgb(path))``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbench_assemble import images
from robustbench_assemble.images import ImageReadError, fast_jpeg_rgb, load_rgb
from robustbench_assemble.make_imagenet_c import encode_jpeg

pytest.importorskip("simplejpeg")


def pil_pixels(path: Path) -> np.ndarray:
    return np.asarray(load_rgb(path))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def frames(photos, tmp_path) -> list[Path]:
    """The 8 real photos as ImageNet-C stores frames (224x224, PIL q85, optimize), plus the
    same photos saved with other JPEG options (4:4:4, progressive, q95, q30)."""
    out = [write(tmp_path / f"f{i}.jpg", encode_jpeg(p)) for i, p in enumerate(photos)]
    options = [dict(subsampling=0), dict(progressive=True), dict(quality=95), dict(quality=30)]
    for i, (p, kw) in enumerate(zip(photos, options, strict=False)):
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, "JPEG", **kw)
        out.append(write(tmp_path / f"o{i}.jpg", buf.getvalue()))
    return out


def test_fast_path_equals_pil_exactly(frames):
    for path in frames:
        fast = fast_jpeg_rgb(path)
        assert fast is not None, f"{path.name}: the fast path should apply to a YCbCr JPEG"
        assert np.array_equal(fast, pil_pixels(path)), path.name


def test_fast_path_decodes_into_a_batch_row(frames):
    batch = np.zeros((3, 224, 224, 3), np.uint8)
    got = fast_jpeg_rgb(frames[0], batch[1])
    assert got is not None and np.shares_memory(got, batch[1])
    assert np.array_equal(batch[1], pil_pixels(frames[0])) and not batch[0].any()
    assert fast_jpeg_rgb(frames[0], np.zeros((200, 224, 3), np.uint8)) is None  # other size


def test_fast_path_steps_aside_for_other_files(photos, tmp_path):
    """Grayscale and CMYK JPEGs, PNGs, truncated and missing files: None, and the dataset's
    reader gives PIL's pixels or PIL's error naming the file."""
    from robustbench_assemble.datasets.imagenet import Sample
    from robustbench_assemble.datasets.imagenet_c import ImageNetC

    rgb = Image.fromarray(photos[0])
    cases = {}
    for name, image, fmt in (("gray.jpg", rgb.convert("L"), "JPEG"),
                             ("cmyk.jpg", rgb.convert("CMYK"), "JPEG"),
                             ("png.JPEG", rgb, "PNG")):  # fmt: skip
        buf = io.BytesIO()
        image.save(buf, fmt)
        cases[name] = write(tmp_path / name, buf.getvalue())
    good = encode_jpeg(photos[0])
    truncated = write(tmp_path / "truncated.jpg", good[: len(good) // 2])
    missing = tmp_path / "missing.jpg"

    reader = ImageNetC.__new__(ImageNetC)  # only .image() is used
    for path in [*cases.values(), truncated, missing]:
        assert fast_jpeg_rgb(path) is None, path.name
    for path in cases.values():
        got = reader.image(Sample(path.name, path, 0))
        assert np.array_equal(got, pil_pixels(path)), path.name
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        reader.image(Sample("truncated.jpg", truncated, 0))
    with pytest.raises(FileNotFoundError):
        reader.image(Sample("missing.jpg", missing, 0))


def test_a_decoder_that_disagrees_with_pil_is_turned_off(frames, monkeypatch):
    """The per-process check: if simplejpeg's pixels differ from PIL's (another libjpeg
    build), the first fast decode warns and returns None, and later calls use PIL."""
    simplejpeg = pytest.importorskip("simplejpeg")
    monkeypatch.setitem(images._FAST_JPEG, "checked", False)
    monkeypatch.setitem(images._FAST_JPEG, "ok", True)
    real = simplejpeg.decode_jpeg
    calls = []

    def off_by_one(data, **kw):
        calls.append(1)
        pixels = real(data, **kw)
        pixels[0, 0, 0] ^= 1
        return pixels

    monkeypatch.setattr(simplejpeg, "decode_jpeg", off_by_one)
    with pytest.warns(RuntimeWarning, match="differently from PIL"):
        assert fast_jpeg_rgb(frames[0]) is None
    assert fast_jpeg_rgb(frames[1]) is None and len(calls) == 1
    assert images._FAST_JPEG == {"checked": True, "ok": False}


@pytest.fixture(scope="module")
def imagenet_c(sample_dir: Path, tmp_path_factory) -> Path:
    """One cell of 8 images made by our generator."""
    from robustbench_assemble.make_imagenet_c import main as make_c

    out = tmp_path_factory.mktemp("imagenet_c_images")
    argv = ["--src", str(sample_dir), "--out", str(out), "--limit", "8", "--workers", "0"]
    assert make_c([*argv, "--corruptions", "contrast", "--severities", "1"]) == 0
    return out


def test_imagenet_c_batch_is_pil_pixels(sample_dir, imagenet_c):
    """The loader's batch path (decoded straight into the batch) against PIL, per file."""
    from robustbench_assemble.datasets.imagenet import find_classes
    from robustbench_assemble.datasets.imagenet_c import ImageNetC

    cell = ImageNetC(imagenet_c, "contrast", 1, find_classes(sample_dir))
    batch, labels = cell.batch(range(len(cell)))
    for k, s in enumerate(cell.samples):
        assert np.array_equal(batch[k].numpy(), pil_pixels(s.path)) and labels[k] == s.label
    cell.fast_jpeg = False
    assert cell.image_into(cell.samples[0], np.empty((224, 224, 3), np.uint8)) is False


@pytest.mark.slow
def test_fast_path_equals_pil_on_the_whole_sample(sample_dir, tmp_path):
    """All 1,000 sample photos as q85 frames: simplejpeg's pixels are PIL's, every one."""
    from robustbench_assemble.images import load_benchmark_image

    files = sorted(Path(sample_dir).glob("*/*"))
    assert len(files) >= 1000
    path = tmp_path / "frame.jpg"
    for f in files:
        write(path, encode_jpeg(load_benchmark_image(f)))
        fast = fast_jpeg_rgb(path)
        assert fast is not None and np.array_equal(fast, pil_pixels(path)), f.name
