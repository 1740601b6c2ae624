"""Perceptual similarity measures used as constraints and for reporting (SSIM / DSSIM, PSNR)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x: Tensor, y: Tensor, *, reduce: bool = True) -> Tensor:
    """SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03) on luma of [N,3,H,W] in [0,1].

    Returns the mean SSIM per image [N] (or the SSIM map [N,1,H',W'] when ``reduce`` is False).
    """
    w = _gaussian_window(11, 1.5, x.device, x.dtype)

    def luma(z: Tensor) -> Tensor:
        return 0.299 * z[:, 0:1] + 0.587 * z[:, 1:2] + 0.114 * z[:, 2:3]

    a, b = luma(x), luma(y)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3)) if reduce else s


def dssim(x: Tensor, y: Tensor) -> Tensor:
    """Structural dissimilarity (1 - SSIM) / 2, the measure Fawkes budgets."""
    return (1.0 - ssim(x, y)) / 2.0


def psnr(x: Tensor, y: Tensor) -> Tensor:
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10.0 * torch.log10(1.0 / mse)
