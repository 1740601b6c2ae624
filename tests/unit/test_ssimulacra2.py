"""The differentiable SSIMULACRA2 port gives the reference implementation's scores (PyPI ``ssimulacra2``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from ally.attacks.ssimulacra2 import ssimulacra2, ssimulacra2_uint8

reference = pytest.importorskip("ssimulacra2.ssimulacra2")


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5) * np.cos(yy / 7)], -1) + rng.normal(0, 0.03, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _reference(a: np.ndarray, b: np.ndarray, tmp_path) -> float:
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    return reference.compute_ssimulacra2(str(tmp_path / "a.png"), str(tmp_path / "b.png"))


@pytest.mark.parametrize(("h", "w", "quality"), [(96, 128, 30), (137, 94, 75), (64, 301, 90)])
def test_scores_equal_the_reference_on_jpeg_distortions(h, w, quality, tmp_path):
    a = _image(h, w, h)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    b = np.asarray(Image.open(buf).convert("RGB"))
    assert ssimulacra2_uint8(a, b) == pytest.approx(_reference(a, b, tmp_path), abs=1e-6)


def test_identical_images_score_100_and_worse_distortions_score_lower():
    a = _image(80, 80, 1)
    assert ssimulacra2_uint8(a, a) == pytest.approx(100.0)
    noisy = [np.clip(a.astype(int) + np.random.default_rng(0).integers(-k, k + 1, a.shape), 0, 255).astype(np.uint8)
             for k in (2, 8, 24)]
    scores = [ssimulacra2_uint8(a, n) for n in noisy]
    assert scores[0] > scores[1] > scores[2]


def test_it_has_a_gradient():
    a = torch.from_numpy(_image(48, 40, 2)).permute(2, 0, 1)[None].float() / 255
    b = (a + 0.03 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1).requires_grad_(True)
    ssimulacra2(a, b).sum().backward()
    assert torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0
