"""Alignment: Umeyama similarity, templates, and the differentiable crop's coordinate conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ally.faces.align import (
    ARCFACE_TEMPLATE,
    aligned_crops,
    alignment_matrices,
    face_template,
    similarity_transform,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _dot_image(points: np.ndarray, height: int, width: int, sigma: float) -> torch.Tensor:
    """[1,3,H,W] black image with a Gaussian dot centred on each point (continuous coords)."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    image = np.zeros((height, width))
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return torch.from_numpy(np.repeat(image[None, None], 3, axis=1)).float()


def _dot_centroids(crop: torch.Tensor, near: np.ndarray, radius: int) -> np.ndarray:
    """Intensity centroid (continuous coords) of the dot near each expected point."""
    plane = crop[0].detach().numpy().astype(np.float64)
    ys, xs = np.mgrid[0 : plane.shape[0], 0 : plane.shape[1]] + 0.5
    found = []
    for x, y in near:
        window = (np.abs(xs - x) <= radius) & (np.abs(ys - y) <= radius)
        weights = plane * window
        found.append([(weights * xs).sum() / weights.sum(), (weights * ys).sum() / weights.sum()])
    return np.array(found)


def test_similarity_recovers_known_transform() -> None:
    truth = _similarity(23.0, 1.7, 12.5, -4.0)
    src = np.random.default_rng(1).uniform(0, 100, (5, 2))
    estimated = similarity_transform(src, _apply(truth, src))
    np.testing.assert_allclose(estimated, truth, atol=1e-9)


def test_similarity_never_reflects() -> None:
    src = np.random.default_rng(2).uniform(0, 100, (5, 2))
    mirrored = src * [-1, 1]
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_similarity_rejects_degenerate_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), np.zeros((5, 2)))


def test_templates() -> None:
    # ArcFace's 112 px numbers are OpenCV pixel indices: index + 0.5 over 112.
    np.testing.assert_allclose(ARCFACE_TEMPLATE[0] * 112, [38.7946, 52.1963])
    np.testing.assert_allclose(face_template(), ARCFACE_TEMPLATE)
    loose = face_template(margin=0.25)
    np.testing.assert_allclose(loose - 0.5, (ARCFACE_TEMPLATE - 0.5) / 1.5)
    assert ARCFACE_TEMPLATE.flags.writeable is False


def test_identity_crop_reproduces_image() -> None:
    """Landmarks exactly at template positions of a size x size image: the crop is the image."""
    size = 64
    image = torch.rand(1, 3, size, size)
    crop = aligned_crops(image, ARCFACE_TEMPLATE[None] * size, size)
    torch.testing.assert_close(crop, image, atol=1e-5, rtol=0)


def test_integer_shift_is_exact() -> None:
    image = torch.rand(3, 80, 90)
    landmarks = ARCFACE_TEMPLATE[None] * 32 + [17.0, 9.0]
    crop = aligned_crops(image, landmarks, 32)
    torch.testing.assert_close(crop[0], image[:, 9:41, 17:49], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("angle", "scale", "antialias"),
    [(0.0, 1.0, False), (17.0, 1.6, False), (-30.0, 2.7, True), (10.0, 7.3, True), (5.0, 0.8, False)],
)
def test_dots_land_on_template(angle: float, scale: float, antialias: bool) -> None:
    size = 112
    dst = ARCFACE_TEMPLATE * size
    crop_to_image = _similarity(angle, scale, 0, 0)
    points = _apply(crop_to_image, dst)
    points += 40 - points.min(axis=0)  # keep the face well inside the image
    height, width = (points.max(axis=0) + 40).astype(int)[::-1]
    sigma = 1.2 * scale  # about 1.2 crop pixels wide after alignment
    image = _dot_image(points, height, width, sigma)
    crop = aligned_crops(image, points[None], size, antialias=antialias)
    assert crop.shape == (1, 3, size, size)
    centroids = _dot_centroids(crop[0], dst, radius=5)
    error = np.abs(centroids - dst).max()
    assert error < 0.5, f"max landmark error {error:.3f} px"


def test_loose_template_and_several_faces() -> None:
    template = face_template(margin=0.3)
    size = 96
    face_a = _apply(_similarity(0, 1.0, 10, 20), template * size)
    face_b = _apply(_similarity(25, 2.0, 250, 30), template * size)
    image = _dot_image(np.concatenate([face_a, face_b]), 300, 480, 1.5)
    crops = aligned_crops(image, np.stack([face_a, face_b]), size, template)
    assert crops.shape == (2, 3, size, size)
    for crop in crops:
        assert np.abs(_dot_centroids(crop, template * size, radius=5) - template * size).max() < 0.5


def test_gradients_reach_the_image_only_under_the_face() -> None:
    image = torch.rand(1, 3, 200, 300, requires_grad=True)
    landmarks = ARCFACE_TEMPLATE[None] * 50 + [20.0, 30.0]
    aligned_crops(image, landmarks, 50).sum().backward()
    assert image.grad is not None
    assert image.grad[..., 30:80, 20:70].abs().sum() > 0
    assert image.grad[..., 120:, 150:].abs().sum() == 0


def test_gradients_flow_through_antialias_path() -> None:
    image = torch.rand(1, 3, 600, 600, requires_grad=True)
    landmarks = ARCFACE_TEMPLATE[None] * 500 + [50.0, 50.0]  # 500 px face into a 112 crop
    crop = aligned_crops(image, landmarks, 112, antialias=True)
    crop.sum().backward()
    assert image.grad is not None and image.grad[..., 100:500, 100:500].abs().min() > 0


def test_antialias_suppresses_aliasing() -> None:
    # A 1-pixel checkerboard seen through a ~5.8x downscale should average to grey;
    # plain bilinear sampling picks up a beat pattern instead.
    yy, xx = np.mgrid[0:800, 0:800]
    board = torch.from_numpy(((xx + yy) % 2).astype(np.float32)).expand(1, 3, 800, 800)
    landmarks = ARCFACE_TEMPLATE[None] * 650 + [60.0, 60.0]
    smooth = aligned_crops(board, landmarks, 112, antialias=True)
    aliased = aligned_crops(board, landmarks, 112, antialias=False)
    assert smooth.std() < 0.05 < aliased.std()
    assert abs(smooth.mean().item() - 0.5) < 0.02
    # Binary noise: the box filter averages ~9 source pixels per sample.
    noise = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (800, 800)).astype(np.float32))
    noise = noise.expand(1, 3, 800, 800)
    smooth = aligned_crops(noise, landmarks, 112, antialias=True)
    aliased = aligned_crops(noise, landmarks, 112, antialias=False)
    assert smooth.std() < 0.5 * aliased.std()


def test_face_partly_outside_image_uses_border_padding() -> None:
    image = torch.rand(1, 3, 100, 100)
    landmarks = ARCFACE_TEMPLATE[None] * 112 - [40.0, 40.0]
    for antialias in (False, True):
        crop = aligned_crops(image, landmarks, 56, antialias=antialias)
        assert crop.shape == (1, 3, 56, 56) and torch.isfinite(crop).all()


def test_shapes_and_validation() -> None:
    image = torch.rand(3, 50, 50)
    assert aligned_crops(image, np.zeros((0, 5, 2)), 16).shape == (0, 3, 16, 16)
    assert alignment_matrices(ARCFACE_TEMPLATE * 16, 16).shape == (1, 2, 3)
    with pytest.raises(ValueError):
        aligned_crops(torch.rand(2, 3, 50, 50), ARCFACE_TEMPLATE[None] * 16, 16)
    with pytest.raises(ValueError):
        aligned_crops(image, np.zeros((1, 4, 2)), 16)
