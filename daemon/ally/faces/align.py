"""Five-point face alignment: similarity transforms and differentiable crops.

Coordinate convention (the same as :mod:`ally.faces.mtcnn`): continuous pixel
coordinates, the image spans ``[0, W] x [0, H]`` and the centre of pixel
``(col i, row j)`` is ``(i + 0.5, j + 0.5)``. Templates are in normalised crop
coordinates: ``(0, 0)`` is the crop's top-left corner, ``(1, 1)`` its
bottom-right corner, so a template point ``t`` lands at ``t * size`` in a
``size`` x ``size`` crop. This convention matches ``grid_sample`` with
``align_corners=False``. (OpenCV/InsightFace put pixel centres on integers;
their coordinates are ours minus 0.5.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ARCFACE_TEMPLATE",
    "aligned_crops",
    "alignment_matrices",
    "face_template",
    "similarity_transform",
]

_ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],  # left eye (viewer's left)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)
# InsightFace's numbers are OpenCV pixel indices in a 112x112 crop: shift to
# pixel-centre coordinates, then normalise.
ARCFACE_TEMPLATE: np.ndarray = (_ARCFACE_112 + 0.5) / 112.0
ARCFACE_TEMPLATE.setflags(write=False)

# Above this many source pixels per crop pixel, bilinear sampling skips
# pixels and aliases; the antialias path box-filters down to at most this.
_MAX_SAMPLING_STEP = 2.0


def face_template(margin: float = 0.0) -> np.ndarray:
    """The ArcFace 5-point template, optionally for a looser crop.

    ``margin`` is the border added on each side, as a fraction of the ArcFace
    crop side: ``margin=0.25`` gives a crop 1.5x as wide, with the ArcFace crop
    centred in it. Returns a new [5,2] float64 array in normalised coordinates.
    """
    if margin <= -0.5:
        raise ValueError(f"margin must be > -0.5, got {margin}")
    return 0.5 + (ARCFACE_TEMPLATE - 0.5) / (1.0 + 2.0 * margin)


def similarity_transform(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Umeyama (1991) with the reflection case excluded. Returns a 2x3 float64
    matrix ``M`` with ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    src = np.asarray(src_pts, dtype=np.float64)
    dst = np.asarray(dst_pts, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching [N>=2, 2] point sets, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError("source points are degenerate (all equal)")
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # would be a reflection: flip the weakest axis instead
    rot = u @ np.diag(d) @ vt
    scale = (sigma * d).sum() / src_var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def alignment_matrices(landmarks: np.ndarray, size: int, template: np.ndarray = ARCFACE_TEMPLATE) -> np.ndarray:
    """Per-face 2x3 matrices mapping image coordinates to ``size`` x ``size`` crop coordinates.

    ``landmarks`` is [F,5,2] (or [5,2]) in image pixel coordinates.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    dst = np.asarray(template, dtype=np.float64) * size
    if pts.ndim != 3 or pts.shape[1:] != dst.shape:
        raise ValueError(f"landmarks must be [F,{len(dst)},2], got {pts.shape}")
    return np.stack([similarity_transform(p, dst) for p in pts]) if len(pts) else np.zeros((0, 2, 3))


def _invert(matrix: np.ndarray) -> np.ndarray:
    inv = np.empty((2, 3))
    inv[:, :2] = np.linalg.inv(matrix[:, :2])
    inv[:, 2] = -inv[:, :2] @ matrix[:, 2]
    return inv


def _theta(crop_to_image: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """Express a crop->image pixel map in affine_grid's normalised [-1, 1] coordinates."""
    # normalised = 2 * pixel / extent - 1 on both sides (align_corners=False).
    to_crop_px = np.array([[size / 2, 0, size / 2], [0, size / 2, size / 2], [0, 0, 1]])
    to_image_norm = np.array([[2 / width, 0, -1], [0, 2 / height, -1], [0, 0, 1]])
    full = np.vstack([crop_to_image, [0, 0, 1]])
    return (to_image_norm @ full @ to_crop_px)[:2]


def _sample(image: Tensor, crop_to_image: np.ndarray, size: int) -> Tensor:
    """Bilinear-sample one [1,C,H,W] image through a crop->image pixel map."""
    height, width = image.shape[-2:]
    theta = torch.as_tensor(_theta(crop_to_image, width, height, size), dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta[None], [1, image.shape[1], size, size], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _pooled_window(image: Tensor, crop_to_image: np.ndarray, size: int, factor: int) -> tuple[Tensor, np.ndarray]:
    """Box-filter (factor x factor) the part of ``image`` a crop reads.

    Returns the pooled window and the crop->window pixel map.
    """
    height, width = image.shape[-2:]
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    footprint = corners @ crop_to_image.T
    # One pooled pixel of slack so bilinear taps near the edge stay inside the window.
    x0 = max(0, math.floor(footprint[:, 0].min()) - factor)
    y0 = max(0, math.floor(footprint[:, 1].min()) - factor)
    x1 = min(width, math.ceil(footprint[:, 0].max()) + factor)
    y1 = min(height, math.ceil(footprint[:, 1].max()) + factor)
    if x1 - x0 < factor or y1 - y0 < factor:
        # The crop lies entirely off the image: sampling the full image with
        # border padding gives the same result as without antialiasing.
        return image, crop_to_image
    # Whole pooling cells only; the < factor pixels dropped sit at the image border.
    x1 = x0 + (x1 - x0) // factor * factor
    y1 = y0 + (y1 - y0) // factor * factor
    window = F.avg_pool2d(image[..., y0:y1, x0:x1], kernel_size=factor, stride=factor)
    to_window = np.array([[1 / factor, 0, -x0 / factor], [0, 1 / factor, -y0 / factor], [0, 0, 1]])
    return window, (to_window @ np.vstack([crop_to_image, [0, 0, 1]]))[:2]


def aligned_crops(
    image: Tensor,
    landmarks: np.ndarray,
    size: int,
    template: np.ndarray = ARCFACE_TEMPLATE,
    *,
    antialias: bool = True,
) -> Tensor:
    """Differentiably cut aligned face crops out of ``image``.

    Args:
        image: [1,3,H,W] or [3,H,W] tensor (values e.g. in [0,1]); gradients
            flow back to it.
        landmarks: [F,5,2] landmarks in pixel coordinates of ``image``.
        size: side of the square output crops.
        template: [5,2] normalised template (see :func:`face_template`).
        antialias: when a face spans more than twice ``size`` pixels, first
            average-pool the region it is read from so bilinear sampling
            steps at most 2 source pixels per crop pixel (plain bilinear
            sampling of a much larger face aliases).

    Returns:
        [F,3,size,size] crops (bilinear, border padding outside the image).
    """
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be [1,C,H,W] or [C,H,W], got {tuple(image.shape)}")
    matrices = alignment_matrices(landmarks, size, template)
    crops = []
    for matrix in matrices:
        crop_to_image = _invert(matrix)
        source, sample_map = image, crop_to_image
        step = math.sqrt(abs(np.linalg.det(crop_to_image[:, :2])))  # source px per crop px
        if antialias and step > _MAX_SAMPLING_STEP:
            factor = math.ceil(step / _MAX_SAMPLING_STEP)
            source, sample_map = _pooled_window(image, crop_to_image, size, factor)
        crops.append(_sample(source, sample_map, size))
    if not crops:
        return image.new_zeros((0, image.shape[1], size, size))
    return torch.cat(crops, dim=0)
