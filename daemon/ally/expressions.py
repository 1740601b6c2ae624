"""Expression readers as the attack and the receipt see them: each with the face crop its runtime takes.

An ``ExpressionReader`` (``ally_models.expressions``) maps a square RGB crop in [0, 1] to logits over
``EXPRESSIONS``. ``BoxReader`` adds the step before it: a square crop around a detector's face box (the box
squared on its longer side, widened by the reader's margin), differentiable with respect to the image, so that
the attack runs every reader on the same image through the same site transforms as the recognizers.

Emotion readers crop by the detector's box, not by aligned landmarks (fer: box → square → +10 px; face-api:
box → padded square → 112 px): no rotation, and the margin follows the box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ally_models.cache import ModelCache
from ally_models.expressions import EXPRESSIONS, ExpressionReader, load_expression_reader

from .config import EXPRESSION_SURROGATES, HELD_OUT_READER

__all__ = ["EXPRESSIONS", "EXPRESSION_SURROGATES", "HELD_OUT_READER", "BoxReader", "box_crops", "load_reader",
           "square_boxes"]


# Border around the squared detector box, as a fraction of its side, on each side: fer adds 10 px around
# OpenCV/MTCNN boxes of ~100 px faces; face-api's SSD boxes run wider than MTCNN's brow-to-chin box.
CROP_MARGIN: dict[str, float] = {"fer-minixception": 0.1, "human-emotion": 0.1, "faceapi-expression": 0.1}
SUPERSAMPLE = 2  # crops are sampled at this multiple of the reader's input, then area-averaged (no aliasing)


def square_boxes(boxes: Tensor, margin: float) -> Tensor:
    """[F,4] (x1, y1, x2, y2) → [F,3] (centre x, centre y, side): squared on the longer side, plus margin."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1 + 2 * margin)
    return torch.stack([cx, cy, side], dim=1)


def box_crops(images: Tensor, squares: Tensor, size: int) -> Tensor:
    """Square crops [F,3,size,size] of ``squares`` [F,3] (continuous pixel coordinates) out of ``images``
    ([F,3,H,W], one face per image, or [1,3,H,W] shared); outside the image the edge pixels repeat."""
    count = squares.shape[0]
    if images.shape[0] == 1 and count > 1:
        images = images.expand(count, -1, -1, -1)
    h, w = images.shape[-2:]
    cx, cy, side = squares.unbind(1)
    theta = torch.zeros(count, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = side / w
    theta[:, 0, 2] = 2 * cx / w - 1
    theta[:, 1, 1] = side / h
    theta[:, 1, 2] = 2 * cy / h - 1
    fine = size * SUPERSAMPLE
    grid = F.affine_grid(theta, [count, 3, fine, fine], align_corners=False)
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return F.avg_pool2d(crops, SUPERSAMPLE) if SUPERSAMPLE > 1 else crops


@dataclass
class BoxReader:
    reader: ExpressionReader
    margin: float

    @property
    def model_id(self) -> str:
        return self.reader.model_id

    def logits(self, images: Tensor, boxes: Tensor, squares: Tensor | None = None) -> Tensor:
        """Logits [F,7] of the faces with ``boxes`` [F,4] in ``images``; differentiable with respect to the
        image. ``squares`` [F,3] replaces the squared boxes (the attack jitters them)."""
        sq = square_boxes(boxes, self.margin) if squares is None else squares
        return self.reader(box_crops(images, sq, self.reader.input_size))

    @torch.no_grad()
    def read(self, rgb: np.ndarray, boxes: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
        """Probabilities [F,7] (EXPRESSIONS order) of the faces at ``boxes`` in a uint8 H×W×3 photo."""
        if not boxes:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        device = next(iter(self.reader.buffers()), torch.zeros(())).device
        image = torch.from_numpy(np.array(rgb, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float() / 255
        b = torch.tensor(np.asarray(boxes, dtype=np.float32), device=device)
        return torch.softmax(self.logits(image, b), dim=-1).cpu().numpy()


def load_reader(model_id: str, cache: ModelCache, device: torch.device | str) -> BoxReader:
    """An expression reader from the model cache (pulled if needed) with its crop margin."""
    if model_id not in CROP_MARGIN:
        raise KeyError(f"{model_id!r} is not an expression reader; choose from {sorted(CROP_MARGIN)}")
    files = cache.files(model_id, pull=True)
    reader = load_expression_reader(model_id, files).to(device).eval().requires_grad_(False)
    return BoxReader(reader, CROP_MARGIN[model_id])
