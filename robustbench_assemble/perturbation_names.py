"""The ImageNet-P vocabulary: perturbation names, the test/validation split, noise vs. temporal.

A dependency-free constants module so that both ``metrics`` (which needs the split for mFR and
mT5D) and the ``perturbations`` generators can import it without importing each other.

Source: Hendrycks & Dietterich (ICLR 2019), reference code ``ImageNet-P/test.py`` (the 14
``--perturbation`` choices, difficulties 1..3) and ``make_imagenet_p.py``; REFERENCE.md §2-3.
"""

from __future__ import annotations

#: The 10 perturbations averaged in mFR and mT5D.
P_TEST: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "translate",
    "rotate",
    "tilt",
    "scale",
)

#: The 4 held-out validation perturbations (never part of mFR / mT5D).
P_VALIDATION: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "shear")

#: All 14 perturbations: test set first, then validation (like COMMON + EXTRA for ImageNet-C).
PERTURBATIONS: tuple[str, ...] = P_TEST + P_VALIDATION

#: Difficulties released with ImageNet-P. For the noise perturbations a difficulty is a separate
#: dataset (folder ``<name>_2`` / ``<name>_3``); for the others it is a frame stride.
DIFFICULTIES: tuple[int, ...] = (1, 2, 3)


def is_noise(name: str) -> bool:
    """The reference's rule (``'noise' in args.perturbation``): noise frames are i.i.d. draws
    compared with the clean frame 0, not with their neighbour."""
    return "noise" in check_perturbation(name)


def check_perturbation(name: str) -> str:
    """Return ``name`` if it is one of the 14 ImageNet-P perturbations, else raise ValueError."""
    if name not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {name!r}; expected one of: {', '.join(PERTURBATIONS)}"
        )
    return name


def parse_dataset_name(folder: str) -> tuple[str, int]:
    """The release's dataset (folder) name -> (perturbation, difficulty):
    ``'gaussian_noise_2'`` -> ``('gaussian_noise', 2)``; only noise has ``_2`` / ``_3``."""
    if folder in PERTURBATIONS:
        return folder, 1
    base, _, suffix = folder.rpartition("_")
    if base in PERTURBATIONS and suffix in ("2", "3") and is_noise(base):
        return base, int(suffix)
    raise ValueError(
        f"{folder!r} is not an ImageNet-P dataset name (e.g. 'rotate', 'shot_noise_2')"
    )
