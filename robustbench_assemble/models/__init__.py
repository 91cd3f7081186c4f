"""Models: a registry of constructors (``create_model``, ``list_models``) and the assembled family.

Registered names: ``alexnet`` and ``efficientnet_lite0`` (external.py), the assembled family
(assembled.py, mobilenet.py), plus ``torchvision:<name>`` and ``timm:<name>`` resolved on demand.
Every model carries its evaluation preprocessing as ``model.preprocessing``.
"""

from . import assembled, external, mobilenet  # noqa: F401  (registers models)
from .factory import UnknownModelError, create_model, get_preprocessing, list_models
from .registry import Preprocessing, register_model
from .tf_checkpoint import convert_tf_variables, read_tf_variables
from .weights import UnsafeCheckpointError, WeightsMismatchError, load_weights

__all__ = [
    "create_model",
    "list_models",
    "get_preprocessing",
    "register_model",
    "Preprocessing",
    "load_weights",
    "UnknownModelError",
    "WeightsMismatchError",
    "UnsafeCheckpointError",
    "read_tf_variables",
    "convert_tf_variables",
]
