"""The ImageNet-C vocabulary and severity parameters, in one place.

Source: Hendrycks & Dietterich (ICLR 2019), reference code ``imagenet_c/corruptions.py``
(PyPI ``imagenet-c==0.0.3``) and ``make_imagenet_c.py``; see ../shared/REFERENCE.md §1.
Every backend (numpy ``corrupt``, torch ``corrupt_batch``) reads its parameters from here.
"""

from __future__ import annotations

import numpy as np

#: The 15 corruptions averaged in mCE, in the reference order.
COMMON: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

#: The 4 held-out "validation" corruptions (never part of mCE).
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

#: All 19 corruptions in the reference order (``imagenet_c.corruption_tuple``).
CORRUPTIONS: tuple[str, ...] = COMMON + EXTRA

#: Category folder of each corruption in the released tars (Zenodo 2235448).
CATEGORIES: dict[str, str] = {
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise"), "noise"),
    **dict.fromkeys(("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"), "blur"),
    **dict.fromkeys(("snow", "frost", "fog", "brightness"), "weather"),
    **dict.fromkeys(("contrast", "elastic_transform", "pixelate", "jpeg_compression"), "digital"),
    **dict.fromkeys(EXTRA, "extra"),
}

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Per-severity parameters (index 0 = severity 1), exactly as in ``imagenet_c/corruptions.py``.
SEVERITY_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # sigma
    "shot_noise": (60, 25, 12, 5, 3),  # Poisson(x*c)/c
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),  # s&p amount
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),  # radius, alias
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),  # sigma,d,it
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),  # radius, sigma
    # zoom_blur: (end, step) of np.arange(1, end, step); float arange gives 12/16/11/13/11
    "zoom_blur": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    # snow: loc, scale, zoom, threshold, motion radius, motion sigma, blend
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),  # image, frost
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),  # c0, wibbledecay
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to V in HSV
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    # elastic_transform: (alpha, sigma, affine) all times 244 (sic: the reference's constant)
    "elastic_transform": (
        (244 * 2, 244 * 0.7, 244 * 0.1),
        (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02),
        (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02),
    ),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),  # PIL quality
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    "gaussian_blur": (1, 2, 3, 4, 6),
    # spatter: loc, scale, sigma, threshold, intensity, mode (0 water, 1 mud)
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),  # S*c0 + c1
}

#: Corruptions whose output does not depend on a random draw.
DETERMINISTIC: frozenset[str] = frozenset(
    {
        "defocus_blur",
        "zoom_blur",
        "brightness",
        "contrast",
        "pixelate",
        "jpeg_compression",
        "gaussian_blur",
        "saturate",
    }
)


def zoom_factors(severity: int) -> np.ndarray:
    """The reference's float ``np.arange(1, end, step)``: 12/16/11/13/11 factors, 1.0 included."""
    end, step = SEVERITY_PARAMS["zoom_blur"][check_severity(severity) - 1]
    return np.arange(1, end, step)


def check_name(name: str) -> str:
    """Return ``name`` if it is one of the 19 corruptions, else raise a ValueError listing them."""
    if name not in SEVERITY_PARAMS:
        raise ValueError(f"unknown corruption {name!r}; expected one of: {', '.join(CORRUPTIONS)}")
    return name


def check_severity(severity: int) -> int:
    """Severities are 1..5. The reference silently maps 0 to 5 (negative indexing); we refuse."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise ValueError(f"severity must be an int in 1..5, got {severity!r}")
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be in 1..5, got {severity}")
    return int(severity)


def params(name: str, severity: int):
    """The reference parameter(s) of ``name`` at ``severity`` (1..5)."""
    return SEVERITY_PARAMS[check_name(name)][check_severity(severity) - 1]


_GROUPS = {"common": COMMON, "all": CORRUPTIONS, "extra": EXTRA}


def resolve_names(spec: str | None) -> tuple[str, ...]:
    """Parse a CLI ``--corruptions`` value: ``common`` (15), ``all`` (19), ``extra``, names
    ``a,b``, or a mix (``common,speckle_noise``); each corruption once, in the order given."""
    if spec is None:
        return COMMON
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise ValueError("--corruptions is empty; expected 'common', 'all', 'extra' or a,b,...")
    names: list[str] = []
    for item in items:
        if item not in _GROUPS and item not in SEVERITY_PARAMS:
            raise ValueError(
                f"--corruptions: unknown corruption {item!r}; expected common, all, extra or "
                f"names among: {', '.join(CORRUPTIONS)}"
            )
        names.extend(_GROUPS.get(item, (item,)))
    return tuple(dict.fromkeys(names))


def resolve_severities(spec: str | None) -> tuple[int, ...]:
    """Parse a CLI ``--severities`` value such as ``1,2`` (default: all five)."""
    if spec is None or spec == "all":
        return SEVERITIES
    try:
        values = tuple(int(s) for s in spec.split(",") if s.strip())
    except ValueError as exc:
        raise ValueError(
            f"--severities must be integers in 1..5 such as '1,3', got {spec!r}"
        ) from exc
    if not values:
        raise ValueError("--severities is empty; expected integers in 1..5 such as '1,3'")
    bad = [v for v in values if not 1 <= v <= 5]
    if bad:
        raise ValueError(f"--severities {spec!r}: each severity must be in 1..5, got {bad[0]}")
    return tuple(dict.fromkeys(values))
