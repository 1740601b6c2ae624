"""Face cloak: one composition of the attack parts against face recognition.

- surrogates: an ensemble of face recognizers (``FaceRecognizer``: aligned crop in [0,1] → unit embedding);
- objective: ``IdentityAway`` (away from the original identity, optionally toward the user's decoy);
- budget: per-pixel L∞ with texture masking, plus a DSSIM penalty on each face region;
- search: ``PGD`` with momentum;
- transforms: ``SitePipeline`` draws (resize to a site's long edge, JPEG 4:2:0, blur, crop shift).

Each face is optimised on a square region around it at a working resolution (at most ``face_px`` wide), and
the perturbation is upsampled and pasted back into the full-resolution photo with feathered edges: pixels
away from the faces are never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..attacks.base import Problem
from ..attacks.budgets import LinfBudget, texture_eps_map
from ..attacks.objectives import IdentityAway
from ..attacks.perceptual import dssim
from ..attacks.search import PGD
from ..attacks.transforms import SitePipeline
from ..faces.detect import Face
from ..levels import CloakSettings
from ..surrogates import AlignedRecognizer

REGION_SCALE = 2.2  # region side / face box side: room for the loosest crop any recognizer takes
FEATHER = 0.12  # fraction of the region side over which the perturbation fades out at its border
DSSIM_WEIGHT = 20.0  # penalty weight once a face region's DSSIM exceeds the level's budget
# Other recognizers align faces their own way (other landmark models, templates and crop margins). Jittering
# the crop — landmarks moved by up to this fraction of the eye distance, crop scaled by up to ±ALIGN_ZOOM —
# keeps the cloak from depending on our alignment, which is what makes it carry over to unseen models.
ALIGN_JITTER = 0.06
ALIGN_ZOOM = 0.12

FaceProgress = Callable[[int, int, int, int], None]  # (face index, faces, step, steps)


@dataclass(frozen=True)
class FaceReport:
    box: tuple[float, float, float, float]
    similarity: dict[str, float]  # surrogate id → cosine(protected, original), no site transforms
    dssim: float  # of the face region


@dataclass(frozen=True)
class CloakResult:
    rgb: np.ndarray  # uint8 H×W×3, the protected photo
    faces: list[FaceReport]


@dataclass(frozen=True)
class _Region:
    x0: int
    y0: int
    x1: int
    y1: int
    scale: float  # working pixels per native pixel


def _region_for(face: Face, width: int, height: int, face_px: int) -> _Region:
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = side * REGION_SCALE / 2
    rx0, ry0 = max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half)))
    rx1, ry1 = min(width, int(np.ceil(cx + half))), min(height, int(np.ceil(cy + half)))
    scale = min(1.0, face_px / max(side, 1.0))
    return _Region(rx0, ry0, rx1, ry1, scale)


def _feather_mask(h: int, w: int, device: torch.device) -> Tensor:
    def ramp(n: int) -> Tensor:
        t = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
        edge = torch.minimum(t, 1 - t) / FEATHER
        return edge.clamp(0, 1)

    return (ramp(h)[:, None] * ramp(w)[None, :])[None, None]


class FaceCloak:
    """Protects the faces of a photo against an ensemble of surrogate recognizers."""

    def __init__(
        self,
        surrogates: Sequence[AlignedRecognizer],
        settings: CloakSettings,
        *,
        decoys: Sequence[Tensor] | None = None,
        decoy_weight: float = 0.5,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        if not surrogates:
            raise ValueError("the face cloak needs at least one surrogate")
        self.surrogates = list(surrogates)
        self.settings = settings
        self.decoys = list(decoys) if decoys is not None else None
        self.decoy_weight = decoy_weight
        self.device = torch.device(device)
        self.seed = seed

    def embed(self, image: Tensor, landmarks: Tensor) -> list[Tensor]:
        """Each surrogate's embeddings [1,D] of the face with ``landmarks`` [1,5,2] in ``image`` [1,3,H,W]."""
        return [s.embed(image, landmarks) for s in self.surrogates]

    def protect(
        self, rgb: np.ndarray, faces: Sequence[Face], progress: FaceProgress | None = None
    ) -> CloakResult:
        height, width = rgb.shape[:2]
        original = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        out = original.to(torch.float32)
        reports = []
        for i, face in enumerate(faces):
            region = _region_for(face, width, height, self.settings.face_px)
            native = out[region.y0:region.y1, region.x0:region.x1].permute(2, 0, 1)[None] / 255.0
            delta_native = self._protect_region(native, face, region, (width, height), i, len(faces), progress)
            patch = (native + delta_native)[0].permute(1, 2, 0) * 255.0
            out[region.y0:region.y1, region.x0:region.x1] = patch
        # Overlapping regions must not add up beyond the budget: clamp the total change per pixel.
        limit = self.settings.eps * 255.0
        total = (out - original.to(torch.float32)).clamp(-limit, limit)
        protected = (original.to(torch.float32) + total).round().clamp(0, 255).to(torch.uint8)
        for face in faces:
            reports.append(self._report(original, protected, face))
        return CloakResult(protected.cpu().numpy(), reports)

    def _protect_region(
        self,
        native: Tensor,
        face: Face,
        region: _Region,
        photo_size: tuple[int, int],
        index: int,
        count: int,
        progress: FaceProgress | None,
    ) -> Tensor:
        s = self.settings
        nh, nw = native.shape[-2:]
        wh, ww = max(8, round(nh * region.scale)), max(8, round(nw * region.scale))
        x0 = F.interpolate(native, size=(wh, ww), mode="area") if (wh, ww) != (nh, nw) else native
        x0 = x0.clamp(0.0, 1.0)  # resampling may overshoot by rounding error
        lm_native = face.landmarks - np.array([region.x0, region.y0])
        lm_work = lm_native * np.array([ww / nw, wh / nh])
        landmarks = torch.tensor(lm_work, dtype=torch.float32, device=self.device)[None]

        long_edge = max(photo_size)
        site_scales = tuple(min(1.0, edge / long_edge) / region.scale for edge in s.site_long_edges)
        generator = torch.Generator().manual_seed(self.seed + index)
        pipeline = SitePipeline(scales=site_scales, jpeg_quality=s.jpeg_quality, generator=generator)

        with torch.no_grad():
            clean = [e.detach() for e in self.embed(x0, landmarks)]
        objective = IdentityAway(clean, self.decoys, self.decoy_weight)
        mask = _feather_mask(wh, ww, self.device)

        eye_distance = float(torch.linalg.vector_norm(landmarks[0, 1] - landmarks[0, 0]))

        def jittered(points: Tensor) -> Tensor:
            if not (ALIGN_JITTER or ALIGN_ZOOM):
                return points
            centre = points.mean(dim=1, keepdim=True)
            zoom = 1 + ALIGN_ZOOM * (2 * torch.rand((), generator=generator) - 1)
            noise = torch.randn(points.shape, generator=generator) * ALIGN_JITTER * eye_distance
            return centre + (points - centre) * zoom.to(points.device) + noise.to(points.device)

        def loss(x: Tensor) -> Tensor:
            t = pipeline(x)
            embeddings = self.embed(t.image, jittered(t.map_points(landmarks)))
            penalty = F.relu(dssim(x, x0) - s.max_dssim).sum()
            return objective(embeddings) + DSSIM_WEIGHT * penalty

        budget = LinfBudget(texture_eps_map(x0, s.eps, s.eps_floor))
        search = PGD(steps=s.steps, step_size=s.step_size, generator=torch.Generator().manual_seed(self.seed))
        callback = (lambda step, total, _loss: progress(index, count, step, total)) if progress else None
        delta = search(Problem(x0, loss, budget, mask), callback=callback)
        if (wh, ww) != (nh, nw):
            delta = F.interpolate(delta, size=(nh, nw), mode="bilinear", align_corners=False)
        return delta

    def _report(self, original: Tensor, protected: Tensor, face: Face) -> FaceReport:
        """Similarity of the protected face to the original under each surrogate (no transforms)."""
        height, width = original.shape[:2]
        region = _region_for(face, width, height, self.settings.face_px)

        def crop(img: Tensor) -> Tensor:
            return img[region.y0:region.y1, region.x0:region.x1].permute(2, 0, 1)[None].to(torch.float32) / 255.0

        a, b = crop(original), crop(protected)
        landmarks = torch.tensor(face.landmarks - np.array([region.x0, region.y0]), dtype=torch.float32)[None]
        with torch.no_grad():
            ea, eb = self.embed(a, landmarks), self.embed(b, landmarks)
            similarity = {s.model_id: float((x * y).sum()) for s, x, y in zip(self.surrogates, ea, eb)}
            d = float(dssim(b, a))
        return FaceReport(face.box, similarity, d)
