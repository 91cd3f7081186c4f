"""Where a run's settings depart from the published protocol, said in the result files.

Why: a leaderboard reader sees ``corruptions_mce`` / ``mfr`` and the ``footnote``, rarely
``details.config``. A run on corruptions made on the fly, on nvjpeg-decoded frames, on frames
resized for a non-224 model, on a subset or with untrained weights still computes every field,
so the departures travel with the numbers: in the RobustBench ``footnote`` (the ones that change
what the numbers are) and in ``details.notes`` (all of them, precision included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..images import CLOVAAI_256_FRAMES, JPEG_QUALITY, RELEASED_FRAMES
from ..models.transforms import FRAME_SIZE
from ..perturbations.codec import CODEC_ATTRS

#: Images of ImageNet val, hence of every ImageNet-C cell (the reference corrupts them all).
IMAGENET_VAL_IMAGES = 50_000
#: Fewer ImageNet-P videos per dataset than classes is a subset whatever the release holds.
MIN_P_VIDEOS = 1_000


def data_size_departure(sizes: Sequence[int], dataset: str, limit: int | None) -> str | None:
    """How the evaluated data falls short of the benchmark, from its per-cell sizes (images
    per ImageNet-C cell, or videos per ImageNet-P dataset); None if it does not.

    Why: ``--limit`` is not the only way to a subset (a generated folder of a few classes, a
    copy with files missing), and an mCE over 2 images per cell looks like any other."""
    sizes = [int(n) for n in sizes]
    if not sizes:
        return None
    lo, hi = min(sizes), max(sizes)
    unit = "images per cell" if dataset == "imagenet_c" else "videos per dataset"
    if lo != hi:
        return f"the evaluated cells differ in size ({lo:,} to {hi:,} {unit})"
    via = f" (--limit {limit})" if limit is not None else ""
    if dataset == "imagenet_c" and hi < IMAGENET_VAL_IMAGES:
        return f"{hi:,} {unit}{via}, not all {IMAGENET_VAL_IMAGES:,} ImageNet val images"
    if dataset == "imagenet_p" and hi < MIN_P_VIDEOS:
        return f"only {hi:,} {unit}{via}, fewer than one per class"
    if limit is not None:
        return f"a fixed subset of the data{via}: {hi:,} {unit}"
    return None


def _regenerated(made: Mapping[str, Any] | None, frames: int) -> str | None:
    """How ImageNet-C files depart from the released frames, from the generator's record
    (``made``; None: no record, e.g. the released files) and the files' frame size."""
    if made is None:
        if frames == FRAME_SIZE:
            return None
        return (
            f"ImageNet-C files of {frames}px frames with no generator record, not the released "
            f"{FRAME_SIZE}px frames"
        )
    if dict(made) == RELEASED_FRAMES:
        return None
    if dict(made) == CLOVAAI_256_FRAMES:
        return (
            "ImageNet-C regenerated as clovaai/assembled-cnn's validation_292_256 (Resize 292 + "
            f"CenterCrop 256, its rounding), not the released {FRAME_SIZE}px frames"
        )
    return (
        f"ImageNet-C regenerated at Resize({made.get('resize')}) + CenterCrop({made.get('crop')}) "
        f"({made.get('geometry')} rounding), not the released Resize(256) + CenterCrop(224) frames"
    )


def _on_the_fly_departure(jpeg_quality: int | None) -> str:
    """Runs from before ``on_the_fly_jpeg`` was recorded had no JPEG save: absent = None."""
    if jpeg_quality is None:
        return (
            "ImageNet-C corrupted on the fly (corrupt_batch) without the release's "
            f"q{JPEG_QUALITY} JPEG save (cells differ from the files' by several points)"
        )
    release = "" if jpeg_quality == JPEG_QUALITY else f" (the release saved at q{JPEG_QUALITY})"
    return (
        f"ImageNet-C corrupted on the fly (corrupt_batch) and saved as JPEG q{jpeg_quality} in "
        f"memory{release}, not read from the released files (random corruptions draw other "
        "noise)"
    )


def protocol_departures(
    config: Mapping[str, Any], sizes: Sequence[int] = (), dataset: str = "imagenet_c"
) -> tuple[str | None, list[str]]:
    """(footnote, notes) for the departures recorded in a run's ``config`` and in the sizes of
    its cells (``sizes``, see :func:`data_size_departure`).

    Keys read (an absent key is taken as the protocol's setting): ``trained_weights``,
    ``smoke_sample``, ``source``, ``decode``, ``resize_policy``, ``frame_size``,
    ``frame_geometry``, ``preprocessing``
    (``input_size``, ``resize_backend``), ``reference_resize_backend``, ``codecs``,
    ``origins`` and ``fp_baseline`` (ImageNet-P), ``limit``, ``precision``, and
    ``on_the_fly_jpeg`` (absent: no save, as runs made before it was recorded).
    The smoke sample has its own footnote, so neither its on-the-fly source nor its size is
    repeated. Precision goes to the notes only: a numerical choice of the forward pass, not a
    change of the data.
    """
    departures: list[str] = []
    if config.get("source") == "on-the-fly" and not config.get("smoke_sample"):
        departures.append(_on_the_fly_departure(config.get("on_the_fly_jpeg")))
    if config.get("decode") == "gpu":
        departures.append(
            "ImageNet-C frames decoded with nvjpeg (--decode gpu), not libjpeg as in the "
            "reference (about 30 % of pixel values differ)"
        )
    size = (config.get("preprocessing") or {}).get("input_size", FRAME_SIZE)
    frames = config.get("frame_size") or FRAME_SIZE
    made = config.get("frame_geometry")
    policy = config.get("resize_policy")
    if size != FRAME_SIZE and policy == "native":
        departures.append(
            f"corrupted at the model's {size}px crop (resize_policy native, the way "
            f"clovaai/assembled-cnn evaluated), not as the released {FRAME_SIZE}px frames"
        )
    else:
        if config.get("source") == "files":
            made_note = _regenerated(made, frames)
            if made_note:
                departures.append(made_note)
        if size != frames and policy == "as-is":
            departures.append(
                f"the {frames}px frames were fed unchanged to a model evaluated at {size}px "
                "(resize_policy as-is)"
            )
        elif size != frames and policy not in (None, "error"):
            departures.append(
                f"the {frames}px frames were adapted to the model's {size}px input "
                f"(resize_policy {policy}); the reference feeds them as they are"
            )
    if CODEC_ATTRS["none"] in config.get("codecs", ()) and config.get("fp_baseline") == "alexnet":
        departures.append(
            "ImageNet-P frames stored without the release's video compression (make_imagenet_p "
            "--codec none) but divided by AlexNet's flip probabilities, measured on the "
            "compressed release (the codec lowers noise FP by 20-40 %, docs/FIDELITY.md)"
        )
    backend = (config.get("preprocessing") or {}).get("resize_backend")
    reference_backend = config.get("reference_resize_backend")
    if dataset == "imagenet_c" and backend and reference_backend and backend != reference_backend:
        departures.append(
            f"clean images resized with the {backend} geometry (--clean-resize), not the "
            f"{reference_backend} one the model's published accuracy was measured with"
        )
    size_note = data_size_departure(sizes, dataset, config.get("limit"))
    if size_note and not config.get("smoke_sample"):
        departures.append(size_note)
    parts = []
    if config.get("trained_weights") is False:
        parts.append("UNTRAINED weights (random initialisation).")
    if departures:
        parts.append(f"Not the reference protocol: {'; '.join(departures)}.")
    notes = list(parts)
    if any(o.startswith("generated") for o in config.get("origins", ())):
        uncompressed = CODEC_ATTRS["none"] in config.get("codecs", ())
        stored = (
            "stored without the release's codec (--codec none)"
            if uncompressed
            else "the release's codec settings"
        )
        notes.append(
            "ImageNet-P sequences generated by make_imagenet_p from the given val images, not "
            f"the released videos: the same perturbations, {stored}, other random draws."
        )
    precision = config.get("precision", "fp32")
    if precision != "fp32":
        notes.append(f"The model ran under {precision} autocast; the reference runs in fp32.")
    return (" ".join(parts) or None), notes
