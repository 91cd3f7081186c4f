"""Training-time pieces of the assembled recipe (Lee et al. 2020), after clovaai/assembled-cnn.

``losses``: label-smoothing cross-entropy, mixup "type 1", knowledge distillation.
``schedules``: the DropBlock keep-probability schedule and a helper to apply it to a model.
"""

from .losses import (
    kd_loss,
    label_smoothing_cross_entropy,
    mixup_type1,
    soft_cross_entropy,
    teacher_probabilities,
)
from .schedules import dropblock_keep_prob, set_dropblock_keep_prob

__all__ = [
    "dropblock_keep_prob",
    "kd_loss",
    "label_smoothing_cross_entropy",
    "mixup_type1",
    "set_dropblock_keep_prob",
    "soft_cross_entropy",
    "teacher_probabilities",
]
