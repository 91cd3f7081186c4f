"""Dataset readers: the clean ImageNet val folder and ImageNet-C trees (both layouts)."""

from .imagenet import (
    ImageNetVal,
    Sample,
    class_order,
    find_classes,
    fingerprint,
    imagenet_wnids,
    index_folder,
    interleave_classes,
    select_subset,
)
from .imagenet_c import (
    ImageNetC,
    available_cells,
    corrupted_relpath,
    find_cell,
    index_cell,
)

__all__ = [
    "ImageNetC",
    "ImageNetVal",
    "Sample",
    "available_cells",
    "class_order",
    "corrupted_relpath",
    "find_cell",
    "find_classes",
    "fingerprint",
    "imagenet_wnids",
    "index_cell",
    "index_folder",
    "interleave_classes",
    "select_subset",
]
