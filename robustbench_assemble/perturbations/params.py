"""The ImageNet-P vocabulary and frame schedules, as data, in one place.

Source: Hendrycks & Dietterich (ICLR 2019), ``ImageNet-P/create_p/make_imagenet_p.py`` in
github.com/hendrycks/robustness, and ``ImageNet-P/test.py`` for how difficulty is used; see
../shared/REFERENCE.md §2. Both backends (numpy :func:`make_sequence`, torch
``make_sequence_batch``) read their parameters from here.

Every val image is first resized so its short side is 256 (torchvision ``Resize(256)``).
*Photometric* perturbations centre-crop 224 first and then perturb the crop; *geometric* ones
transform the whole 256 image and then centre-crop 224 (so content from outside the crop can
move in). Noise perturbations have a clean frame 0 followed by 30 independent draws; their
difficulty 2 and 3 are stronger noise (released as separate ``<name>_2`` / ``<name>_3``
folders). For every other perturbation the released sequence is one fixed schedule and the
difficulty d is a frame *stride* at evaluation time (frame j is compared with frame j + d).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..perturbation_names import (
    DIFFICULTIES,
    P_TEST,
    P_VALIDATION,
    PERTURBATIONS,
    parse_dataset_name,  # noqa: F401  (re-exported: its home is the vocabulary module)
)

# The names and the test/validation split have one home, shared with ``metrics``.
TEST_PERTURBATIONS: tuple[str, ...] = P_TEST
VALIDATION_PERTURBATIONS: tuple[str, ...] = P_VALIDATION

#: Crop and resize of the generation protocol (``Resize(256)``, ``CenterCrop(224)``).
RESIZE = 256
CROP = 224


@dataclass(frozen=True)
class Schedule:
    """One perturbation's sequence, as data.

    ``frame_params[i]`` is the parameter of frame i (angle, shift, scale, sigma, ...);
    ``noise_levels[d - 1]`` is the noise strength at difficulty d (noise perturbations only,
    frame 0 of a noise sequence is the clean crop and has no parameter).
    """

    name: str
    split: str  # "test" or "validation"
    order: str  # "photometric" (crop, then perturb) or "geometric" (perturb 256, then crop)
    frames: int
    frame_params: tuple = ()
    noise_levels: tuple[float, ...] = ()
    extra: tuple = ()  # fixed constants of the perturbation (documented per entry)

    @property
    def is_noise(self) -> bool:
        """The reference's rule (test.py): a perturbation is noise when its name says so."""
        return "noise" in self.name


def _frames(f, n: int = 31) -> tuple:
    return tuple(f(i) for i in range(n))


SCHEDULES: dict[str, Schedule] = {
    # x + sigma * randn on the [0,1] float32 tensor (torch), clamp, *255, truncate
    "gaussian_noise": Schedule(
        "gaussian_noise", "test", "photometric", 31, noise_levels=(0.03, 0.05, 0.08)
    ),
    # Poisson(x * c) / c on float64, clip, *255, truncate
    "shot_noise": Schedule(
        "shot_noise", "test", "photometric", 31, noise_levels=(300.0, 120.0, 60.0)
    ),
    # ImageMagick MotionBlurImage: (radius, sigma, angle) with angle (i - 30) * 4 degrees
    "motion_blur": Schedule(
        "motion_blur",
        "test",
        "photometric",
        31,
        frame_params=_frames(lambda i: (10.0, 3.0, float((i - 30) * 4))),
    ),
    # frame i = running mean of k = 0..i of CenterCrop(affine(img256, scale=1 + 0.004 k))
    "zoom_blur": Schedule(
        "zoom_blur", "test", "geometric", 31, frame_params=_frames(lambda i: 1 + 0.004 * i)
    ),
    # motion-blur angle of the fixed snow layer: 4 i - 150 degrees
    # extra: (loc, scale, zoom, threshold, blur radius, blur sigma, image blend)
    "snow": Schedule(
        "snow",
        "test",
        "photometric",
        31,
        frame_params=_frames(lambda i: float(i * 4 - 150)),
        extra=(0.05, 0.3, 3, 0.5, 14.0, 4.0, 0.85),
    ),
    # added to V (HSV): (i - 15) * 2 / 100
    "brightness": Schedule(
        "brightness",
        "test",
        "photometric",
        31,
        frame_params=_frames(lambda i: (i - 15) * 2 / 100.0),
    ),
    # horizontal shift i - 20 px, nearest, black fill (41 frames)
    "translate": Schedule(
        "translate", "test", "geometric", 41, frame_params=_frames(lambda i: i - 20, 41)
    ),
    # rotation i - 15 degrees, bilinear
    "rotate": Schedule("rotate", "test", "geometric", 31, frame_params=_frames(lambda i: i - 15)),
    # perspective tilt phi = theta = i - 15 degrees, OpenCV warpPerspective (bilinear)
    "tilt": Schedule("tilt", "test", "geometric", 31, frame_params=_frames(lambda i: i - 15)),
    # scale (2.5 i + 40) / 100, bilinear
    "scale": Schedule(
        "scale", "test", "geometric", 31, frame_params=_frames(lambda i: (i * 2.5 + 40) / 100.0)
    ),
    # x + x * N(0, sigma) on float64, clip, *255, truncate
    "speckle_noise": Schedule(
        "speckle_noise", "validation", "photometric", 31, noise_levels=(0.05, 0.10, 0.15)
    ),
    # skimage gaussian(sigma = 0.25 + 0.035 i, truncate 6)
    "gaussian_blur": Schedule(
        "gaussian_blur",
        "validation",
        "photometric",
        31,
        frame_params=_frames(lambda i: 0.25 + 0.035 * i),
    ),
    # extra: (loc, scale, blur sigma, threshold, intensity, drip kernel); water colour only
    "spatter": Schedule(
        "spatter",
        "validation",
        "photometric",
        31,
        extra=(0.65, 0.27, 3.7, 0.69, 0.6, (0.05, 0.1, 0.15, 0.7)),
    ),
    # shear i - 15 degrees (torchvision 0.2 scalar shear), bilinear
    "shear": Schedule(
        "shear", "validation", "geometric", 31, frame_params=_frames(lambda i: i - 15)
    ),
}

assert tuple(SCHEDULES) == PERTURBATIONS


def is_noise(name: str) -> bool:
    """True for the noise perturbations (frame 0 clean, difficulty = noise strength)."""
    return SCHEDULES[check_name(name)].is_noise


def num_frames(name: str) -> int:
    """Frames per sequence: 31, or 41 for translate."""
    return SCHEDULES[check_name(name)].frames


def check_name(name: str) -> str:
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown perturbation {name!r}; expected one of {', '.join(PERTURBATIONS)}"
        )
    return name


def check_difficulty(difficulty: int) -> int:
    if (
        isinstance(difficulty, bool)
        or not isinstance(difficulty, int)
        or difficulty not in DIFFICULTIES
    ):
        raise ValueError(f"difficulty (--difficulties) must be 1, 2 or 3, got {difficulty!r}")
    return difficulty


def source_difficulty(name: str, difficulty: int) -> int:
    """Which generated sequence a (perturbation, difficulty) is evaluated on.

    Noise: its own sequence (difficulty = noise strength). Others: the difficulty-1 sequence,
    read with frame stride ``difficulty`` (the release has no ``rotate_2`` folder).
    """
    check_difficulty(difficulty)
    return difficulty if is_noise(name) else 1


def dataset_name(name: str, difficulty: int = 1) -> str:
    """The release's folder name: ``name``, ``name_2`` or ``name_3`` (noise only for 2 and 3)."""
    d = source_difficulty(name, difficulty)
    return name if d == 1 else f"{name}_{d}"


def resolve_names(names: Iterable[str] | str | None) -> tuple[str, ...]:
    """``None``/``'all'`` -> all 14; ``'test'`` / ``'validation'`` -> that split; else checked.
    Each item may be a comma list (``'rotate,tilt'``, the CLIs' spelling)."""
    if names is None or names == "all":
        return PERTURBATIONS
    if names == "test":
        return TEST_PERTURBATIONS
    if names == "validation":
        return VALIDATION_PERTURBATIONS
    if isinstance(names, str):
        names = [names]
    names = [part.strip() for n in names for part in n.split(",") if part.strip()]
    out: list[str] = []
    for n in names:
        for m in resolve_names(n) if n in ("all", "test", "validation") else (check_name(n),):
            if m not in out:
                out.append(m)
    return tuple(out)


def resolve_difficulties(difficulties: Iterable[int | str] | str | None) -> tuple[int, ...]:
    """Sorted distinct difficulties (None: all three). Strings are the CLIs' spellings: ``'1,2'``,
    or several such arguments (``--difficulties 1 2``)."""
    if difficulties is None:
        return DIFFICULTIES
    if isinstance(difficulties, str):
        difficulties = [difficulties]
    values = set()
    for d in difficulties:
        for part in d.split(",") if isinstance(d, str) else [d]:
            if isinstance(part, str):
                if not part.strip():
                    continue
                try:
                    part = int(part)
                except ValueError:
                    raise ValueError(
                        f"--difficulties: expected integers 1..3, got {part!r}"
                    ) from None
            values.add(check_difficulty(int(part)))
    if not values:
        raise ValueError("--difficulties: no difficulty given")
    return tuple(sorted(values))
