"""Departures from the published protocol travel with the numbers (footnote and notes)."""

from __future__ import annotations

import pytest

from robustbench_assemble import reporting
from robustbench_assemble.corruptions.params import COMMON
from robustbench_assemble.eval.protocol import protocol_departures

PROTOCOL = {
    "source": "files",
    "decode": "cpu",
    "resize_policy": "error",
    "preprocessing": {"input_size": 224},
    "limit": None,
    "precision": "fp32",
    "trained_weights": True,
    "smoke_sample": False,
}


def test_the_protocol_itself_has_no_footnote_and_no_notes():
    assert protocol_departures(PROTOCOL) == (None, [])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"source": "on-the-fly"}, "without the release's q85 JPEG save"),  # older runs
        ({"source": "on-the-fly", "on_the_fly_jpeg": None}, "without the release's q85 JPEG"),
        (
            {"source": "on-the-fly", "on_the_fly_jpeg": 85},
            "saved as JPEG q85 in memory, not read from the released files (random",
        ),
        (
            {"source": "on-the-fly", "on_the_fly_jpeg": 50},
            "saved as JPEG q50 in memory (the release saved at q85), not read from",
        ),
        ({"decode": "gpu"}, "nvjpeg"),
        ({"trained_weights": False}, "UNTRAINED"),
        ({"resize_policy": "resize", "preprocessing": {"input_size": 256}}, "adapted"),
        ({"resize_policy": "native", "preprocessing": {"input_size": 256}}, "256px crop"),
        (
            {"frame_size": 256, "preprocessing": {"input_size": 256}},
            "files of 256px frames with no generator record",
        ),
        (
            {
                "frame_size": 256,
                "preprocessing": {"input_size": 256},
                "frame_geometry": {"resize": 292, "crop": 256, "geometry": "clovaai"},
            },
            "regenerated as clovaai/assembled-cnn's validation_292_256",
        ),
        (  # 256 frames made with torchvision's rounding are not clovaai's: said as they are
            {
                "frame_size": 256,
                "preprocessing": {"input_size": 256},
                "frame_geometry": {"resize": 256, "crop": 256, "geometry": "torchvision"},
            },
            "regenerated at Resize(256) + CenterCrop(256) (torchvision rounding)",
        ),
        (
            {"frame_geometry": {"resize": 300, "crop": 224, "geometry": "torchvision"}},
            "regenerated at Resize(300) + CenterCrop(224)",
        ),
        (
            {"frame_size": 256, "resize_policy": "as-is"},
            "the 256px frames were fed unchanged to a model evaluated at 224px",
        ),
        (
            {"frame_size": 256, "resize_policy": "resize"},
            "the 256px frames were adapted to the model's 224px input",
        ),
        (
            {
                "preprocessing": {"input_size": 224, "resize_backend": "torchvision"},
                "reference_resize_backend": "tf1",
            },
            "clean images resized with the torchvision geometry",
        ),
    ],
)
def test_each_departure_is_in_the_footnote_and_the_notes(change, words):
    footnote, notes = protocol_departures({**PROTOCOL, **change})
    assert words in footnote
    assert any(words in n for n in notes)


def test_released_frames_and_clean_only_runs_are_not_footnoted():
    released = {"resize": 256, "crop": 224, "geometry": "torchvision"}
    assert protocol_departures({**PROTOCOL, "frame_geometry": released}) == (None, [])
    clean_only = {**PROTOCOL, "source": "clean only", "frame_size": None}
    assert protocol_departures(clean_only) == (None, [])


def test_the_models_own_clean_geometry_is_not_footnoted():
    for backend in ("torchvision", "tf1"):
        config = {
            **PROTOCOL,
            "preprocessing": {"input_size": 224, "resize_backend": backend},
            "reference_resize_backend": backend,
        }
        assert protocol_departures(config) == (None, [])


def test_precision_and_no_op_policies_are_not_footnoted():
    # a 224 model: every policy leaves the frames alone; precision is a note only
    footnote, notes = protocol_departures({**PROTOCOL, "resize_policy": "as-is"})
    assert (footnote, notes) == (None, [])
    footnote, notes = protocol_departures({**PROTOCOL, "precision": "bf16"})
    assert footnote is None and notes == [
        "The model ran under bf16 autocast; the reference runs in fp32."
    ]


def test_smoke_sample_source_is_not_repeated():
    footnote, _ = protocol_departures({**PROTOCOL, "source": "on-the-fly", "smoke_sample": True})
    assert footnote is None


def _counts(corruptions, n=10, correct=6):
    return {(c, s): reporting.CellCounts(n, correct, 9) for c in corruptions for s in range(1, 6)}


def test_partial_corruptions_acc_says_over_how_many_cells():
    report = reporting.build_imagenet_c_report(
        "m", _counts(COMMON[:2]), reporting.CellCounts(10, 8, 9), {}, {}, None
    )
    assert report["corruptions_acc"] == "60.00"
    assert any("mean over the 10 evaluated of the 75" in n for n in report["details"]["notes"])
    full = reporting.build_imagenet_c_report(
        "m", _counts(COMMON), reporting.CellCounts(10, 8, 9), {}, {}, None, notes=["first"]
    )
    assert full["details"]["notes"] == ["first"]  # all 75 cells: nothing to say


@pytest.mark.parametrize(
    ("sizes", "dataset", "limit", "words"),
    [
        ([2, 2, 2], "imagenet_c", None, "2 images per cell, not all 50,000 ImageNet val images"),
        ([5000] * 3, "imagenet_c", 5000, "5,000 images per cell (--limit 5000), not all 50,000"),
        ([1, 2, 2], "imagenet_c", None, "cells differ in size (1 to 2 images per cell)"),
        ([2] * 10, "imagenet_p", None, "only 2 videos per dataset, fewer than one per class"),
        ([4000] * 10, "imagenet_p", 4000, "a fixed subset of the data (--limit 4000): 4,000"),
    ],
)
def test_small_or_uneven_data_is_footnoted_however_it_came(sizes, dataset, limit, words):
    """Not only --limit: a generated folder of a few images gives the same footnote."""
    footnote, notes = protocol_departures({**PROTOCOL, "limit": limit}, sizes, dataset)
    assert words in footnote and words in notes[0]


def test_full_size_data_is_not_footnoted():
    assert protocol_departures(PROTOCOL, [50_000] * 76, "imagenet_c") == (None, [])
    assert protocol_departures(PROTOCOL, [10_000] * 10, "imagenet_p") == (None, [])
    # the smoke sample says what it is once, in its own footnote
    smoke = {**PROTOCOL, "smoke_sample": True, "source": "on-the-fly"}
    assert protocol_departures(smoke, [5] * 76, "imagenet_c") == (None, [])


def test_generated_imagenet_p_is_noted_not_footnoted():
    config = {**PROTOCOL, "origins": ["generated by make_imagenet_p (seed 0, numpy-2)"]}
    footnote, notes = protocol_departures(config, [10_000] * 10, "imagenet_p")
    assert footnote is None and "not the released videos" in notes[0]
    released = {**PROTOCOL, "origins": ["imported from the released MP4s"]}
    assert protocol_departures(released, [10_000] * 10, "imagenet_p") == (None, [])
