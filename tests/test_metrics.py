"""Metrics against published numbers and direct transcriptions of the reference formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from robustbench_assemble import metrics
from robustbench_assemble.corruptions.params import COMMON, CORRUPTIONS, EXTRA, SEVERITIES
from robustbench_assemble.perturbation_names import P_TEST, P_VALIDATION, PERTURBATIONS

# Published per-corruption AlexNet means, independent of our per-severity table:
# google-research/augmix imagenet.py ALEXNET_ERR (6 decimals, the 15 common corruptions) ...
AUGMIX_ALEXNET_ERR = dict(
    zip(
        COMMON,
        (0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816,
         0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500),
    )
)  # fmt: skip
# ... and clovaai/assembled-cnn mce/eval_robustness.py ALEXNET_CE (4 decimals, all 19).
ASSEMBLED_ALEXNET_CE = {
    "gaussian_noise": 0.8864, "shot_noise": 0.8945, "impulse_noise": 0.9226,
    "defocus_blur": 0.8199, "glass_blur": 0.8263, "motion_blur": 0.7860, "zoom_blur": 0.7984,
    "snow": 0.8668, "frost": 0.8266, "fog": 0.8193, "brightness": 0.5646, "contrast": 0.8532,
    "elastic_transform": 0.6461, "pixelate": 0.7178, "jpeg_compression": 0.6065,
    "speckle_noise": 0.8454, "gaussian_blur": 0.7871, "spatter": 0.7175, "saturate": 0.6583,
}  # fmt: skip
# The 14 --perturbation choices of hendrycks/robustness ImageNet-P/test.py.
REFERENCE_P_CHOICES = {
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "spatter", "brightness",
    "translate", "rotate", "tilt", "scale", "speckle_noise", "gaussian_blur", "snow", "shear",
}  # fmt: skip


# ----------------------------------------------------------------------------- constants


def test_alexnet_table_shape():
    assert tuple(metrics.ALEXNET_ERRORS) == CORRUPTIONS
    for name, errs in metrics.ALEXNET_ERRORS.items():
        assert len(errs) == 5, name
        assert all(0 < e < 1 for e in errs), name


def test_alexnet_row_means_match_augmix_table():
    for name, published in AUGMIX_ALEXNET_ERR.items():
        assert np.mean(metrics.ALEXNET_ERRORS[name]) == pytest.approx(published, abs=5e-7), name


def test_alexnet_row_means_match_assembled_cnn_table():
    # The 4-decimal table covers the 4 validation corruptions too (two entries are rounded
    # up from ...48 in the source, hence the 1e-4 tolerance).
    for name, published in ASSEMBLED_ALEXNET_CE.items():
        assert abs(np.mean(metrics.ALEXNET_ERRORS[name]) - published) <= 1e-4, name


def test_alexnet_errors_are_counts_out_of_50000():
    # Measured on the 50,000-image ImageNet-C: every error is k / 50000.
    for name, errs in metrics.ALEXNET_ERRORS.items():
        for e in errs:
            assert abs(e * 50000 - round(e * 50000)) < 1e-6, name


def test_alexnet_clean_error_is_torchvision_alexnet():
    torchvision = pytest.importorskip("torchvision")
    meta = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]
    assert metrics.ALEXNET_CLEAN_ERROR == pytest.approx(1 - meta["acc@1"] / 100, abs=1e-9)


def test_perturbation_names():
    assert set(PERTURBATIONS) == REFERENCE_P_CHOICES
    assert set(metrics.ALEXNET_FLIP_PROBABILITIES) == REFERENCE_P_CHOICES
    assert len(P_TEST) == 10 and len(P_VALIDATION) == 4
    assert not set(P_TEST) & set(P_VALIDATION)
    assert set(P_VALIDATION) == {"speckle_noise", "gaussian_blur", "spatter", "shear"}


# ----------------------------------------------------------------------------- ImageNet-C


def test_alexnet_scores_100():
    assert metrics.mce(metrics.ALEXNET_ERRORS) == pytest.approx(100.0, abs=1e-12)
    assert metrics.mce_19(metrics.ALEXNET_ERRORS) == pytest.approx(100.0, abs=1e-12)
    rel = metrics.relative_mce(metrics.ALEXNET_ERRORS, metrics.ALEXNET_CLEAN_ERROR)
    assert rel == pytest.approx(100.0, abs=1e-12)
    rel19 = metrics.relative_mce_19(metrics.ALEXNET_ERRORS, metrics.ALEXNET_CLEAN_ERROR)
    assert rel19 == pytest.approx(100.0, abs=1e-12)


def test_corruption_error_by_hand():
    # (0.1+0.2+0.3+0.4+0.5) / (5 * 0.5) = 1.5 / 2.5
    assert metrics.corruption_error([0.1, 0.2, 0.3, 0.4, 0.5], [0.5] * 5) == pytest.approx(0.6)


def test_relative_corruption_error_subtracts_clean_at_every_severity():
    errs, base = [0.1, 0.2, 0.3, 0.4, 0.5], [0.5] * 5
    # (1.5 - 5 * 0.05) / (2.5 - 5 * 0.3) = 1.25 / 1.0
    rce = metrics.relative_corruption_error(errs, 0.05, base, 0.3)
    assert rce == pytest.approx(1.25)
    assert rce != pytest.approx((1.5 - 0.05) / (2.5 - 0.3))  # subtracting once is wrong


def test_relative_ce_can_be_negative():
    # A model whose corrupted error is below its clean error gets a negative relative CE.
    rce = metrics.relative_corruption_error([0.1] * 5, 0.2, [0.5] * 5, 0.3)
    assert rce == pytest.approx(-0.5 / 1.0)


def test_mce_matches_naive_formula_on_random_errors():
    rng = np.random.default_rng(0)
    errors = {c: tuple(rng.uniform(0.05, 0.95, 5)) for c in CORRUPTIONS}
    clean = 0.2
    naive, naive_rel, naive19 = 0.0, 0.0, 0.0
    for c in CORRUPTIONS:
        num = den = rnum = rden = 0.0
        for s in range(5):
            num += errors[c][s]
            den += metrics.ALEXNET_ERRORS[c][s]
            rnum += errors[c][s] - clean
            rden += metrics.ALEXNET_ERRORS[c][s] - 0.43478
        naive19 += num / den / 19
        if c in COMMON:
            naive += num / den / 15
            naive_rel += rnum / rden / 15
    assert metrics.mce(errors) == pytest.approx(100 * naive, rel=1e-12)
    assert metrics.mce_19(errors) == pytest.approx(100 * naive19, rel=1e-12)
    assert metrics.relative_mce(errors, clean) == pytest.approx(100 * naive_rel, rel=1e-12)


def test_mce_half_of_alexnet_is_50_and_extras_are_ignored():
    errors = {c: tuple(e / 2 for e in errs) for c, errs in metrics.ALEXNET_ERRORS.items()}
    errors["speckle_noise"] = (1.0,) * 5  # not part of the published mCE
    assert metrics.mce(errors) == pytest.approx(50.0)
    assert metrics.mce_19(errors) > 50.0


def test_mce_accepts_severity_mappings():
    errors = {c: dict(zip(range(1, 6), errs)) for c, errs in metrics.ALEXNET_ERRORS.items()}
    assert metrics.mce(errors) == pytest.approx(100.0)


def test_mce_with_a_measured_baseline_mapping():
    baseline = {c: (0.5,) * 5 for c in COMMON}
    errors = {c: (0.25,) * 5 for c in COMMON}
    assert metrics.mce(errors, baseline=baseline) == pytest.approx(50.0)
    # (0.25 - 0.1) / (0.5 - 0.2) = 0.5
    rel = metrics.relative_mce(errors, 0.1, baseline=baseline, baseline_clean_error=0.2)
    assert rel == pytest.approx(50.0)
    with pytest.raises(ValueError, match="baseline_clean_error"):
        metrics.relative_mce(errors, 0.1, baseline=baseline)


def test_missing_corruption_is_named():
    errors = dict(metrics.ALEXNET_ERRORS)
    del errors["fog"]
    with pytest.raises(ValueError, match="fog"):
        metrics.mce(errors)
    # the 19-corruption mean names it too
    with pytest.raises(ValueError, match="fog"):
        metrics.mce_19(errors)


def test_missing_extra_corruption_only_matters_for_mce_19():
    errors = {c: metrics.ALEXNET_ERRORS[c] for c in COMMON}
    assert metrics.mce(errors) == pytest.approx(100.0)
    with pytest.raises(ValueError, match=EXTRA[0]):
        metrics.mce_19(errors)


def test_missing_severity_is_named():
    errors = dict(metrics.ALEXNET_ERRORS)
    errors["snow"] = errors["snow"][:4]
    with pytest.raises(ValueError, match=r"snow.*severity 5"):
        metrics.mce(errors)
    errors["snow"] = {1: 0.5, 2: 0.5, 4: 0.5, 5: 0.5}
    with pytest.raises(ValueError, match=r"snow.*missing severity 3"):
        metrics.mce(errors)


@pytest.mark.parametrize("bad", [69.5, -0.1, float("nan"), "x", None, True])
def test_values_must_be_fractions(bad):
    errors = dict(metrics.ALEXNET_ERRORS)
    errors["contrast"] = (0.5, 0.5, bad, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"contrast.*severity 3.*fraction"):
        metrics.mce(errors)


def test_unknown_corruption_name_is_refused():
    errors = dict(metrics.ALEXNET_ERRORS)
    errors["gausian_noise"] = (0.5,) * 5
    with pytest.raises(ValueError, match="gausian_noise"):
        metrics.mce(errors)


def test_bad_baseline_is_refused(tmp_path):
    with pytest.raises(ValueError, match="baseline"):
        metrics.mce(metrics.ALEXNET_ERRORS, baseline=3)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        metrics.mce(metrics.ALEXNET_ERRORS, baseline=str(tmp_path / "nope.json"))


# ----------------------------------------------------------------------------- ImageNet-P


def reference_flip_prob(predictions, noise, difficulty):
    """The reference test.py walk, written out: for each start i < step, follow the chain
    i, i+step, ...; noise keeps comparing with the chain's first frame (step 1: frame 0)."""
    step = 1 if noise else difficulty
    total = 0.0
    for video in predictions:
        flips = []
        for i in range(step):
            prev = video[i]
            for pred in list(video[i::step])[1:]:
                flips.append(int(prev != pred))
                if not noise:
                    prev = pred
        total += np.mean(flips) / len(predictions)
    return total


def reference_top5_dist(full_ranks, noise, difficulty):
    """The reference's ``ranking_dist(mode='top5')`` written out on full rank vectors
    (full_ranks[v, j, c] = 1-based rank of class c in frame j, as scipy rankdata ordinal)."""
    n_classes = full_ranks.shape[-1]
    indicator = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (n_classes - 6)))
    step = 1 if noise else difficulty
    total = 0.0
    for video in full_ranks:
        dists = []
        for i in range(step):
            first = video[i]
            first_inv = np.argsort(first)
            for rank in list(video[i::step])[1:]:
                sigma = rank[first_inv]
                dists.append(np.sum(np.abs(indicator[:5] - indicator[sigma - 1][:5])))
                if not noise:
                    first = rank
                    first_inv = np.argsort(first)
        total += np.mean(dists) / len(full_ranks)
    return total


def test_flip_probability_by_hand():
    video = np.array([[3, 3, 5, 3, 7]])
    assert metrics.flip_probability(video, noise=True) == pytest.approx(2 / 4)
    assert metrics.flip_probability(video, noise=False) == pytest.approx(3 / 4)
    assert metrics.flip_probability(video, noise=False, difficulty=2) == pytest.approx(2 / 3)
    # noise difficulty is a separate dataset: the stride is not applied
    assert metrics.flip_probability(video, noise=True, difficulty=3) == pytest.approx(2 / 4)
    two = np.array([[3, 3, 5, 3, 7], [1, 1, 1, 1, 1]])
    assert metrics.flip_probability(two, "translate") == pytest.approx((3 / 4 + 0) / 2)
    assert metrics.flip_probability(two, "shot_noise") == pytest.approx((2 / 4 + 0) / 2)


@pytest.mark.parametrize("noise", [True, False])
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_flip_probability_matches_reference_walk(noise, difficulty):
    rng = np.random.default_rng(difficulty + 10 * noise)
    preds = rng.integers(0, 4, size=(7, 31))
    ours = metrics.flip_probability(preds, noise, difficulty)
    assert ours == pytest.approx(reference_flip_prob(preds, noise, difficulty), abs=1e-12)


def test_flip_probability_ragged_videos():
    videos = [np.array([0, 1, 1]), np.array([2, 2, 2, 3, 3])]
    expected = (
        reference_flip_prob([videos[0]], False, 1) + reference_flip_prob([videos[1]], False, 1)
    ) / 2
    assert metrics.flip_probability(videos, False) == pytest.approx(expected)


def test_top5_distance_by_hand():
    a = [1, 2, 3, 4, 5]
    video = np.array([[a, [2, 1, 3, 4, 5]]])
    assert metrics.top5_distance(video, noise=False) == pytest.approx(2.0)
    video = np.array([[a, [9, 8, 7, 6, 5]]])  # 1..4 leave the top 5: |6-1|+|6-2|+|6-3|+|6-4|
    assert metrics.top5_distance(video, noise=False) == pytest.approx(14.0)
    video = np.array([[a, [10, 11, 12, 13, 14]]])
    assert metrics.top5_distance(video, noise=False) == pytest.approx(15.0)
    video = np.array([[a, a, [5, 4, 3, 2, 1]]])  # noise: frames 1, 2 against frame 0
    assert metrics.top5_distance(video, noise=True) == pytest.approx((0 + 12) / 2)


@pytest.mark.parametrize("noise", [True, False])
@pytest.mark.parametrize("difficulty", [1, 3])
@pytest.mark.parametrize("k", [5, 8, 40])
def test_top5_distance_matches_reference_on_full_rankings(noise, difficulty, k):
    rng = np.random.default_rng(k + difficulty)
    n_classes = 40
    # few distinct values so that ties occur and the tie order matters
    scores = rng.integers(0, 12, size=(5, 11, n_classes)).astype(float)
    full_ranks = np.asarray(
        [[rankdata(-frame, method="ordinal") for frame in video] for video in scores]
    ).astype(np.int64)
    expected = reference_top5_dist(full_ranks, noise, difficulty)
    rankings = metrics.rankings_from_scores(scores, k=k)
    assert metrics.top5_distance(rankings, noise, difficulty) == pytest.approx(expected, abs=1e-12)


def test_rankings_from_scores_break_ties_like_rankdata_ordinal():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(50, 30)).astype(float)
    for row in scores:
        expected = np.argsort(rankdata(-row, method="ordinal"))
        np.testing.assert_array_equal(metrics.rankings_from_scores(row, k=30), expected)


def test_p_input_errors():
    with pytest.raises(ValueError, match="K=4"):
        metrics.top5_distance(np.zeros((1, 3, 4), dtype=int), False)
    with pytest.raises(ValueError, match="repeat"):
        metrics.top5_distance(np.array([[[1, 1, 2, 3, 4], [1, 2, 3, 4, 5]]]), False)
    with pytest.raises(ValueError, match="integer"):
        metrics.flip_probability(np.zeros((2, 5)), False)
    with pytest.raises(ValueError, match="difficulty 5"):
        metrics.flip_probability(np.zeros((2, 5), dtype=int), False, difficulty=5)
    with pytest.raises(ValueError, match="difficulty"):
        metrics.flip_probability(np.zeros((2, 5), dtype=int), False, difficulty=0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        metrics.flip_probability(np.zeros((2, 5), dtype=int), "gaussian")
    with pytest.raises(ValueError, match="dimensions"):
        metrics.flip_probability(np.zeros(5, dtype=int), False)


def test_mfr_of_alexnet_is_100_and_scales():
    assert metrics.mfr(metrics.ALEXNET_FLIP_PROBABILITIES) == pytest.approx(100.0)
    doubled = {p: 2 * v for p, v in metrics.ALEXNET_FLIP_PROBABILITIES.items() if p in P_TEST}
    assert metrics.mfr(doubled) == pytest.approx(200.0)
    naive = np.mean([0.1 / metrics.ALEXNET_FLIP_PROBABILITIES[p] for p in P_TEST])
    assert metrics.mfr({p: 0.1 for p in P_TEST}) == pytest.approx(100 * naive)


def test_mfr_needs_the_10_test_perturbations():
    fps = {p: 0.1 for p in P_TEST if p != "tilt"}
    with pytest.raises(ValueError, match="tilt"):
        metrics.mfr(fps)
    with pytest.raises(ValueError, match="difficulty 1"):
        metrics.mfr({p: 0.1 for p in P_TEST}, difficulty=2)
    with pytest.raises(ValueError, match="fraction"):
        metrics.mfr({p: 10.0 for p in P_TEST})


def test_mt5d_needs_a_measured_baseline():
    t5ds = {p: 1.0 for p in P_TEST}
    for baseline in (None, "alexnet"):
        with pytest.raises(ValueError, match=r"robustbench_assemble\.eval --model alexnet"):
            metrics.mt5d(t5ds, baseline)
    base = {p: 2.0 for p in P_TEST}
    assert metrics.mt5d(t5ds, base) == pytest.approx(50.0)
    assert metrics.mt5d(base, base) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="scale"):
        metrics.mt5d({p: 1.0 for p in P_TEST if p != "scale"}, base)


def test_api_mistakes_found_by_black_box_test_4():
    """Each of these gave a misleading message or a wrong number (black-box test 4)."""
    errors = {c: list(v) for c, v in metrics.ALEXNET_ERRORS.items()}
    # one corruption name as a str: that corruption, not its letters
    assert metrics.mce(errors, corruptions="fog") == pytest.approx(100.0)
    assert metrics.relative_mce(errors, metrics.ALEXNET_CLEAN_ERROR, corruptions="fog") == (
        pytest.approx(100.0)
    )
    # 0-based severity keys are named as the mistake
    zero_based = dict(errors, fog={s - 1: e for s, e in zip(SEVERITIES, errors["fog"])})
    with pytest.raises(ValueError, match=r"unknown severity \[0\]"):
        metrics.mce(zero_based)
    # a non-numeric top-5 distance names its perturbation
    t5d = {p: 3.0 for p in P_TEST}
    with pytest.raises(ValueError, match="rotate"):
        metrics.mt5d(dict(t5d, rotate="x"), baseline=dict(t5d))
    # the release's dataset names of noise difficulties are noise, as in test.py
    preds = np.array([[1, 1, 2, 1, 3]])
    assert metrics.flip_probability(preds, "gaussian_noise_2") == metrics.flip_probability(
        preds, True
    )
    with pytest.raises(ValueError, match="unknown perturbation"):
        metrics.flip_probability(preds, "rotate_2")  # not a release name: no stride datasets
    # the reference's rankdata ranks (1..K per class) are refused, not scored as indices
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 31, 1000))
    ranks = np.argsort(np.argsort(-scores, axis=-1), axis=-1) + 1  # rank of each class
    with pytest.raises(ValueError, match="rankings_from_scores"):
        metrics.top5_distance(ranks, "rotate")
    full = np.argsort(-scores, axis=-1)  # a full ranking of class indices is accepted
    assert metrics.top5_distance(full, "rotate") == metrics.top5_distance(
        metrics.rankings_from_scores(scores), "rotate"
    )
