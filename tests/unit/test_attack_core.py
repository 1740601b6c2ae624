"""The attack parts, each on its own: JPEG simulation, transforms, budgets, perceptual measures, search."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from ally.attacks.base import Attack, Problem
from ally.attacks.budgets import LinfBudget, texture_eps_map
from ally.attacks.jpeg import jpeg, quant_table, _LUMA_Q
from ally.attacks.perceptual import dssim, psnr, ssim
from ally.attacks.search import PGD
from ally.attacks.transforms import SitePipeline, resize, shift_crop


def _natural_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus edges and texture: enough structure for JPEG to matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5) * np.cos(yy / 7)], -1)
    img[h // 3: h // 2, w // 4: w // 2] = [0.9, 0.2, 0.1]
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("quality", [70, 80, 90])
def test_jpeg_simulation_is_closer_to_libjpeg_than_the_original_is(quality):
    rgb = _natural_image()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=2)
    real = _to_tensor(np.asarray(Image.open(buf).convert("RGB")))
    sim = jpeg(_to_tensor(rgb), quality)
    assert float(psnr(sim, real)) > float(psnr(_to_tensor(rgb), real)) + 1.0
    assert float(psnr(sim, real)) > 38.0


def test_jpeg_quality_tables_follow_ijg():
    assert quant_table(_LUMA_Q, 50)[0, 0] == 16  # quality 50 is the Annex K table itself
    assert quant_table(_LUMA_Q, 100).max() == 1


def test_jpeg_has_a_gradient_and_keeps_odd_sizes():
    x = _to_tensor(_natural_image(37, 53)).requires_grad_(True)
    y = jpeg(x, 75)
    assert y.shape == x.shape
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_resize_and_shift_move_points_with_the_pixels():
    img = torch.zeros(1, 3, 100, 120)
    img[..., 40, 60] = 1.0  # a dot at (x=60, y=40)
    out = resize(img, 0.5)
    shifted = shift_crop(out.image, 3, 2)
    point = torch.tensor([[60.5, 40.5]])  # the dot's centre, continuous coordinates
    mapped = out.map_points(point) - torch.tensor([3.0, 2.0])
    peak = torch.nonzero(shifted.image[0, 0] == shifted.image[0, 0].max())[0]
    centre = (float(peak[1]) + 0.5, float(peak[0]) + 0.5)
    assert abs(float(mapped[0, 0]) - centre[0]) <= 0.75 and abs(float(mapped[0, 1]) - centre[1]) <= 0.75


def test_site_pipeline_is_seeded_and_reports_its_geometry():
    x = _to_tensor(_natural_image())
    a = SitePipeline(scales=(0.5, 0.8), generator=torch.Generator().manual_seed(3))(x)
    b = SitePipeline(scales=(0.5, 0.8), generator=torch.Generator().manual_seed(3))(x)
    assert torch.equal(a.image, b.image) and a.scale == b.scale
    assert 0.4 < a.scale <= 1.0 and a.image.shape[-1] <= x.shape[-1]


def test_linf_budget_projects_into_the_box_and_the_image_range():
    x0 = torch.full((1, 3, 4, 4), 0.98)
    delta = torch.linspace(-1, 1, 48).view(1, 3, 4, 4)
    projected = LinfBudget(0.05).project(x0, delta)
    assert projected.abs().max() <= 0.05 + 1e-7
    assert (x0 + projected).max() <= 1.0


def test_texture_map_spends_less_budget_on_flat_areas():
    x0 = torch.full((1, 3, 32, 64), 0.5)
    x0[..., 32:] = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    eps = texture_eps_map(x0, 0.04, floor=0.5)
    assert torch.allclose(eps[..., 8:24, 4:20], torch.tensor(0.02))
    assert eps[..., 8:24, 44:60].mean() > 0.035


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    x = _to_tensor(_natural_image())
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert float(ssim(noisy, x)) < 0.9 and float(dssim(noisy, x)) > 0.05


def test_pgd_lowers_the_loss_inside_the_budget():
    x0 = torch.full((1, 3, 8, 8), 0.5)
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    problem = Problem(x0, lambda x: ((x - target) ** 2).mean(), LinfBudget(0.1))
    losses: list[float] = []
    delta = PGD(steps=20, step_size=0.02)(problem, callback=lambda i, n, loss: losses.append(loss))
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert delta.abs().max() <= 0.1 + 1e-6
    best = (target - x0).clamp(-0.1, 0.1)
    assert torch.allclose(delta, best, atol=0.02)


def test_attack_call_is_final_and_enforces_the_budget_and_mask():
    class Overshoot(Attack):
        def run(self, problem, callback):
            return torch.ones_like(problem.x0)

    x0 = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    delta = Overshoot()(Problem(x0, lambda x: x.sum(), LinfBudget(0.03), mask))
    assert delta[..., :2, :].max() == pytest.approx(0.03) and delta[..., 2:, :].abs().max() == 0


def test_attack_refuses_inputs_outside_the_image_range():
    with pytest.raises(ValueError, match="inside \\[0, 1\\]"):
        PGD(steps=1, step_size=0.1)(Problem(torch.full((1, 3, 2, 2), 2.0), lambda x: x.sum(), LinfBudget(0.1)))
