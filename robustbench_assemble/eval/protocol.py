"""Where a run's settings depart from the published protocol, said in the result files.

Why: a leaderboard reader sees ``corruptions_mce`` / ``mfr`` and the ``footnote``, rarely
``details.config``. A run on corruptions made on the fly, on nvjpeg-decoded frames, on frames
resized for a non-224 model, on a subset or with untrained weights still computes every field,
so the departures travel with the numbers: in the RobustBench ``footnote`` (the ones that change
what the numbers are) and in ``details.notes`` (all of them, precision included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models.transforms import FRAME_SIZE
from ..perturbations.codec import CODEC_ATTRS


def protocol_departures(config: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(footnote, notes) for the departures recorded in a run's ``config``.

    Keys read (an absent key is taken as the protocol's setting): ``trained_weights``,
    ``smoke_sample``, ``source``, ``decode``, ``resize_policy``, ``preprocessing``
    (``input_size``), ``codecs`` and ``fp_baseline`` (ImageNet-P), ``limit``, ``precision``.
    The smoke sample has its own footnote, so its on-the-fly source is not repeated. Precision
    goes to the notes only: a numerical choice of the forward pass, not a change of the data.
    """
    departures: list[str] = []
    if config.get("source") == "on-the-fly" and not config.get("smoke_sample"):
        departures.append(
            "ImageNet-C corrupted on the fly (corrupt_batch), not read from the released q85 "
            "JPEG files (cells differ from the files' by several points)"
        )
    if config.get("decode") == "gpu":
        departures.append(
            "ImageNet-C frames decoded with nvjpeg (--decode gpu), not libjpeg as in the "
            "reference (about 30 % of pixel values differ)"
        )
    size = (config.get("preprocessing") or {}).get("input_size", FRAME_SIZE)
    policy = config.get("resize_policy")
    if size != FRAME_SIZE and policy == "native":
        departures.append(
            f"corrupted at the model's {size}px crop (resize_policy native, the way "
            f"clovaai/assembled-cnn evaluated), not as the released {FRAME_SIZE}px frames"
        )
    elif size != FRAME_SIZE and policy not in (None, "error"):
        departures.append(
            f"the {FRAME_SIZE}px frames were adapted to the model's {size}px input "
            f"(resize_policy {policy}); the reference feeds them as they are"
        )
    if CODEC_ATTRS["none"] in config.get("codecs", ()) and config.get("fp_baseline") == "alexnet":
        departures.append(
            "ImageNet-P frames stored without the release's video compression (make_imagenet_p "
            "--codec none) but divided by AlexNet's flip probabilities, measured on the "
            "compressed release (the codec lowers noise FP by 20-40 %, docs/FIDELITY.md)"
        )
    if config.get("limit") is not None:
        departures.append(f"a fixed subset of the data (--limit {config['limit']})")
    parts = []
    if config.get("trained_weights") is False:
        parts.append("UNTRAINED weights (random initialisation).")
    if departures:
        parts.append(f"Not the reference protocol: {'; '.join(departures)}.")
    notes = list(parts)
    precision = config.get("precision", "fp32")
    if precision != "fp32":
        notes.append(f"The model ran under {precision} autocast; the reference runs in fp32.")
    return (" ".join(parts) or None), notes
