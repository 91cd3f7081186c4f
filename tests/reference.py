"""Hendrycks' original ImageNet-C functions (PyPI ``imagenet-c==0.0.3``) as a test oracle.

The 2019 wheel needs a few shims to run on a current stack; they are applied to the
reference module's own namespace only (numpy itself is not modified):

- ``pkg_resources.resource_filename`` (gone from setuptools >= 81): a stand-in that points the
  frost textures, which the wheel lacks, at the copies installed by ``imagecorruptions-imaug``.
- ``np.float_`` (numpy 2) -> float64; ``np.fromstring`` on binary data -> ``np.frombuffer``.
- ``skimage.filters.gaussian(multichannel=True)`` -> ``channel_axis=-1``.

``load()`` returns the ``imagenet_c`` package or raises ``pytest.skip`` when it (or Wand /
ImageMagick, needed by motion_blur and snow) is missing.
"""

from __future__ import annotations

import functools
import os
import sys
import types

import numpy as np


class _NumpyShim(types.ModuleType):
    """numpy, plus the two names the 2019 reference code relies on."""

    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def fromstring(data, dtype=float, *args, **kwargs):
        if isinstance(data, (bytes, bytearray, memoryview)):
            return np.frombuffer(data, dtype=dtype).copy()
        return np.fromstring(data, dtype, *args, **kwargs)


def _gaussian_shim(image, sigma=1, *args, multichannel=None, **kwargs):
    from skimage.filters import gaussian

    if multichannel:
        kwargs["channel_axis"] = -1
    return gaussian(image, sigma, *args, **kwargs)


def frost_dir() -> str:
    """Folder with frost1.png .. frost6.jpg as installed by imagecorruptions-imaug."""
    import imagecorruptions

    return os.path.join(os.path.dirname(imagecorruptions.__file__), "frost")


@functools.lru_cache(maxsize=1)
def _load():
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            fake = types.ModuleType("pkg_resources")
            fake.resource_filename = lambda pkg, name: os.path.join(  # type: ignore[attr-defined]
                frost_dir(), os.path.basename(name)
            )
            sys.modules["pkg_resources"] = fake
    import imagenet_c
    import imagenet_c.corruptions as ref

    ref.np = _NumpyShim("numpy")
    ref.gaussian = _gaussian_shim
    ref.resource_filename = lambda pkg, name: os.path.join(frost_dir(), os.path.basename(name))
    return imagenet_c


def load():
    """The shimmed ``imagenet_c`` package, or skip the calling test if it cannot be imported."""
    import pytest

    try:
        return _load()
    except Exception as exc:  # ImportError, or Wand's ImportError when ImageMagick is absent
        pytest.skip(f"reference imagenet-c==0.0.3 unavailable: {exc}")


@functools.lru_cache(maxsize=4)
def _at_size(size: int) -> dict:
    """The reference functions with every literal 224 replaced by ``size``: what
    clovaai/assembled-cnn's ``CE_validation_generator.py`` is (Hendrycks' 19 functions with 224
    -> ``args.CROP_SIZE``; its elastic comment "CROP_SIZE should have been CROP_SIZE" shows the
    global replace), run by it at 256 for the assembled models' ``validation_292_256``."""
    ic = load()
    ref = sys.modules["imagenet_c.corruptions"]
    with open(ref.__file__) as f:
        source = f.read().replace("224", str(int(size)))
    namespace = {"__name__": f"imagenet_c_at_{size}", "__file__": ref.__file__}
    exec(compile(source, f"<imagenet_c.corruptions at {size}>", "exec"), namespace)
    namespace.update(np=ref.np, gaussian=ref.gaussian, resource_filename=ref.resource_filename)
    return {name: namespace[name] for name in ic.corruption_dict}


def reference_corrupt(
    image: np.ndarray, name: str, severity: int, seed: int | None = None, size: int = 224
):
    """Run the original function on an HxWx3 uint8 image, as ``make_imagenet_c.py`` does.

    Returns uint8 (``np.uint8`` truncation of the reference's float output). ``seed`` seeds the
    global numpy RNG that the reference draws from. ``size`` other than 224: the functions as
    clovaai's generator ran them at that frame size (:func:`_at_size`).
    """
    from PIL import Image

    ic = load()
    functions = ic.corruption_dict if size == 224 else _at_size(size)
    if seed is not None:
        np.random.seed(seed)  # noqa: NPY002 (the reference draws from the global stream)
    out = functions[name](Image.fromarray(image), severity)
    return np.uint8(out)
