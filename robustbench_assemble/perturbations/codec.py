"""The release's video compression step, applied to generated sequences before they are stored.

Why: the released ImageNet-P is one MP4 per image, written by the ffmpeg CLI (``-r 1
-framerate 1 -vcodec libx264 -preset veryslow``, plus ``-tune grain`` for noise and ``-crf 20``
for the others, from RGB PNGs, so yuv444p), and AlexNet's published flip probabilities, which
mFR divides by, were measured on those compressed frames. The codec error moves flip
probabilities (noise FP down by a fifth to two fifths; a pretrained EfficientNet-Lite0's mFR
55.9 lossless vs 52.0 through the codec on 40 photos, docs/FIDELITY.md). So
``make_imagenet_p`` stores, by default, what a reader of the release decodes: each sequence
encoded with those settings and decoded again, as ``make_imagenet_c`` keeps the release's q85
JPEG step.

Encoding runs the ffmpeg CLI once per sequence (``imageio-ffmpeg`` ships the binary), as the
reference did, and not libx264 inside this process: in one process, libx264 at ``veryslow``
gives different frames for the same input depending on what it encoded before (measured with
PyAV's libx264: 60 % of the values of a rotate sequence differ, mean 1.0 level, as much as the
codec error itself; docs/FIDELITY.md), while a fresh process is reproducible. Our output equals
the reference's own command (PNG files -> ffmpeg -> MP4 -> decoded) bit for bit
(tests/test_codec.py). One encoder thread (``-threads 1``): x264's output depends on its
thread count, so the release's exact bytes (ffmpeg's default, a thread per core) are not
reproducible on another machine anyway; with one thread ours are, whatever the machine or
worker count. The raw H.264 stream is decoded by FFmpeg through PyAV, as
:func:`robustbench_assemble.datasets.imagenet_p.read_mp4` decodes the release.
"""

from __future__ import annotations

import io
import subprocess

import numpy as np

from .params import is_noise

#: ``make_imagenet_p --codec`` choices: the release's compression, or lossless frames.
CODECS = ("x264", "none")
#: What the HDF5 ``codec`` attribute records for each choice.
CODEC_ATTRS = {
    "x264": "ffmpeg libx264 veryslow, tune grain (noise) / crf 20, yuv444p, 1 fps, 1 thread",
    "none": "none (lossless frames)",
}
#: The ``codec`` attribute of frames imported from the released MP4 files.
RELEASED_CODEC = "released MP4 (ffmpeg libx264)"


def check_codec(codec: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: expected one of {', '.join(CODECS)}")
    return codec


def ffmpeg_executable() -> str:
    """The ffmpeg binary: ``IMAGEIO_FFMPEG_EXE`` if set, else the one imageio-ffmpeg ships."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # a dependency; only a broken install lacks it
        raise RuntimeError(
            "make_imagenet_p --codec x264 needs ffmpeg: pip install imageio-ffmpeg "
            "(or pass --codec none for lossless frames, which are not the release's)"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def x264_arguments(name: str) -> list[str]:
    """The reference's libx264 settings for perturbation ``name`` (plus one thread)."""
    rate = ["-tune", "grain"] if is_noise(name) else ["-crf", "20"]
    return ["-vcodec", "libx264", *rate, "-preset", "veryslow", "-pix_fmt", "yuv444p",
            "-threads", "1"]  # fmt: skip


def encode_h264(frames: np.ndarray, name: str) -> bytes:
    """(T, H, W, 3) uint8 RGB -> a raw H.264 stream, encoded as the release was for ``name``."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape}")
    t, h, w, _ = frames.shape
    command = [
        ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "1", "-framerate", "1",
        "-i", "pipe:0", *x264_arguments(name), "-f", "h264", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(command, input=frames.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(
            f"ffmpeg failed to encode a {name} sequence ({t} frames {w}x{h}): "
            f"{proc.stderr.decode(errors='replace').strip()[-500:]}"
        )
    return proc.stdout


def decode_h264(data: bytes) -> np.ndarray:
    """A raw H.264 stream -> (T, H, W, 3) uint8 RGB (FFmpeg through PyAV, as ``read_mp4``)."""
    import av

    with av.open(io.BytesIO(data), "r", format="h264") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def apply_codec(frames: np.ndarray, name: str, codec: str) -> np.ndarray:
    """``frames`` as stored under ``codec``: through the release's x264 settings and back, or
    unchanged for ``"none"``."""
    if check_codec(codec) == "none":
        return frames
    out = decode_h264(encode_h264(frames, name))
    if out.shape != frames.shape:
        raise RuntimeError(f"x264 round trip of {name}: {frames.shape} in, {out.shape} out")
    return out
