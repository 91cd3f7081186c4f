"""The frost textures of the reference ``frost`` corruption, loaded once and cached.

The reference (``imagenet_c/corruptions.py``) picks ``np.random.randint(5)`` among
frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg (its list also names frost6.jpg,
which randint(5) never selects), reads it with ``cv2.imread`` and flips BGR to RGB. The
PyPI ``imagenet-c`` wheel lacks these files; ``imagecorruptions-imaug`` (a dependency of this
package) installs the same images in ``imagecorruptions/frost/``, which is where we read them
from (without importing that package). ``ROBUSTBENCH_FROST_DIR`` overrides the folder.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np

#: The five textures the reference draws from, in its order (index = ``randint(5)``).
FROST_FILES: tuple[str, ...] = (
    "frost1.png",
    "frost2.png",
    "frost3.png",
    "frost4.jpg",
    "frost5.jpg",
)

FROST_DIR_ENV = "ROBUSTBENCH_FROST_DIR"


def frost_dir() -> Path:
    """Folder holding frost1.png .. frost5.jpg (``$ROBUSTBENCH_FROST_DIR`` or imagecorruptions')."""
    override = os.environ.get(FROST_DIR_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "frost textures not found: the 'imagecorruptions' package (PyPI "
            "imagecorruptions-imaug>=1.1.4, which ships imagecorruptions/frost/frost1.png .. "
            f"frost5.jpg) is not installed; install it or set {FROST_DIR_ENV} to a folder "
            "holding those files"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "frost"


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> tuple[np.ndarray, ...]:
    textures = []
    for name in FROST_FILES:
        path = Path(folder) / name
        if not path.is_file():
            raise FileNotFoundError(
                f"frost texture {path} is missing; expected {', '.join(FROST_FILES)} in "
                f"{folder} (from imagecorruptions-imaug, or set {FROST_DIR_ENV})"
            )
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"frost texture {path} could not be decoded by OpenCV")
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rgb.setflags(write=False)
        textures.append(rgb)
    return tuple(textures)


def frost_textures() -> list[np.ndarray]:
    """The five reference frost textures as read-only HxWx3 RGB uint8 arrays (cached)."""
    return list(_load(str(frost_dir())))
