"""ImageNet-C and ImageNet-P metrics: CE, mCE, relative mCE, FP, FR, mFR, top-5 distance, mT5D.

Definitions (Hendrycks & Dietterich, ICLR 2019; REFERENCE.md §3):

- E(f, c, s) = 1 - top-1 accuracy on corruption c at severity s (a fraction).
- CE(f, c) = sum_s E(f, c, s) / sum_s E(AlexNet, c, s); mCE = 100 * mean CE over the 15
  common corruptions (``params.COMMON``).
- relative CE(f, c) = sum_s (E(f, c, s) - E_clean(f)) / sum_s (E(AlexNet, c, s) - E_clean(AlexNet))
  (the clean error is subtracted at every severity, i.e. five times).
- FP (flip probability) of a set of videos, FR = FP / FP(AlexNet), mFR = 100 * mean FR over
  the 10 test perturbations (``P_TEST``); top-5 distance likewise gives mT5D.

Conventions: every error / probability is a fraction in [0, 1]; every ``m*`` aggregate and
every normalised per-corruption value returned by the ``*_percent`` helpers is in percent.
A *baseline* is either ``"alexnet"`` (the published constants below), a mapping of the same
shape as the model's values (a measured AlexNet, as RobustBench does on its 5,000-image
subset), or the path of a results JSON written by :mod:`robustbench_assemble.reporting` for
a measured AlexNet (``results/alexnet/imagenet_c.json`` / ``imagenet_p.json``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from .corruptions.params import COMMON, CORRUPTIONS, SEVERITIES, check_name
from .perturbation_names import (
    P_TEST,
    P_VALIDATION,
    PERTURBATIONS,
    check_perturbation,
    is_noise,
    parse_dataset_name,
)

__all__ = [
    "ALEXNET_ERRORS",
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_FLIP_PROBABILITIES",
    "P_TEST",
    "P_VALIDATION",
    "PERTURBATIONS",
    "corruption_error",
    "relative_corruption_error",
    "corruption_errors",
    "resolve_ce_baseline",
    "resolve_p_baseline",
    "mce",
    "mce_19",
    "relative_mce",
    "relative_mce_19",
    "flip_probability",
    "top5_distance",
    "rankings_from_scores",
    "flip_rates",
    "mfr",
    "mt5d",
]

# --------------------------------------------------------------------------- published constants

#: Top-1 error of torchvision's pretrained AlexNet (``alexnet-owt`` weights) on ImageNet-C,
#: severities 1..5, as fractions. Source: Hendrycks' mCE spreadsheet linked from the
#: hendrycks/robustness README ("Calculating the mCE",
#: docs.google.com/spreadsheets/d/1RwqofJPHhtdRPG-dDO7wPp-aGn-AmwmU5-rpvTzrMHw) and the
#: maintainer's per-severity table in hendrycks/robustness issue #10; torchvision AlexNet per
#: issue #38. (``ImageNet-C/test.py`` itself only prints unnormalised errors.) Cross-checked in
#: tests/test_metrics.py: the row means equal ``ALEXNET_ERR`` of google-research/augmix
#: ``imagenet.py`` (6 decimals, 15 corruptions) and ``ALEXNET_CE`` of clovaai/assembled-cnn
#: ``mce/eval_robustness.py`` (4 decimals, all 19).
ALEXNET_ERRORS: dict[str, tuple[float, float, float, float, float]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}

#: Clean top-1 error of the same AlexNet: torchvision's ``AlexNet_Weights.IMAGENET1K_V1``
#: reports acc@1 56.522 (checked against torchvision's metadata in the tests).
ALEXNET_CLEAN_ERROR: float = 0.43478

#: AlexNet flip probabilities on ImageNet-P at difficulty 1. Source: ``ALEXNET_FP`` in
#: clovaai/assembled-cnn ``mce/eval_robustness.py`` (commit 9cdc297); the only published
#: per-perturbation table. There are no published AlexNet top-5 distances.
ALEXNET_FLIP_PROBABILITIES: dict[str, float] = {
    "gaussian_noise": 0.23653,
    "shot_noise": 0.30062,
    "motion_blur": 0.09297,
    "zoom_blur": 0.05942,
    "spatter": 0.05053,
    "brightness": 0.04889,
    "translate": 0.11007,
    "rotate": 0.13104,
    "tilt": 0.07050,
    "scale": 0.23531,
    "speckle_noise": 0.18649,
    "gaussian_blur": 0.02775,
    "snow": 0.11928,
    "shear": 0.10658,
}

#: How to produce the measured AlexNet baseline that mT5D (and non-difficulty-1 mFR) needs.
BASELINE_HOWTO = (
    "measure a trained torchvision AlexNet on the same ImageNet-P data with "
    "`python -m robustbench_assemble.eval --model alexnet --weights alexnet.pth --imagenet-p DIR` "
    "(alexnet.pth: torchvision's IMAGENET1K_V1 file, e.g. alexnet-owt-7be5be79.pth; without "
    "--weights AlexNet is randomly initialised) and pass "
    "`--baseline results/alexnet` (in Python: baseline='results/alexnet/imagenet_p.json', or "
    "a mapping perturbation -> value)"
)

Baseline = str | os.PathLike | Mapping
ErrorTable = Mapping[str, Sequence[float] | Mapping[int, float]]

# --------------------------------------------------------------------------------- validation


def _fraction(value: object, what: str) -> float:
    """``value`` as a float in [0, 1], else a ValueError naming ``what``."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a fraction in [0, 1], got {value!r}")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a fraction in [0, 1], got {value!r}") from exc
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        hint = " (errors are fractions, not percentages)" if 1.0 < x <= 100.0 else ""
        raise ValueError(f"{what} must be a fraction in [0, 1], got {value!r}{hint}")
    return x


def _severity_errors(values: object, what: str) -> np.ndarray:
    """Five per-severity errors (index 0 = severity 1) from a sequence or {severity: error}."""
    if isinstance(values, Mapping):
        keys = {}
        for k, v in values.items():
            try:
                keys[int(k)] = v
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{what}: severity keys must be 1..5, got {k!r}") from exc
        missing = [s for s in SEVERITIES if s not in keys]
        extra = sorted(set(keys) - set(SEVERITIES))
        if extra:  # first: 0-based keys (0..4) are the likelier mistake than a missing one
            raise ValueError(f"{what}: unknown severity {extra}; expected 1..5")
        if missing:
            raise ValueError(f"{what}: missing severity {', '.join(map(str, missing))}")
        seq = [keys[s] for s in SEVERITIES]
    elif isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{what}: expected 5 per-severity errors, got {values!r}")
    else:
        seq = list(values)
        if len(seq) != len(SEVERITIES):
            missing = ", ".join(str(s) for s in SEVERITIES[len(seq) :])
            detail = f" (missing severity {missing})" if missing else ""
            raise ValueError(
                f"{what}: expected 5 per-severity errors (severities 1..5), got {len(seq)}{detail}"
            )
    return np.array([_fraction(v, f"{what} severity {s}") for s, v in zip(SEVERITIES, seq)])


def _error_table(errors: ErrorTable, corruptions: Sequence[str], what: str) -> dict:
    """Validate ``errors`` and return {corruption: 5 errors} for ``corruptions``."""
    if not isinstance(errors, Mapping):
        raise ValueError(f"{what} must map corruption names to 5 per-severity errors")
    for name in errors:
        if name not in CORRUPTIONS:
            check_name(name)  # raises with the list of valid names
    missing = [c for c in corruptions if c not in errors]
    if missing:
        raise ValueError(
            f"{what} lacks corruption(s) {', '.join(missing)}; the mean needs all of: "
            f"{', '.join(corruptions)}"
        )
    return {c: _severity_errors(errors[c], f"{what}[{c!r}]") for c in corruptions}


# ------------------------------------------------------------------------------------ baselines


def _is_path(baseline: object) -> bool:
    return isinstance(baseline, os.PathLike) or (
        isinstance(baseline, str) and baseline.lower() != "alexnet"
    )


def resolve_ce_baseline(baseline: Baseline) -> tuple[ErrorTable, float | None]:
    """Resolve an ImageNet-C baseline to ({corruption: errors}, clean error or None)."""
    if isinstance(baseline, str) and baseline.lower() == "alexnet":
        return ALEXNET_ERRORS, ALEXNET_CLEAN_ERROR
    if isinstance(baseline, Mapping):
        return baseline, None
    if _is_path(baseline):
        # Lazy import: reporting owns the JSON schema and itself imports this module.
        from .reporting import imagenet_c_baseline_from_report

        errors, clean, _info = imagenet_c_baseline_from_report(baseline)
        return errors, clean
    raise ValueError(
        f"baseline must be 'alexnet', a mapping corruption -> 5 errors, or the path of an "
        f"imagenet_c.json results file; got {baseline!r}"
    )


def resolve_p_baseline(
    baseline: Baseline | None, key: str, difficulty: int = 1
) -> Mapping[str, float]:
    """Resolve an ImageNet-P baseline (``key``: 'flip_probability' or 'top5_distance')."""
    if baseline is None or (isinstance(baseline, str) and baseline.lower() == "alexnet"):
        if key != "flip_probability":
            raise ValueError(
                "there are no published AlexNet top-5 distances, so mT5D needs a measured "
                "baseline: " + BASELINE_HOWTO
            )
        if difficulty != 1:
            raise ValueError(
                f"the published AlexNet flip probabilities are for difficulty 1, not "
                f"{difficulty}; for other difficulties " + BASELINE_HOWTO
            )
        return ALEXNET_FLIP_PROBABILITIES
    if isinstance(baseline, Mapping):
        return baseline
    if _is_path(baseline):
        # Lazy import: reporting owns the JSON schema and itself imports this module.
        from .reporting import imagenet_p_baseline_from_report

        fps, t5ds, _info = imagenet_p_baseline_from_report(baseline, difficulty)
        values = fps if key == "flip_probability" else t5ds
        if not values:
            raise ValueError(
                f"{os.fspath(baseline)} has no {key} values at difficulty {difficulty}; "
                + BASELINE_HOWTO
            )
        return values
    raise ValueError(
        f"baseline must be 'alexnet', a mapping perturbation -> {key}, or the path of an "
        f"imagenet_p.json results file; got {baseline!r}"
    )


# ------------------------------------------------------------------------------------ ImageNet-C


def corruption_error(errors_c: Sequence[float], baseline_c: Sequence[float]) -> float:
    """CE of one corruption as a fraction: sum_s E(f, c, s) / sum_s E(baseline, c, s)."""
    e = _severity_errors(errors_c, "errors_c")
    b = _severity_errors(baseline_c, "baseline_c")
    if b.sum() <= 0:
        raise ValueError("baseline_c errors sum to 0; CE is undefined")
    return float(e.sum() / b.sum())


def relative_corruption_error(
    errors_c: Sequence[float],
    clean_error: float,
    baseline_c: Sequence[float],
    baseline_clean: float,
) -> float:
    """Relative CE as a fraction: the clean error is subtracted at each of the five severities.

    sum_s (E(f, c, s) - E_clean(f)) / sum_s (E(baseline, c, s) - E_clean(baseline)).
    """
    e = _severity_errors(errors_c, "errors_c")
    b = _severity_errors(baseline_c, "baseline_c")
    clean = _fraction(clean_error, "clean_error")
    bclean = _fraction(baseline_clean, "baseline_clean")
    denominator = float((b - bclean).sum())
    if denominator <= 0:
        raise ValueError(
            "the baseline's corruption errors do not exceed its clean error "
            f"(sum of differences {denominator:.5f}); relative CE is undefined"
        )
    return float((e - clean).sum() / denominator)


def corruption_errors(
    errors: ErrorTable, baseline: Baseline = "alexnet", corruptions: Sequence[str] | None = None
) -> dict[str, float]:
    """CE (fraction) of every corruption in ``corruptions`` (default: those in ``errors``)."""
    if isinstance(corruptions, str):  # one name, not its letters
        corruptions = (corruptions,)
    names = tuple(c for c in CORRUPTIONS if c in errors) if corruptions is None else corruptions
    table = _error_table(errors, names, "errors")
    base, _ = resolve_ce_baseline(baseline)
    base_table = _error_table(base, names, "baseline")
    return {c: corruption_error(table[c], base_table[c]) for c in names}


def mce(
    errors: ErrorTable, baseline: Baseline = "alexnet", corruptions: Sequence[str] = COMMON
) -> float:
    """Mean Corruption Error in percent over the 15 common corruptions (the published mCE).

    ``errors`` maps each corruption name to its 5 per-severity top-1 errors (fractions; a
    sequence for severities 1..5 or a {severity: error} mapping). Extra corruptions in
    ``errors`` are ignored; a missing common corruption or severity is a ValueError.
    ``baseline``: "alexnet" (the published table), a mapping of the same shape (a measured
    AlexNet, as RobustBench does), or the path of a measured AlexNet's ``imagenet_c.json``.
    ``corruptions`` exists for :func:`mce_19`; any other set is not the published metric.
    """
    ces = corruption_errors(errors, baseline, corruptions)
    return 100.0 * float(np.mean(list(ces.values())))


def mce_19(errors: ErrorTable, baseline: Baseline = "alexnet") -> float:
    """NON-STANDARD: mCE over all 19 corruptions (the 15 common + 4 validation ones).

    The published metric (and every leaderboard) uses only the 15 common corruptions; this is
    reported separately, clearly labelled, for readers who want the held-out four included.
    """
    return mce(errors, baseline, CORRUPTIONS)


def relative_mce(
    errors: ErrorTable,
    clean_error: float,
    baseline: Baseline = "alexnet",
    baseline_clean_error: float | None = None,
    corruptions: Sequence[str] = COMMON,
) -> float:
    """Relative mCE in percent over the 15 common corruptions.

    ``baseline_clean_error`` defaults to 0.43478 for ``baseline="alexnet"`` and to the clean
    error stored in a baseline results file; with a mapping baseline it must be given.
    """
    if isinstance(corruptions, str):  # one name, not its letters
        corruptions = (corruptions,)
    table = _error_table(errors, corruptions, "errors")
    base, base_clean = resolve_ce_baseline(baseline)
    if baseline_clean_error is not None:
        base_clean = baseline_clean_error
    if base_clean is None:
        raise ValueError(
            "relative mCE needs the baseline's clean error: pass baseline_clean_error= "
            "(or use baseline='alexnet' / a results file that contains a clean evaluation)"
        )
    base_table = _error_table(base, corruptions, "baseline")
    rces = [
        relative_corruption_error(table[c], clean_error, base_table[c], base_clean)
        for c in corruptions
    ]
    return 100.0 * float(np.mean(rces))


def relative_mce_19(
    errors: ErrorTable,
    clean_error: float,
    baseline: Baseline = "alexnet",
    baseline_clean_error: float | None = None,
) -> float:
    """NON-STANDARD: relative mCE over all 19 corruptions (see :func:`mce_19`)."""
    return relative_mce(errors, clean_error, baseline, baseline_clean_error, CORRUPTIONS)


# ------------------------------------------------------------------------------------ ImageNet-P


def _noise_flag(noise: bool | str) -> bool:
    if isinstance(noise, str):
        if noise not in PERTURBATIONS:  # the release's dataset names: gaussian_noise_2
            with contextlib.suppress(ValueError):
                return is_noise(parse_dataset_name(noise)[0])
        return is_noise(noise)  # an unknown name raises, listing the 14
    if isinstance(noise, (bool, np.bool_)):
        return bool(noise)
    raise ValueError(f"noise must be a bool or a perturbation name, got {noise!r}")


def _pairs(n_frames: int, noise: bool, difficulty: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame index pairs (a, b) compared by the reference for one video.

    Noise: every frame j >= 1 against the clean frame 0 (the difficulty of a noise sequence is
    a separate dataset, not a stride). Others: frame j against frame j + difficulty, n - d pairs
    (the reference walks each of the d interleaved chains i, i+d, i+2d, ...; their union is
    exactly all (j, j+d)).
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, np.integer)):
        raise ValueError(f"difficulty must be a positive int, got {difficulty!r}")
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    if noise:
        if n_frames < 2:
            raise ValueError(f"a noise sequence needs >= 2 frames, got {n_frames}")
        return np.zeros(n_frames - 1, dtype=np.intp), np.arange(1, n_frames)
    if n_frames <= difficulty:
        raise ValueError(
            f"sequences of {n_frames} frames have no frame pairs at difficulty {difficulty}"
        )
    a = np.arange(n_frames - difficulty)
    return a, a + difficulty


def _videos(values: object, ndim: int, what: str) -> list[np.ndarray]:
    """Split ``values`` into per-video integer arrays (a rectangular array or a ragged list)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.ndim != ndim:
            raise ValueError(f"{what} must have {ndim} dimensions, got shape {values.shape}")
        videos = list(values)
    else:
        videos = [np.asarray(v) for v in values]  # type: ignore[union-attr]
        for v in videos:
            if v.ndim != ndim - 1:
                raise ValueError(f"each video of {what} must have {ndim - 1} dims, got {v.shape}")
    if not videos:
        raise ValueError(f"{what} is empty: no videos")
    for v in videos:
        if not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"{what} must hold integer class indices, got dtype {v.dtype}")
    return videos


def flip_probability(predictions: object, noise: bool | str, difficulty: int = 1) -> float:
    """Flip probability FP (fraction) of top-1 predictions on a set of ImageNet-P videos.

    ``predictions``: (n_videos, n_frames) integer array of top-1 classes (or a list of 1-D
    arrays for videos of different lengths). ``noise``: True / False, or one of the 14
    perturbation names or the release's dataset names (``gaussian_noise_2``), noise when the
    name contains "noise", as in the reference. Per video: the fraction of
    compared frame pairs whose predictions differ (pairs as in the reference ``flip_prob``,
    see :func:`_pairs`); then the mean over videos. ``difficulty`` is the frame stride for
    temporal perturbations; it does not change a noise computation (noise difficulties are
    separate datasets, always compared with frame 0).
    """
    is_n = _noise_flag(noise)
    per_video = []
    for v in _videos(predictions, 2, "predictions"):
        a, b = _pairs(v.shape[0], is_n, difficulty)
        per_video.append(np.mean(v[a] != v[b]))
    return float(np.mean(per_video))


def top5_distance(rankings: object, noise: bool | str, difficulty: int = 1) -> float:
    """Mean top-5 distance of ImageNet-P videos (raw, not normalised by AlexNet).

    ``rankings``: (n_videos, n_frames, K) integer array, K >= 5, the class indices of each
    frame sorted by decreasing score (ties broken by the lower class index first, as the
    reference's ``rankdata(-scores, method='ordinal')``; see :func:`rankings_from_scores`).
    For a frame pair (A, B), with sigma(r) the rank in B of the class ranked r in A,
    d = sum_{r=1..5} |min(sigma(r), 6) - r| (the reference's ``dist(..., 'top5')``, whose
    cumulative indicator caps every rank beyond 5 at 6). Hence only the top 5 of each frame
    matter: a class absent from B's top 5 contributes |6 - r| whatever its true rank, so any
    K >= 5 gives the full-ranking result. Pairs and averaging as :func:`flip_probability`.
    """
    is_n = _noise_flag(noise)
    per_video = []
    ranks = np.arange(1, 6)
    for v in _videos(rankings, 3, "rankings"):
        if v.shape[1] < 5:
            raise ValueError(f"rankings need the top K >= 5 classes per frame, got K={v.shape[1]}")
        if v.shape[1] >= 100 and np.array_equal(np.sort(v[0]), np.arange(1, v.shape[1] + 1)):
            # a full row that permutes 1..K is the reference's rankdata ranks (the rank of each
            # class), not class indices, which for K classes run 0..K-1 (a short top-k list
            # such as [1, 2, 3, 4, 5] is legitimate)
            raise ValueError(
                "rankings look like the reference's ranks (rank 1..K of each class), not class "
                "indices sorted by score; convert scores with rankings_from_scores(scores)"
            )
        top = v[:, :5]
        if np.any(np.diff(np.sort(top, axis=1), axis=1) == 0):
            raise ValueError("rankings repeat a class within a frame's top 5")
        a, b = _pairs(v.shape[0], is_n, difficulty)
        top_a, top_b = top[a], top[b]  # (pairs, 5)
        match = top_a[:, :, None] == top_b[:, None, :]  # (pairs, r in A, position in B)
        sigma = np.where(match.any(axis=2), match.argmax(axis=2) + 1, 6)
        per_video.append(np.mean(np.abs(sigma - ranks).sum(axis=1)))
    return float(np.mean(per_video))


def rankings_from_scores(scores: object, k: int = 5) -> np.ndarray:
    """Top-``k`` class indices per row of ``scores`` (..., n_classes), by decreasing score.

    Ties go to the lower class index, which reproduces the reference's
    ``rankdata(-scores, method='ordinal')`` ordering.
    """
    s = np.asarray(scores)
    if s.ndim < 1 or s.shape[-1] < k:
        raise ValueError(f"scores must have >= {k} classes on the last axis, got {s.shape}")
    return np.argsort(-s, axis=-1, kind="stable")[..., :k]


def _p_values(values: Mapping, names: Sequence[str], what: str, fraction: bool) -> dict:
    if not isinstance(values, Mapping):
        raise ValueError(f"{what} must map perturbation names to values")
    for name in values:
        check_perturbation(name)
    missing = [p for p in names if p not in values]
    if missing:
        raise ValueError(
            f"{what} lacks perturbation(s) {', '.join(missing)}; the mean needs all of: "
            f"{', '.join(names)}"
        )
    out = {}
    for p in names:
        if fraction:
            out[p] = _fraction(values[p], f"{what}[{p!r}]")
        else:
            try:
                x = float(values[p])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{what}[{p!r}] must be a number, got {values[p]!r}") from exc
            if not (math.isfinite(x) and x >= 0):
                raise ValueError(f"{what}[{p!r}] must be a finite distance >= 0, got {x!r}")
            out[p] = x
    return out


def flip_rates(
    flip_probs: Mapping[str, float],
    baseline: Baseline = "alexnet",
    perturbations: Sequence[str] | None = None,
    difficulty: int = 1,
) -> dict[str, float]:
    """FR = FP / FP(baseline) (fraction) per perturbation (default: those in ``flip_probs``).

    The published AlexNet flip probabilities are for difficulty 1; at other difficulties pass a
    measured baseline.
    """
    names = tuple(flip_probs) if perturbations is None else tuple(perturbations)
    fps = _p_values(flip_probs, names, "flip_probs", fraction=True)
    base = _p_values(
        resolve_p_baseline(baseline, "flip_probability", difficulty), names, "baseline", True
    )
    for p in names:
        if base[p] <= 0:
            raise ValueError(f"baseline flip probability of {p!r} is 0; FR is undefined")
    return {p: fps[p] / base[p] for p in names}


def mfr(
    flip_probs: Mapping[str, float], baseline: Baseline = "alexnet", difficulty: int = 1
) -> float:
    """Mean Flip Rate in percent over the 10 test perturbations (``P_TEST``).

    The standard is difficulty 1 (the published AlexNet FPs; "most people only measure with
    difficulty 1", hendrycks/robustness issue #23); other difficulties need a measured
    baseline (``difficulty`` selects its values when ``baseline`` is a results file).
    """
    rates = flip_rates(flip_probs, baseline, P_TEST, difficulty)
    return 100.0 * float(np.mean(list(rates.values())))


def mt5d(t5ds: Mapping[str, float], baseline: Baseline | None = None, difficulty: int = 1) -> float:
    """Mean top-5 distance in percent over ``P_TEST``: mean of T5D / T5D(AlexNet).

    No AlexNet top-5 distances were ever published, so ``baseline`` must be a measured
    AlexNet (a mapping perturbation -> raw mean top-5 distance, or the path of its
    ``imagenet_p.json``); without one this raises a ValueError saying how to produce it.
    """
    values = _p_values(t5ds, P_TEST, "t5ds", fraction=False)
    base = _p_values(
        resolve_p_baseline(baseline, "top5_distance", difficulty), P_TEST, "baseline", False
    )
    for p in P_TEST:
        if base[p] <= 0:
            raise ValueError(f"baseline top-5 distance of {p!r} is 0; T5D ratio is undefined")
    return 100.0 * float(np.mean([values[p] / base[p] for p in P_TEST]))
