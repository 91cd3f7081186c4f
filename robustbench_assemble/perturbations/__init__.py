"""ImageNet-P perturbation sequences: ``make_sequence`` (numpy) and a batched torch path.

Vocabulary and schedules live in :mod:`.params`; the CPU generator in :mod:`.numpy_backend`
(its compiled inner loops in :mod:`.kernels`, the exact-distribution noise sampler in
:mod:`.noise`); the GPU path for noise, brightness and the geometric warps in
:mod:`.torch_backend`.
"""

from .numpy_backend import make_sequence
from .params import (
    DIFFICULTIES,
    PERTURBATIONS,
    SCHEDULES,
    TEST_PERTURBATIONS,
    VALIDATION_PERTURBATIONS,
    dataset_name,
    is_noise,
    num_frames,
    parse_dataset_name,
    resolve_difficulties,
    resolve_names,
    source_difficulty,
)
from .seeds import sequence_seed

__all__ = [
    "PERTURBATIONS",
    "TEST_PERTURBATIONS",
    "VALIDATION_PERTURBATIONS",
    "DIFFICULTIES",
    "SCHEDULES",
    "make_sequence",
    "is_noise",
    "num_frames",
    "dataset_name",
    "parse_dataset_name",
    "source_difficulty",
    "resolve_names",
    "resolve_difficulties",
    "sequence_seed",
]
