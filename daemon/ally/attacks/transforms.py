"""Robustness transforms for expectation over transformation (EOT).

A social site resizes an upload to its long edge, recompresses it as JPEG (4:2:0) and sometimes blurs or crops
it. The perturbation is optimised through random draws of that pipeline. Every transform maps an image batch
[N,3,H,W] in [0,1] to a new batch and reports how pixel coordinates moved (``scale``, ``offset``) so that face
landmarks can follow it: ``new = old * scale + offset``. Coordinates are continuous (as in ``ally.faces.align``):
an image spans [0, W] × [0, H] and pixel (i, j) has its centre at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .jpeg import jpeg


@dataclass(frozen=True)
class Transformed:
    image: Tensor
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)  # (x, y) in output pixels

    def map_points(self, points: Tensor) -> Tensor:
        """Map [...,2] (x, y) pixel coordinates of the input into the output."""
        off = torch.tensor(self.offset, dtype=points.dtype, device=points.device)
        return points * self.scale + off


def resize(x: Tensor, scale: float) -> Transformed:
    """Bilinear, anti-aliased resize by ``scale`` (as sites do with a good resampler)."""
    if abs(scale - 1.0) < 1e-3:
        return Transformed(x)
    h, w = x.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1.0)
    sy, sx = size[0] / h, size[1] / w
    return Transformed(out, scale=(sx + sy) / 2)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def shift_crop(x: Tensor, dx: int, dy: int) -> Transformed:
    """Drop ``dx`` columns on the left and ``dy`` rows on top (moves the JPEG block grid, like a site crop)."""
    return Transformed(x[..., dy:, dx:], offset=(-float(dx), -float(dy)))


@dataclass(frozen=True)
class SitePipeline:
    """A distribution over what a social site does to an upload.

    ``scales`` are resize factors relative to the image being optimised (computed by the caller from the
    photo's size and the sites' long edges); one is drawn per step, jittered by ``scale_jitter``.
    """

    scales: tuple[float, ...] = (1.0,)
    scale_jitter: float = 0.1
    jpeg_quality: tuple[float, float] = (70.0, 90.0)
    jpeg_probability: float = 0.9
    blur_sigma: tuple[float, float] = (0.0, 0.8)
    blur_probability: float = 0.3
    max_shift: int = 7
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def _uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=self.generator).item()

    def _chance(self, p: float) -> bool:
        return torch.rand((), generator=self.generator).item() < p

    def __call__(self, x: Tensor) -> Transformed:
        """One random draw of the pipeline applied to ``x``."""
        idx = int(torch.randint(len(self.scales), (), generator=self.generator))
        scale = self.scales[idx] * self._uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
        scale = min(scale, 1.0)  # upsampling our working image adds nothing a recognizer could use
        out = resize(x, scale)
        if self.max_shift:
            dx = int(torch.randint(self.max_shift + 1, (), generator=self.generator))
            dy = int(torch.randint(self.max_shift + 1, (), generator=self.generator))
            shifted = shift_crop(out.image, dx, dy)
            out = Transformed(shifted.image, out.scale, (out.offset[0] - dx, out.offset[1] - dy))
        img = out.image
        if self._chance(self.blur_probability):
            img = gaussian_blur(img, self._uniform(*self.blur_sigma))
        if self._chance(self.jpeg_probability):
            img = jpeg(img, self._uniform(*self.jpeg_quality))
        return Transformed(img, out.scale, out.offset)


IDENTITY = SitePipeline(scales=(1.0,), scale_jitter=0.0, jpeg_probability=0.0, blur_probability=0.0, max_shift=0)
