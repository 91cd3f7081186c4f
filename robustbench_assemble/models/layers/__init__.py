"""Small reusable layers of the assembled family, each faithful to clovaai/assembled-cnn (TF1).

``BlurPool2d`` (anti-aliasing), ``SelectiveKernel`` (the paper's SK-dagger), ``SqueezeExcite``
(bias-free, as released), ``DropBlock2d`` (mask shared across the batch, as released) and the
TF-``SAME`` pooling helpers needed to reproduce TF-trained graphs exactly.
"""

from .blurpool import BlurPool2d, blur_kernel
from .dropblock import DropBlock2d
from .pooling import AvgPool2dSameStride1, AvgPool2x2Tf, MaxPool2dSame
from .selective_kernel import SelectiveKernel
from .squeeze_excite import SqueezeExcite

__all__ = [
    "AvgPool2dSameStride1",
    "AvgPool2x2Tf",
    "BlurPool2d",
    "DropBlock2d",
    "MaxPool2dSame",
    "SelectiveKernel",
    "SqueezeExcite",
    "blur_kernel",
]
