"""Budgets: the perturbations a person should not notice."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    luma = (0.299 * x0[:, 0:1] + 0.587 * x0[:, 1:2] + 0.114 * x0[:, 2:3])
    pad = window // 2
    mean = F.avg_pool2d(F.pad(luma, (pad,) * 4, mode="replicate"), window, stride=1)
    sq = F.avg_pool2d(F.pad(luma**2, (pad,) * 4, mode="replicate"), window, stride=1)
    std = (sq - mean**2).clamp_min(0).sqrt()
    # A local std of ~0.06 (about 15 grey levels) counts as fully textured.
    weight = (std / 0.06).clamp(0.0, 1.0)
    return eps * (floor + (1.0 - floor) * weight)
