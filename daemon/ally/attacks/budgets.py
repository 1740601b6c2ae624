"""Budgets: the perturbations a person should not notice."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from torch import Tensor

from .base import Budget


@dataclass(frozen=True)
class LinfBudget(Budget):
    """|delta| <= eps per pixel and channel; ``eps`` may be a per-pixel map broadcastable to the image."""

    eps: float | Tensor

    def project(self, x0: Tensor, delta: Tensor) -> Tensor:
        eps = self.eps
        delta = torch.maximum(torch.minimum(delta, torch.as_tensor(eps)), -torch.as_tensor(eps))
        return (x0 + delta).clamp(0.0, 1.0) - x0


def texture_eps_map(x0: Tensor, eps: float, floor: float = 0.5, window: int = 9) -> Tensor:
    """Per-pixel L∞ budget: full ``eps`` in textured areas, down to ``floor * eps`` in flat ones.

    Noise is visible on smooth skin, walls and sky and hidden in texture (the masking that JPEG and JND models
    exploit); spending the budget where it is hidden keeps the photo looking the same at equal strength.
    """
    weight = texture_weight(x0, window)
    return eps * (floor + (1.0 - floor) * weight)


def texture_weight(x0: Tensor, window: int = 9, textured_std: float = 0.06) -> Tensor:
    """[N,1,H,W] in [0,1]: 0 on flat luma, 1 where the local luma std reaches ``textured_std`` (~15 grey levels)."""
    luma = 0.299 * x0[:, 0:1] + 0.587 * x0[:, 1:2] + 0.114 * x0[:, 2:3]
    pad = window // 2
    mean = F.avg_pool2d(F.pad(luma, (pad,) * 4, mode="replicate"), window, stride=1)
    sq = F.avg_pool2d(F.pad(luma**2, (pad,) * 4, mode="replicate"), window, stride=1)
    std = (sq - mean**2).clamp_min(0).sqrt()
    return (std / textured_std).clamp(0.0, 1.0)


@dataclass(frozen=True)
class LumaChromaBudget(Budget):
    """Per-pixel caps on the change of luma (Y) and of chroma (Cb, Cr) separately (JFIF YCbCr, kornia).

    People see luma change in flat areas and colour change almost everywhere before they see luma change in
    texture: a cloak that spends its change on luma in textured areas, and little on colour, looks the same
    at a strength that an RGB box would show as colour noise. ``luma_eps`` and ``chroma_eps`` are maps
    broadcastable to [N,1,H,W].
    """

    luma_eps: float | Tensor
    chroma_eps: float | Tensor

    def project(self, x0: Tensor, delta: Tensor) -> Tensor:
        base = rgb_to_ycbcr(x0)
        change = rgb_to_ycbcr(x0 + delta) - base  # linear in delta: the offsets cancel
        ly, lc = torch.as_tensor(self.luma_eps), torch.as_tensor(self.chroma_eps)
        y = torch.maximum(torch.minimum(change[:, :1], ly), -ly)
        c = torch.maximum(torch.minimum(change[:, 1:], lc), -lc)
        out = ycbcr_to_rgb(base + torch.cat([y, c], dim=1)).clamp(0.0, 1.0)
        return out - x0


def masked_caps(x0: Tensor, eps: float, floor: float, chroma_fraction: float) -> tuple[Tensor, Tensor]:
    """Luma and chroma cap maps for ``x0``: texture masking on both; chroma falls to 10 % of its cap when flat."""
    weight = texture_weight(x0)
    luma = eps * (floor + (1.0 - floor) * weight)
    chroma = eps * chroma_fraction * (0.1 + 0.9 * weight)
    return luma, chroma
