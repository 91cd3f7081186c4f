"""Batched ImageNet-P sequences in torch (GPU or CPU) where batching pays.

Covered: the noise perturbations and brightness (many crops at once, all frames in one
tensor op) and the geometric warps (all frames of an image in one ``grid_sample``, computed
on the 224 crop only). motion_blur, snow, gaussian_blur and spatter fall back to the numpy
backend, frame for frame. Differences from the numpy path (tested in
tests/test_perturbations.py, measured in docs/FIDELITY.md):

- random draws come from ``torch.Generator`` seeded per image, so noise/snow frames are other
  draws of the same distributions than the numpy path's ``np.random.Generator``;
- bilinear warps are float32 ``grid_sample`` emulating PIL (pixel centres, edge clamping
  inside the image, black outside) and OpenCV (tilt: fixed-point 1/32 pixel positions in
  OpenCV, exact here): a few pixels per frame differ by one or two gray levels;
- brightness runs in float64 with skimage's formulas: identical to the numpy path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .geometry import crop_offsets, legacy_affine_inverse, tilt_homography
from .numpy_backend import crop224, make_sequence, prepare_image
from .params import CROP, SCHEDULES, check_difficulty, check_name

#: Perturbations with a torch implementation (others use the numpy backend).
TORCH_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "speckle_noise",
    "brightness",
    "translate",
    "rotate",
    "scale",
    "shear",
    "tilt",
    "zoom_blur",
)

_PHOTOMETRIC_BATCHED = ("gaussian_noise", "shot_noise", "speckle_noise", "brightness")


def _generator(seed: int | None, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def _noise_frames(x: torch.Tensor, name: str, level: float, g: torch.Generator) -> torch.Tensor:
    """30 noisy frames (30, H, W, 3) uint8 of one crop ``x`` (H, W, 3) uint8 on its device."""
    shape = (30, *x.shape)
    if name == "gaussian_noise":  # float32, as the reference's torch code
        xf = x.float() / 255
        noise = torch.randn(shape, generator=g, device=x.device, dtype=torch.float32)
        return ((xf + level * noise).clamp_(0, 1) * 255).to(torch.uint8)
    xd = x.double() / 255.0
    if name == "shot_noise":
        lam = (xd * level).expand(shape).contiguous()
        noisy = torch.poisson(lam, generator=g) / level
    else:  # speckle_noise
        noise = torch.randn(shape, generator=g, device=x.device, dtype=torch.float64)
        noisy = xd + xd * (noise * level)
    return (noisy.clamp_(0, 1) * 255).to(torch.uint8)


def _rgb2hsv(x: torch.Tensor) -> torch.Tensor:
    """skimage ``rgb2hsv`` in torch (float64), with its tie order (blue over green over red)."""
    r, g, b = x.unbind(-1)
    v = x.amax(-1)
    delta = v - x.amin(-1)
    safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    s = torch.where(delta == 0, torch.zeros_like(delta), delta / torch.where(v == 0, 1.0, v))
    h = torch.zeros_like(v)
    h = torch.where(r == v, (g - b) / safe, h)
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(delta == 0, torch.zeros_like(h), h)
    return torch.stack([h, s, v], -1)


def _hsv_factors(hsv: torch.Tensor) -> torch.Tensor:
    """Torch twin of numpy_backend.hsv_factors (skimage hsv2rgb = V * factors)."""
    h, s = hsv[..., 0], hsv[..., 1]
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    one = torch.ones_like(s)
    p, q, t = 1 - s, 1 - f * s, 1 - (1 - f) * s
    table = torch.stack(
        [
            torch.stack((one, t, p), -1),
            torch.stack((q, one, p), -1),
            torch.stack((p, one, t), -1),
            torch.stack((p, q, one), -1),
            torch.stack((t, p, one), -1),
            torch.stack((one, p, q), -1),
        ]
    )
    sextant = (hi.to(torch.int64) % 6)[None, ..., None].expand(1, *h.shape, 3)
    return torch.gather(table, 0, sextant)[0]


def _brightness_frames(x: torch.Tensor, deltas: Sequence[float]) -> torch.Tensor:
    hsv = _rgb2hsv(x.double() / 255.0)
    factors = _hsv_factors(hsv)
    c = torch.tensor(deltas, dtype=torch.float64, device=x.device)[:, None, None]
    v = (hsv[..., 2][None] + c).clamp_(0, 1)
    return (v[..., None] * factors[None] * 255).to(torch.uint8)


def _sample(
    img: torch.Tensor, src_x: torch.Tensor, src_y: torch.Tensor, inside: torch.Tensor | None
) -> torch.Tensor:
    """Bilinear samples of ``img`` (H, W, 3) uint8 at index coordinates (T, h, w) -> uint8.

    With ``inside`` (PIL): edge pixels clamp, positions outside are 0, the value is truncated
    as PIL's 8-bit bilinear does (measured: 99.9 % of pixels equal to floor, 51 % to round).
    Without (OpenCV): neighbours outside are 0 and the value is rounded. float64 throughout so
    that exact integers stay exact.
    """
    h, w = img.shape[:2]
    grid = torch.stack([(2 * src_x + 1) / w - 1, (2 * src_y + 1) / h - 1], -1)
    src = img.permute(2, 0, 1)[None].double().expand(grid.shape[0], -1, -1, -1)
    pad = "zeros" if inside is None else "border"
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode=pad, align_corners=False)
    out = out.permute(0, 2, 3, 1)
    if inside is not None:
        out = (out * inside[..., None]).add_(1e-9).floor_()
    else:
        out = out.add_(0.5).floor_()
    return out.clamp_(0, 255).to(torch.uint8)


def _crop_grid(w: int, h: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-image pixel indices (X, Y) of the 224 crop, float64."""
    left, top = crop_offsets(w, h, CROP)
    ys = torch.arange(top, top + CROP, device=device, dtype=torch.float64)
    xs = torch.arange(left, left + CROP, device=device, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xx, yy


def _affine_frames(img: torch.Tensor, specs: list[dict]) -> torch.Tensor:
    """PIL ``Image.AFFINE`` bilinear with torchvision 0.2 matrices, for all specs at once."""
    h, w = img.shape[:2]
    xx, yy = _crop_grid(w, h, img.device)
    m = torch.tensor(
        [legacy_affine_inverse((w, h), **s) for s in specs], dtype=torch.float64, device=img.device
    )[:, :, None, None]
    # PIL maps the output pixel centre (X + .5, Y + .5) to a continuous source position u, v;
    # outside [0, W) x [0, H) it writes the fill (0), inside it interpolates at (u - .5, v - .5)
    u = m[:, 0] * (xx + 0.5) + m[:, 1] * (yy + 0.5) + m[:, 2]
    v = m[:, 3] * (xx + 0.5) + m[:, 4] * (yy + 0.5) + m[:, 5]
    inside = ((u >= 0) & (u < w) & (v >= 0) & (v < h)).double()
    return _sample(img, u - 0.5, v - 0.5, inside)


def _tilt_frames(img: torch.Tensor, angles: Sequence[float]) -> torch.Tensor:
    """cv2.warpPerspective (dst -> src with the inverse homography, black border)."""
    h, w = img.shape[:2]
    xx, yy = _crop_grid(w, h, img.device)
    inv = np.stack([np.linalg.inv(tilt_homography(w, h, a)) for a in angles])
    m = torch.tensor(inv, dtype=torch.float64, device=img.device)[:, :, :, None, None]
    den = m[:, 2, 0] * xx + m[:, 2, 1] * yy + m[:, 2, 2]
    den = torch.where(den == 0, torch.ones_like(den), den)
    sx = (m[:, 0, 0] * xx + m[:, 0, 1] * yy + m[:, 0, 2]) / den
    sy = (m[:, 1, 0] * xx + m[:, 1, 1] * yy + m[:, 1, 2]) / den
    return _sample(img, sx, sy, None)


def _translate_frames(img: torch.Tensor, shifts: Sequence[int]) -> torch.Tensor:
    h, w = img.shape[:2]
    left, top = crop_offsets(w, h, CROP)
    out = torch.zeros((len(shifts), CROP, CROP, 3), dtype=torch.uint8, device=img.device)
    for i, t in enumerate(shifts):
        lo, hi = max(0, t - left), min(CROP, w + t - left)
        if hi > lo:
            out[i, :, lo:hi] = img[top : top + CROP, left + lo - t : left + hi - t]
    return out


def _zoom_blur_frames(img: torch.Tensor, crop: torch.Tensor, scales: Sequence[float]):
    zoomed = _affine_frames(img, [{"scale": s} for s in scales[1:]])
    parts = torch.cat([crop[None], zoomed]).float() / 255
    n = torch.arange(1, len(scales) + 1, device=img.device, dtype=torch.float32)
    # float32 running sums as the reference's ``avg += ToTensor()(z)``
    avg = torch.cumsum(parts, 0) / n[:, None, None, None]
    out = (avg * 255).to(torch.uint8)
    out[0] = crop
    return out


def make_sequence_batch(
    images: Sequence[Image.Image | np.ndarray],
    name: str,
    difficulty: int = 1,
    seeds: Sequence[int | None] | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Sequences of several images: uint8 tensor (N, T, 224, 224, 3) on ``device``.

    Same contract as :func:`make_sequence` (Resize(256), photometric/geometric order, frame
    counts, ``difficulty`` only for noise). ``seeds`` (one int per image, or None) seed a
    ``torch.Generator`` per image; perturbations without a torch path run the numpy backend
    with the same seeds and are moved to ``device``.
    """
    sched = SCHEDULES[check_name(name)]
    check_difficulty(difficulty)
    if not sched.is_noise and difficulty != 1:
        raise ValueError(
            f"{name!r} has one sequence for all difficulties (difficulty {difficulty} is a frame "
            "stride at evaluation time); generate it with difficulty=1"
        )
    if seeds is None:
        seeds = [None] * len(images)
    if len(seeds) != len(images):
        raise ValueError(f"got {len(seeds)} seeds for {len(images)} images")
    device = torch.device(device)
    if name not in TORCH_PERTURBATIONS:
        seqs = [make_sequence(im, name, difficulty, s) for im, s in zip(images, seeds)]
        return torch.from_numpy(np.stack(seqs)).to(device)
    prepared = [prepare_image(im) for im in images]
    out = []
    for img256, seed in zip(prepared, seeds):
        crop = torch.from_numpy(crop224(img256).copy()).to(device)
        if name in _PHOTOMETRIC_BATCHED:
            if name == "brightness":
                out.append(_brightness_frames(crop, sched.frame_params))
            else:
                g = _generator(seed, device)
                level = sched.noise_levels[difficulty - 1]
                out.append(torch.cat([crop[None], _noise_frames(crop, name, level, g)]))
            continue
        full = torch.from_numpy(np.array(img256)).to(device)
        if name == "translate":
            out.append(_translate_frames(full, sched.frame_params))
        elif name == "tilt":
            out.append(_tilt_frames(full, sched.frame_params))
        elif name == "zoom_blur":
            out.append(_zoom_blur_frames(full, crop, sched.frame_params))
        else:
            key = {"rotate": "angle", "scale": "scale", "shear": "shear"}[name]
            out.append(_affine_frames(full, [{key: p} for p in sched.frame_params]))
    return torch.stack(out)
