"""The release's video compression step of generated ImageNet-P (perturbations/codec.py).

The reference wrote each sequence as PNGs and ran ``ffmpeg -r 1 -framerate 1 -i img%01d.png
-vcodec libx264 [-tune grain | -crf 20] -preset veryslow out.mp4`` (hendrycks/robustness,
ImageNet-P/create_p/make_imagenet_p.py); the tests run exactly that command (plus our one
thread) and read the MP4 with the release reader.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import sample_files
from PIL import Image

from robustbench_assemble.datasets.imagenet_p import open_imagenet_p, read_mp4
from robustbench_assemble.eval.protocol import protocol_departures
from robustbench_assemble.evaluate_p import evaluate_imagenet_p
from robustbench_assemble.images import load_rgb
from robustbench_assemble.make_imagenet_p import generate
from robustbench_assemble.perturbations import make_sequence, sequence_seed
from robustbench_assemble.perturbations.codec import (
    CODEC_ATTRS,
    apply_codec,
    ffmpeg_executable,
)


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    files = sample_files(2, stride=500)
    if not files:
        pytest.skip("ImageNet sample not found")
    return files


@pytest.fixture(scope="module")
def mini_val(photos, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("val")
    for f in photos:
        (root / f.parent.name).mkdir()
        os.symlink(f, root / f.parent.name / f.name)
    return root


def _reference_command(frames: np.ndarray, name: str, folder: Path) -> np.ndarray:
    """The reference's way: PNG files -> the ffmpeg CLI -> an MP4, read back as released."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img{i}.png")
    rate = ["-tune", "grain"] if "noise" in name else ["-crf", "20"]
    out = folder / "out.mp4"
    subprocess.run(
        [ffmpeg_executable(), "-loglevel", "error", "-r", "1", "-framerate", "1",
         "-i", str(folder / "img%01d.png"), "-vcodec", "libx264", *rate, "-preset", "veryslow",
         "-threads", "1", "-y", str(out)],
        check=True,
    )  # fmt: skip
    return read_mp4(out)


@pytest.mark.parametrize("name", ["gaussian_noise", "rotate"])
def test_codec_equals_the_reference_ffmpeg_command(photos, tmp_path, name):
    frames = make_sequence(load_rgb(photos[0]), name, 1, seed=3)
    ours = apply_codec(frames, name, "x264")
    assert np.array_equal(ours, _reference_command(frames, name, tmp_path / "ref"))
    # it is lossy, by the release's amount: ~1 level at crf 20, ~4 levels for grain-tuned noise
    error = np.abs(ours.astype(int) - frames).mean()
    assert (3.0 < error < 6.0) if name == "gaussian_noise" else (0.5 < error < 2.0)


def test_codec_is_reproducible_whatever_ran_before(photos):
    frames = make_sequence(load_rgb(photos[1]), "rotate", 1, seed=0)
    first = apply_codec(frames, "rotate", "x264")
    apply_codec(make_sequence(load_rgb(photos[0]), "shot_noise", 1, seed=0), "shot_noise", "x264")
    assert np.array_equal(apply_codec(frames, "rotate", "x264"), first)
    assert apply_codec(frames, "rotate", "none") is frames
    with pytest.raises(ValueError, match="--codec 'h265'"):
        apply_codec(frames, "rotate", "h265")


def test_generate_stores_the_decoded_release_frames(mini_val, tmp_path):
    (path,) = generate(
        mini_val, tmp_path, perturbations=["brightness"], difficulties=[1], seed=2, progress=False
    )  # fmt: skip (codec x264: the default)
    ds = open_imagenet_p(tmp_path, "brightness", 1)
    assert ds.codec == CODEC_ATTRS["x264"]
    with h5py.File(path, "r") as f:
        assert f.attrs["codec"] == CODEC_ATTRS["x264"]
    for i, rel in enumerate(ds.filenames):
        raw = make_sequence(load_rgb(mini_val / rel), "brightness", 1,
                            seed=sequence_seed(2, rel, "brightness", 1))  # fmt: skip
        assert np.array_equal(ds[i][0], apply_codec(raw, "brightness", "x264"))
    # a finished file made with other settings is refused, not silently reused
    with pytest.raises(ValueError, match="codec="):
        generate(mini_val, tmp_path, perturbations=["brightness"], difficulties=[1], seed=2,
                 codec="none", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="seed="):
        generate(mini_val, tmp_path, perturbations=["brightness"], difficulties=[1], seed=3,
                 progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="image list"):
        generate(mini_val, tmp_path, perturbations=["brightness"], difficulties=[1], seed=2,
                 limit=1, progress=False)  # fmt: skip


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(3 * 8 * 8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1))


def test_prediction_cache_follows_the_data_not_the_file_name(mini_val, tmp_path):
    data, cache = tmp_path / "p", tmp_path / "cache"
    kw = dict(perturbations=["gaussian_noise"], difficulties=[1], progress=False)
    generate(mini_val, data, seed=0, codec="none", **kw)
    first = evaluate_imagenet_p(_Tiny().eval(), data, cache_dir=cache, **kw)
    (data / "gaussian_noise.h5").unlink()
    generate(mini_val, data, seed=1, codec="none", **kw)  # same name, other frames
    again = evaluate_imagenet_p(_Tiny().eval(), data, cache_dir=cache, **kw)
    fresh = evaluate_imagenet_p(_Tiny().eval(), data, **kw)
    assert again == fresh
    assert first != fresh  # the new frames do give other numbers: the cache had to go


def test_lossless_frames_against_the_published_baseline_are_footnoted():
    config = {"codecs": [CODEC_ATTRS["none"]], "fp_baseline": "alexnet"}
    footnote, _ = protocol_departures(config)
    assert "--codec none" in footnote
    assert protocol_departures({**config, "codecs": [CODEC_ATTRS["x264"]]}) == (None, [])
    # a measured AlexNet on the same lossless data is a like-for-like baseline
    assert protocol_departures({**config, "fp_baseline": "results/alexnet"}) == (None, [])
