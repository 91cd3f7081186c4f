"""Reading photos the way the ImageNet-C/P generators did: RGB, Resize(256), CenterCrop(224).

Everything that turns a val image into a 224x224 array goes through here, so the generators
(ImageNet-C, ImageNet-P) and the clean evaluation share one definition of the protocol.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

try:
    import simplejpeg
except ImportError:  # a dependency; without it frames decode with PIL (same pixels, slower)
    simplejpeg = None

#: PIL save options of the reference generator (the released ImageNet-C files); ``optimize``
#: changes only the Huffman tables, not the decoded pixels.
JPEG_QUALITY = 85
JPEG_OPTIMIZE = True

#: Extensions accepted as images in a val folder (case-insensitive), as torchvision's ImageFolder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


#: Per process: has the fast JPEG path been compared with PIL yet, and did it agree?
_FAST_JPEG = {"checked": False, "ok": True}


def fast_jpeg_rgb(path: str | os.PathLike, out: np.ndarray | None = None) -> np.ndarray | None:
    """The pixels of a YCbCr JPEG decoded by libjpeg-turbo through simplejpeg: exactly
    ``np.asarray(load_rgb(path))``, 2.3x faster (no RGBX image object, no copy into an
    array; docs/BENCHMARKS.md), written into ``out`` (H x W x 3 uint8, e.g. a row of a
    batch) when given.

    Why: decoding the 224x224 ImageNet-C frames is what bounds an evaluation's input
    pipeline. Both decoders are libjpeg-turbo with its defaults (accurate integer IDCT, fancy
    upsampling), so the pixels are the same; the first fast decode in each process is
    checked against PIL anyway, and a mismatch (another libjpeg build) turns this path off
    for the process with a warning. None when the path does not apply: simplejpeg missing, a
    file that is not a YCbCr JPEG (grayscale, CMYK, PNG...), a size other than ``out``'s, a
    file libjpeg-turbo rejects (truncated...), or a failed check. Callers then use
    :func:`load_rgb`, whose errors name the file.
    """
    if simplejpeg is None or not _FAST_JPEG["ok"]:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace != "YCbCr" or (out is not None and out.shape != (height, width, 3)):
            return None
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
    except (OSError, ValueError):
        return None
    if not _FAST_JPEG["checked"]:
        reference = np.asarray(load_rgb(path))
        _FAST_JPEG.update(checked=True, ok=bool(np.array_equal(pixels, reference)))
        if not _FAST_JPEG["ok"]:
            warnings.warn(
                f"simplejpeg's libjpeg-turbo decodes {path} differently from PIL's: "
                "decoding with PIL in this process (slower, same pixels as the reference)",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
    return pixels


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open ``path`` fully decoded and converted to RGB, as torchvision's ``pil_loader`` does.

    Grayscale, CMYK, palette and RGBA photos (a few exist in ImageNet val) are converted with
    ``Image.convert("RGB")``, which is what the reference generators did through ImageFolder.
    Truncated or non-image files raise :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()
            # an RGB image is returned as decoded (convert would copy it); closing the file
            # after load() keeps the pixels
            return im if im.mode == "RGB" else im.convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc


#: How a frame's resize and centre crop are rounded. ``"torchvision"``: ``Resize`` +
#: ``CenterCrop`` (long side ``int(size * long / short)``, offsets ``round((n - crop) / 2)``,
#: half to even), the arithmetic of Hendrycks' released ImageNet-C. ``"clovaai"``:
#: ``resize_and_center_crop`` of clovaai/assembled-cnn's ``CE_validation_generator.py`` (long
#: side ``int(size * (long / short))``, offsets ``int((n - crop) / 2)``, floored), which made the
#: assembled models' mCE data (``validation_292_256``). Same PIL bilinear resize in both; the
#: crops differ by one pixel along the long side when ``n % 4 == 3`` (117 of the 1,000 sample
#: photos at 292 -> 256, docs/FIDELITY.md).
GEOMETRIES = ("torchvision", "clovaai")


def frame_record(resize: int, crop: int, geometry: str) -> dict:
    """How frames were made, as make_imagenet_c records it next to each cell and the
    evaluation reports it (``frame_geometry``)."""
    return {"resize": resize, "crop": crop, "geometry": geometry}


#: The released ImageNet-C's frames: Resize(256) + CenterCrop(224), torchvision's rounding.
RELEASED_FRAMES = frame_record(256, 224, "torchvision")
#: clovaai/assembled-cnn's ``validation_292_256`` (``make_imagenet_c --resize 292 --crop 256
#: --geometry clovaai``).
CLOVAAI_256_FRAMES = frame_record(292, 256, "clovaai")


def check_geometry(geometry: str) -> str:
    """Validate a frame geometry name (ValueError listing :data:`GEOMETRIES`)."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    return geometry


def resize_short_side(
    image: Image.Image, size: int = 256, geometry: str = "torchvision"
) -> Image.Image:
    """torchvision ``Resize(size)`` on a PIL image: short side to ``size``, bilinear, PIL.

    Same arithmetic as torchvision (long side = int(size * long / short)), reproduced here so the
    generators do not depend on torchvision's transforms API; or clovaai's (``geometry``, see
    :data:`GEOMETRIES`).
    """
    w, h = image.size
    if check_geometry(geometry) == "clovaai":
        new_w, new_h = (size, int(size * (h / w))) if h > w else (int(size * (w / h)), size)
    elif w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) == (w, h):
        return image
    return image.resize((new_w, new_h), Image.BILINEAR)


def center_crop(image: Image.Image, size: int = 224, geometry: str = "torchvision") -> Image.Image:
    """torchvision ``CenterCrop(size)`` on a PIL image (same rounding of the offsets), or
    clovaai's floored offsets (``geometry``, see :data:`GEOMETRIES`)."""
    w, h = image.size
    if w < size or h < size:
        raise ValueError(f"image of size {w}x{h} is smaller than the {size} crop")
    if check_geometry(geometry) == "clovaai":
        left, top = int((w - size) / 2), int((h - size) / 2)
    else:
        left = int(round((w - size) / 2.0))
        top = int(round((h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def resize_center_crop(
    image: Image.Image, resize: int = 256, crop: int = 224, geometry: str = "torchvision"
) -> np.ndarray:
    """Resize(resize) + CenterCrop(crop) -> HxWx3 uint8: the ImageNet-C generation protocol
    (``geometry``: whose rounding, see :data:`GEOMETRIES`)."""
    image = resize_short_side(image, resize, geometry)
    return np.asarray(center_crop(image, crop, geometry), dtype=np.uint8)


def load_benchmark_image(
    path: str | os.PathLike, resize: int = 256, crop: int = 224, geometry: str = "torchvision"
) -> np.ndarray:
    """``load_rgb`` + ``resize_center_crop``: the 224x224 uint8 array ImageNet-C corrupts."""
    return resize_center_crop(load_rgb(path), resize, crop, geometry)
