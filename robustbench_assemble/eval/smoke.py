"""The embedded smoke sample: five real photos that ship with scikit-image, labelled by hand.

This is what ``python -m robustbench_assemble.eval --model NAME`` evaluates when no data
folder is given, so that the harness runs end to end on a fresh machine without ImageNet.
Its numbers are a SMOKE TEST of the pipeline, not an ImageNet measurement: five images, labels
chosen by hand from the photo content (ImageNet has no "motorcycle", "cup of coffee" or
"rocket" class, so the closest ILSVRC-2012 class is used), corrupted versions computed on the
fly. The class index of a wnid is its position among the 1,000 sorted ILSVRC-2012 wnids
(torchvision ImageFolder order); the indices below were read from that sorted list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

SMOKE_DESCRIPTION = (
    "smoke sample: 5 scikit-image photos with hand-chosen ImageNet labels "
    "(a pipeline check, NOT an ImageNet result)"
)


@dataclass(frozen=True)
class SmokePhoto:
    """One photo: the ``skimage.data`` function that loads it and its hand-chosen class."""

    name: str  # skimage.data function
    wnid: str
    label: int  # index among the 1,000 sorted wnids
    imagenet_class: str
    note: str


SMOKE_PHOTOS: tuple[SmokePhoto, ...] = (
    SmokePhoto("chelsea", "n02123045", 281, "tabby, tabby cat", "Chelsea the cat"),
    SmokePhoto("coffee", "n07920052", 967, "espresso", "a cup of coffee on a saucer"),
    SmokePhoto("rocket", "n03773504", 657, "missile", "a Falcon 9 rocket on its launch pad"),
    SmokePhoto(
        "stereo_motorcycle", "n03785016", 665, "moped", "a motorcycle (no motorcycle class)"
    ),
    SmokePhoto("camera", "n04485082", 872, "tripod", "the cameraman, camera on a tripod (gray)"),
)


def load_photo(photo: SmokePhoto) -> Image.Image:
    """The photo as an RGB PIL image (grayscale photos are converted like ``load_rgb`` does)."""
    from skimage import data

    array = getattr(data, photo.name)()
    if isinstance(array, tuple):  # stereo_motorcycle returns (left, right, disparity)
        array = array[0]
    return Image.fromarray(np.ascontiguousarray(array)).convert("RGB")


def load_smoke_sample() -> list[tuple[Image.Image, int]]:
    """All smoke photos as (RGB PIL image, label)."""
    return [(load_photo(p), p.label) for p in SMOKE_PHOTOS]


def smoke_fingerprint(images: list[tuple[Image.Image, int]]) -> str:
    """16-hex hash of the pixels and labels (changes if scikit-image ships other photos)."""
    h = hashlib.sha256()
    for image, label in images:
        h.update(f"{image.size}|{label}\n".encode())
        h.update(image.tobytes())
    return h.hexdigest()[:16]
