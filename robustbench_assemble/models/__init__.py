"""Models: a registry of constructors (``create_model``, ``list_models``) and the assembled family."""

from . import assembled, external, mobilenet  # noqa: F401  (registers models)
from .factory import create_model, list_models
from .registry import Preprocessing, register_model

__all__ = ["create_model", "list_models", "register_model", "Preprocessing"]
