"""SSIMULACRA2 (Cloudinary / libjxl) as a differentiable torch function, so a budget can be stated in its terms.

Why our own: the published implementations (libjxl's C++ tool, PyPI ``ssimulacra2`` in numpy) give a number,
not a gradient; kornia and piq have SSIM/MS-SSIM but not this metric. The algorithm is libjxl's: sRGB →
linear → XYB (made positive), six scales (2×2 box downsampling in linear RGB), at each scale a Gaussian-blurred
(σ 1.5) SSIM map without the luminance-contrast term and two edge maps (artifacts, detail lost), each pooled
by its mean and its 4-norm, weighted by the metric's 108 published weights and mapped to 0–100. The test
``tests/unit/test_ssimulacra2.py`` checks it against the PyPI reference implementation.

Score guide (the metric's own): ~90 visually lossless, ~80 high quality, ~70 good, ~50 medium, ≤ 30 low.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

import torch
import torch.nn.functional as F
from torch import Tensor

SCALES = 6
_C2 = 0.0009
_OPSIN = ((0.30, 0.622, 0.078), (0.23, 0.692, 0.078), (0.24342268924547819, 0.20476744424496821, 0.55180986650955360))
_BIAS = 0.0037930732552754493
_SIGMA, _RADIUS = 1.5, 5  # libjxl's blur; radius = int(3.33 σ + 0.5)

# The metric's weights, in libjxl's order: channel (X, Y, B) → scale → norm (mean, 4-norm) → (ssim, artifact,
# detail lost).
_WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379, 0.0,
    1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0,
    1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
    0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
    0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353, 0.0012286405048278493,
    171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
)


def srgb_to_linear(x: Tensor) -> Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def _cbrt(x: Tensor) -> Tensor:
    # The cube root's slope is unbounded at 0; the opsin bias keeps real inputs ≥ 0.0038, the floor keeps the
    # gradient finite for anything below.
    return x.clamp_min(1e-6) ** (1.0 / 3.0)


def linear_to_xyb(lin: Tensor) -> Tensor:
    """Linear RGB [N,3,H,W] → SSIMULACRA2's positive XYB."""
    m = torch.tensor(_OPSIN, dtype=lin.dtype, device=lin.device)
    mixed = torch.einsum("ij,njhw->nihw", m, lin) + _BIAS
    mixed = _cbrt(mixed) - _BIAS ** (1.0 / 3.0)
    x = 0.5 * (mixed[:, 0] - mixed[:, 1])
    y = 0.5 * (mixed[:, 0] + mixed[:, 1])
    b = mixed[:, 2]
    return torch.stack([x * 14.0 + 0.42, y + 0.01, (b - y) + 0.55], dim=1)


@lru_cache(maxsize=8)
def _kernel(device: str, dtype: torch.dtype) -> Tensor:
    t = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / _SIGMA) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def _blur(x: Tensor) -> Tensor:
    """σ 1.5 Gaussian: zero beyond the top and bottom edges, mirrored (edge repeated) left and right."""
    n, c, h, w = x.shape
    k = _kernel(str(x.device), x.dtype)
    r = _RADIUS
    # Horizontal: half-sample symmetric padding (d c b a | a b c d), as scipy's 'reflect'.
    # Scales narrower than 8 px are never blurred, so the radius (5) always fits.
    xp = torch.cat([x[..., :r].flip(-1), x, x[..., -r:].flip(-1)], dim=-1)
    xp = F.conv2d(xp.reshape(n * c, 1, h, w + 2 * r), k.view(1, 1, 1, -1))
    xp = F.pad(xp, (0, 0, r, r))  # vertical: zeros
    out = F.conv2d(xp, k.view(1, 1, -1, 1))
    return out.reshape(n, c, h, w)


def _pool(d: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and 4-norm over each image's plane: ([N,3], [N,3])."""
    mean = d.mean(dim=(2, 3))
    m4 = (d**4).mean(dim=(2, 3))
    l4 = torch.where(m4 > 0, m4.clamp_min(1e-30) ** 0.25, torch.zeros_like(m4))  # finite slope at 0
    return mean, l4


def _features(ref_lin: Tensor, dist_lin: Tensor) -> list[Tensor]:
    """Per scale a [N,3,2,3] tensor: channel × norm × (ssim, artifact, detail lost)."""
    out = []
    a_lin, b_lin = ref_lin, dist_lin
    for scale in range(SCALES):
        if a_lin.shape[-2] < 8 or a_lin.shape[-1] < 8:
            break
        a, b = linear_to_xyb(a_lin), linear_to_xyb(b_lin)
        mu1, mu2 = _blur(a), _blur(b)
        s11, s22, s12 = _blur(a * a), _blur(b * b), _blur(a * b)
        num_m = 1.0 - (mu1 - mu2) ** 2
        num_s = 2.0 * (s12 - mu1 * mu2) + _C2
        den_s = (s11 - mu1 * mu1) + (s22 - mu2 * mu2) + _C2
        ssim_d = F.relu(1.0 - num_m * num_s / den_s)
        ratio = (1.0 + (b - mu2).abs()) / (1.0 + (a - mu1).abs()) - 1.0
        artifact, lost = F.relu(ratio), F.relu(-ratio)
        pooled = [_pool(m) for m in (ssim_d, artifact, lost)]  # each (mean, l4) of [N,3]
        feat = torch.stack([torch.stack([p[0], p[1]], dim=-1) for p in pooled], dim=-1)  # N,3,2(norm),3(kind)
        out.append(feat)
        if scale < SCALES - 1:
            a_lin = F.avg_pool2d(a_lin, 2, ceil_mode=True)
            b_lin = F.avg_pool2d(b_lin, 2, ceil_mode=True)
    return out


def _to_score(raw: Tensor) -> Tensor:
    s = raw * 0.9562382616834844
    s = 2.326765642916932 * s - 0.020884521182843837 * s**2 + 6.248496625763138e-05 * s**3
    # 100 - 10 s^0.6276 for s > 0 (100 otherwise); the floor keeps the power's slope finite at 0.
    return torch.where(s > 0, 100.0 - 10.0 * s.clamp_min(1e-9) ** 0.6276336467831387, torch.full_like(s, 100.0))


def ssimulacra2(ref: Tensor, dist: Tensor) -> Tensor:
    """SSIMULACRA2 of ``dist`` against ``ref`` ([N,3,H,W] sRGB in [0,1]): [N] scores, differentiable in both."""
    if ref.shape != dist.shape or ref.dim() != 4 or ref.shape[1] != 3:
        raise ValueError(f"ssimulacra2 needs two equal [N,3,H,W] batches, got {tuple(ref.shape)}, {tuple(dist.shape)}")
    # The reference implementation works on the transposed image (its blur's zero edges fall left and right);
    # transposing here keeps the scores equal to it.
    ref, dist = ref.transpose(-1, -2), dist.transpose(-1, -2)
    feats = _features(srgb_to_linear(ref.clamp(0, 1)), srgb_to_linear(dist.clamp(0, 1)))
    weights = torch.tensor(_WEIGHTS, dtype=ref.dtype, device=ref.device)
    # libjxl indexes the weights as if there were len(scales) scales (fewer for small images).
    per = torch.stack(feats, dim=1)  # N, scales, 3, 2, 3
    ordered = per.permute(0, 2, 1, 3, 4).reshape(ref.shape[0], -1)  # channel, scale, norm, kind
    raw = (ordered.abs() * weights[: ordered.shape[1]]).sum(dim=1)
    return _to_score(raw)


def ssimulacra2_uint8(ref, dist) -> float:
    """Score of two uint8 H×W×3 arrays (a convenience for reports); float64 for agreement with the reference."""
    a = torch.as_tensor(np.asarray(ref).copy()).permute(2, 0, 1)[None].to(torch.float64) / 255.0
    b = torch.as_tensor(np.asarray(dist).copy()).permute(2, 0, 1)[None].to(torch.float64) / 255.0
    with torch.no_grad():
        return float(ssimulacra2(a, b)[0])


__all__ = ["ssimulacra2", "ssimulacra2_uint8", "srgb_to_linear", "linear_to_xyb", "SCALES"]
