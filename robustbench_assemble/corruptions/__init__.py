"""ImageNet-C corruptions: ``corrupt`` (numpy, one image) and ``corrupt_batch`` (torch, batched);
``jpeg_round_trip``, the release's JPEG save and reload for frames corrupted in memory."""

from .params import (
    CATEGORIES,
    COMMON,
    CORRUPTIONS,
    DETERMINISTIC,
    EXTRA,
    SEVERITIES,
    SEVERITY_PARAMS,
)

__all__ = [
    "CORRUPTIONS",
    "COMMON",
    "EXTRA",
    "CATEGORIES",
    "SEVERITIES",
    "SEVERITY_PARAMS",
    "DETERMINISTIC",
    "LegacyGenerator",
    "corrupt",
    "corrupt_batch",
    "jpeg_round_trip",
]

from .rng import LegacyGenerator

try:  # filled in by the backends as they land
    from .numpy_backend import corrupt  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from .torch_backend import corrupt_batch, jpeg_round_trip  # noqa: F401
except ImportError:  # pragma: no cover
    pass
