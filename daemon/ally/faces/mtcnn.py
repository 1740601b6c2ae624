"""MTCNN face detector (Zhang et al., 2016) in pure torch.

The three networks mirror facenet-pytorch 2.6.0 so its pretrained state_dicts
(``pnet.pt``, ``rnet.pt``, ``onet.pt``) load unchanged; the cascade is our own
re-implementation of its ``detect_face`` with three deliberate differences:

* Large photos: the P-Net pyramid is capped so its largest level has a long
  edge of at most ``max_side`` pixels. R-Net and O-Net always crop from the
  full-resolution image, so boxes and landmarks keep full precision.
* Boxes reaching outside the image are zero-padded (as in the original MTCNN)
  instead of being clipped and stretched, which keeps edge faces' geometry.
* Coordinates are continuous pixel coordinates: the image spans ``[0, W] x
  [0, H]`` and the centre of pixel ``(col i, row j)`` is ``(i + 0.5, j + 0.5)``.
  Boxes are ``(x1, y1, x2, y2)`` edges in that space, so ``img[y1:y2, x1:x2]``
  (after rounding) is the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

__all__ = ["MTCNN", "Detections", "ONet", "PNet", "RNet", "nms"]

# Mean/scale the networks were trained with: (pixel - 127.5) / 128.
_PIXEL_MEAN = 127.5
_PIXEL_SCALE = 0.0078125
_PNET_CELL = 12  # P-Net's receptive field, also the smallest face it sees
_PNET_STRIDE = 2
_BATCH = 512  # R-Net/O-Net crops per forward pass, bounds peak memory


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (box regression [N,4,h,w], face probability [N,h,w])."""
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return self.conv4_2(x), prob


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (box regression [N,4], face probability [N])."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights come from a TF model trained on transposed (W,H) images.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        prob = torch.softmax(self.dense5_1(x), dim=1)[:, 1]
        return self.dense5_2(x), prob


class ONet(nn.Module):
    """Output network on 48x48 crops: box, 5 landmarks, probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (box regression [N,4], landmarks [N,10] as x1..x5,y1..y5, probability [N])."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        prob = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        return self.dense6_2(x), self.dense6_3(x), prob


def nms(
    boxes: Tensor,
    scores: Tensor,
    threshold: float,
    mode: Literal["union", "min"] = "union",
) -> Tensor:
    """Greedy non-maximum suppression.

    Returns indices of kept boxes, highest score first. ``mode="union"`` is
    IoU; ``mode="min"`` divides the intersection by the smaller area (MTCNN's
    last stage uses it to drop a small box nested in a bigger one).
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = torch.argsort(scores, descending=True)
    keep: list[Tensor] = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if rest.numel() == 0:
            break
        iw = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        ih = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = iw * ih
        if mode == "min":
            denom = torch.minimum(areas[i], areas[rest])
        else:
            denom = areas[i] + areas[rest] - inter
        overlap = inter / denom.clamp(min=1e-9)
        order = rest[overlap <= threshold]
    return torch.stack(keep)


@dataclass(frozen=True)
class Detections:
    """Raw MTCNN output for one image, continuous pixel coordinates."""

    boxes: np.ndarray  # [N,4] float32, x1,y1,x2,y2
    scores: np.ndarray  # [N] float32
    landmarks: np.ndarray  # [N,5,2] float32: l-eye, r-eye, nose, mouth-l, mouth-r

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


def _load(module: nn.Module, path: str | Path) -> nn.Module:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    module.eval()
    module.requires_grad_(False)
    return module


def _square(boxes: Tensor) -> Tensor:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dim=1)


def _regress(boxes: Tensor, reg: Tensor) -> Tensor:
    """Apply MTCNN box regression (offsets relative to box width/height)."""
    w = (boxes[:, 2] - boxes[:, 0]).unsqueeze(1)
    h = (boxes[:, 3] - boxes[:, 1]).unsqueeze(1)
    return boxes + reg * torch.cat([w, h, w, h], dim=1)


def _integer_boxes(boxes: Tensor) -> Tensor:
    """Snap square boxes to whole pixels (at least 1 px) for cropping."""
    x1 = torch.round(boxes[:, 0])
    y1 = torch.round(boxes[:, 1])
    side = torch.round(boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _crops(image: np.ndarray, boxes: Tensor, size: int) -> Tensor:
    """Cut integer boxes out of a uint8 [H,W,3] image, zero-padded, area-resized to size x size.

    Returns normalised float crops [N,3,size,size].
    """
    height, width = image.shape[:2]
    out = torch.empty((len(boxes), 3, size, size), dtype=torch.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.to(torch.int64).tolist()):
        patch = torch.zeros((3, y2 - y1, x2 - x1), dtype=torch.float32)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            # torch.tensor copies, so read-only arrays (np.asarray of a PIL image) are fine.
            region = torch.tensor(image[sy1:sy2, sx1:sx2]).permute(2, 0, 1)
            patch[:, sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = region
        # "area" averages when shrinking (no aliasing); for tiny boxes it replicates pixels.
        out[k] = F.interpolate(patch.unsqueeze(0), size=(size, size), mode="area")[0]
    return (out - _PIXEL_MEAN) * _PIXEL_SCALE


def _batched(net: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    outs = [net(x[i : i + _BATCH]) for i in range(0, len(x), _BATCH)]
    return tuple(torch.cat(parts, dim=0) for parts in zip(*outs, strict=True))


class MTCNN:
    """Three-stage MTCNN cascade.

    Args:
        pnet_path, rnet_path, onet_path: facenet-pytorch state_dict files.
        min_face_size: smallest face (pixels, original image) to search for.
        thresholds: face-probability thresholds of P-, R- and O-Net.
        factor: scale step between pyramid levels.
        max_side: cap on the long edge of the largest P-Net pyramid level, or
            None for no cap. This is the speed/recall tradeoff for big photos:
            the smallest findable face becomes
            ``max(min_face_size, 12 * long_edge / max_side)`` pixels, e.g. 30 px
            on a 4000x3000 photo with the default 1600 (0.75 % of the long
            edge). P-Net cost grows with the square of ``max_side``.
    """

    def __init__(
        self,
        pnet_path: str | Path,
        rnet_path: str | Path,
        onet_path: str | Path,
        *,
        min_face_size: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        max_side: int | None = 1600,
    ) -> None:
        if min_face_size < _PNET_CELL:
            raise ValueError(f"min_face_size must be >= {_PNET_CELL}, got {min_face_size}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if max_side is not None and max_side < _PNET_CELL:
            raise ValueError(f"max_side must be >= {_PNET_CELL} or None, got {max_side}")
        self.pnet = _load(PNet(), pnet_path)
        self.rnet = _load(RNet(), rnet_path)
        self.onet = _load(ONet(), onet_path)
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.max_side = max_side

    def smallest_face(self, width: int, height: int) -> float:
        """Smallest face size (pixels) this detector can find in a width x height image."""
        return _PNET_CELL / self._top_scale(width, height)

    def _top_scale(self, width: int, height: int) -> float:
        scale = _PNET_CELL / self.min_face_size
        if self.max_side is not None:
            scale = min(scale, self.max_side / max(width, height))
        return scale

    def detect(self, rgb: np.ndarray) -> Detections:
        """Detect faces in a uint8 RGB array [H,W,3] (or grey [H,W])."""
        if rgb.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image, got {rgb.dtype}")
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an [H,W,3] RGB image, got shape {rgb.shape}")
        with torch.inference_mode():
            return self._cascade(rgb)

    # -- stages -----------------------------------------------------------------

    def _cascade(self, image: np.ndarray) -> Detections:
        boxes = self._propose(image)
        if len(boxes) == 0:
            return Detections.empty()
        boxes = self._refine(image, boxes)
        if len(boxes) == 0:
            return Detections.empty()
        return self._output(image, boxes)

    def _pyramid(self, height: int, width: int) -> list[tuple[int, int]]:
        """(h, w) of each P-Net level, largest first, none smaller than 12 px."""
        scale = self._top_scale(width, height)
        sizes = []
        while min(height, width) * scale >= _PNET_CELL:
            sizes.append((max(1, math.ceil(height * scale)), max(1, math.ceil(width * scale))))
            scale *= self.factor
        return sizes

    def _propose(self, image: np.ndarray) -> Tensor:
        """Stage 1: P-Net over the pyramid; returns squared candidate boxes [N,4]."""
        height, width = image.shape[:2]
        sizes = self._pyramid(height, width)
        if not sizes:
            return torch.zeros((0, 4))
        # Area-downsample the original once to the top level (Pillow's box filter
        # on uint8: ~4x faster than torch's on a 12 MP float copy) and derive the
        # other levels from it; unlike chaining level to level, no blur builds up.
        top_h, top_w = sizes[0]
        if (top_h, top_w) != (height, width):
            image = np.asarray(Image.fromarray(image).resize((top_w, top_h), Image.Resampling.BOX))
        top = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)
        candidates: list[Tensor] = []
        for lh, lw in sizes:
            level = top if (lh, lw) == sizes[0] else F.interpolate(top, size=(lh, lw), mode="area")
            reg, prob = self.pnet((level - _PIXEL_MEAN) * _PIXEL_SCALE)
            rows, cols = torch.nonzero(prob[0] >= self.thresholds[0], as_tuple=True)
            if rows.numel() == 0:
                continue
            sx, sy = lw / width, lh / height
            x1 = cols.float() * _PNET_STRIDE / sx
            y1 = rows.float() * _PNET_STRIDE / sy
            boxes = torch.stack([x1, y1, x1 + _PNET_CELL / sx, y1 + _PNET_CELL / sy], dim=1)
            scores = prob[0, rows, cols]
            offsets = reg[0, :, rows, cols].T
            keep = nms(boxes, scores, 0.5)
            candidates.append(torch.cat([boxes[keep], scores[keep, None], offsets[keep]], dim=1))
        if not candidates:
            return torch.zeros((0, 4))
        cand = torch.cat(candidates)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return _square(_regress(cand[:, :4], cand[:, 5:9]))

    def _refine(self, image: np.ndarray, boxes: Tensor) -> Tensor:
        """Stage 2: R-Net rescoring and regression; returns squared boxes."""
        boxes = _integer_boxes(boxes)
        reg, prob = _batched(self.rnet, _crops(image, boxes, 24))
        ok = prob > self.thresholds[1]
        boxes, reg, prob = boxes[ok], reg[ok], prob[ok]
        keep = nms(boxes, prob, 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    def _output(self, image: np.ndarray, boxes: Tensor) -> Detections:
        """Stage 3: O-Net final score, box and landmarks."""
        boxes = _integer_boxes(boxes)
        reg, points, prob = _batched(self.onet, _crops(image, boxes, 48))
        ok = prob > self.thresholds[2]
        boxes, reg, points, prob = boxes[ok], reg[ok], points[ok], prob[ok]
        if len(boxes) == 0:
            return Detections.empty()
        w = (boxes[:, 2] - boxes[:, 0]).unsqueeze(1)
        h = (boxes[:, 3] - boxes[:, 1]).unsqueeze(1)
        # Landmarks are fractions of the (square) O-Net input box.
        lx = boxes[:, 0:1] + points[:, :5] * w
        ly = boxes[:, 1:2] + points[:, 5:] * h
        landmarks = torch.stack([lx, ly], dim=2)
        final = _regress(boxes, reg)
        keep = nms(final, prob, 0.7, mode="min")
        return Detections(
            boxes=final[keep].numpy().astype(np.float32),
            scores=prob[keep].numpy().astype(np.float32),
            landmarks=landmarks[keep].numpy().astype(np.float32),
        )
