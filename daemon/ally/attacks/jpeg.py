"""Differentiable JPEG (baseline, 4:2:0 chroma) so that a perturbation can be optimised to survive it.

The forward pass follows libjpeg: RGB→YCbCr (JFIF), chroma averaged over 2×2 blocks, 8×8 DCT, division by
the IJG quality-scaled tables, rounding, and the inverse. Rounding is replaced by the cubic approximation of
Shin & Song (2017), ``round(x) + (x - round(x))**3``: exact in value at integers, with a useful gradient.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU T.81 Annex K tables (luminance, chrominance), row-major 8×8.
_LUMA_Q = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA_Q = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
]


def quality_scale(quality: float) -> float:
    """IJG's mapping from quality 1..100 to a table scale factor (in percent)."""
    q = min(max(quality, 1.0), 100.0)
    return 5000.0 / q if q < 50 else 200.0 - 2.0 * q


def quant_table(base: list[int], quality: float) -> Tensor:
    scale = quality_scale(quality)
    t = torch.tensor(base, dtype=torch.float32).view(8, 8)
    return torch.clamp(torch.floor((t * scale + 50.0) / 100.0), 1.0, 255.0)


@lru_cache(maxsize=4)
def _dct_matrix(device: str) -> Tensor:
    m = torch.zeros(8, 8)
    for k in range(8):
        for n in range(8):
            a = math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)
            m[k, n] = a * math.cos(math.pi * (2 * n + 1) * k / 16)
    return m.to(device)


def soft_round(x: Tensor) -> Tensor:
    r = torch.round(x)
    return r + (x - r) ** 3


def _rgb_to_ycbcr(x: Tensor) -> Tensor:
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    return torch.stack([y, cb, cr], dim=1)


def _ycbcr_to_rgb(x: Tensor) -> Tensor:
    y, cb, cr = x[:, 0], x[:, 1] - 128.0, x[:, 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], dim=1)


def _blockwise(plane: Tensor, table: Tensor, dct: Tensor) -> Tensor:
    """DCT → quantise (soft) → dequantise → IDCT on each 8×8 block of ``plane`` [N,H,W] (H, W multiples of 8)."""
    n, h, w = plane.shape
    blocks = plane.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)  # N,bh,bw,8,8
    coeffs = dct @ (blocks - 128.0) @ dct.T
    coeffs = soft_round(coeffs / table) * table
    out = dct.T @ coeffs @ dct + 128.0
    return out.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def jpeg(x: Tensor, quality: float) -> Tensor:
    """Differentiable JPEG round trip of ``x`` [N,3,H,W] in [0,1] with 4:2:0 chroma subsampling."""
    n, c, h, w = x.shape
    if c != 3:
        raise ValueError(f"jpeg expects RGB [N,3,H,W], got {tuple(x.shape)}")
    ph, pw = (-h) % 16, (-w) % 16
    # Edge replication, as encoders pad partial MCUs.
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
    ycc = _rgb_to_ycbcr(xp * 255.0)
    dct = _dct_matrix(str(x.device)).to(x.dtype)
    luma_t = quant_table(_LUMA_Q, quality).to(x.device, x.dtype)
    chroma_t = quant_table(_CHROMA_Q, quality).to(x.device, x.dtype)
    y = _blockwise(ycc[:, 0], luma_t, dct)
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    ch, cw = chroma.shape[-2:]
    cph, cpw = (-ch) % 8, (-cw) % 8
    if cph or cpw:
        chroma = F.pad(chroma, (0, cpw, 0, cph), mode="replicate")
    chroma_planes = [_blockwise(chroma[:, i], chroma_t, dct)[:, :ch, :cw] for i in range(2)]
    chroma_up = F.interpolate(torch.stack(chroma_planes, 1), scale_factor=2, mode="bilinear", align_corners=False)
    rgb = _ycbcr_to_rgb(torch.cat([y.unsqueeze(1), chroma_up], dim=1)) / 255.0
    return rgb[:, :, :h, :w].clamp(0.0, 1.0)
