"""Face cloak: one composition of the attack parts against face recognition (and, with it, emotion recognition).

- surrogates: an ensemble of face recognizers (``FaceRecognizer``: aligned crop in [0,1] → unit embedding) and,
  when the expression is hidden too, of expression readers (``BoxReader``: box crop → expression logits);
- objective: ``Terms`` — ``IdentityAway`` (away from the original identity, optionally toward the user's decoy)
  and ``ExpressionAway`` (away from the face's clean expression, or toward neutral), weighted per level;
- budget: a perceptual one — per face region a floor on SSIMULACRA2 (the metric people trust, in its own
  terms), and per pixel luma/chroma caps with texture masking (``LumaChromaBudget``);
- search: ``SmoothPGD`` (normalised, Gaussian-smoothed gradient steps) or, for the old levels, ``PGD``; with the
  expression term, one longer search on all terms ("joint") or the cloak's search followed by a second stage on
  all terms that starts from its result ("chained", ``Chain``) — the same steps, the same budget;
- transforms: ``SitePipeline`` draws (resize to a site's long edge, JPEG 4:2:0, blur, crop shift).

All faces of a photo are optimised together, as one batch: each face's region (an ellipse around the face,
zero at its edge, so no pixel outside it changes and the region has no visible border) is cut out at the
resolution the sites will serve the photo (capped at ``face_px`` for very large faces), padded to a common
size, and put through the same transforms. After the search each face's change is scaled down, if needed, until
the region's SSIMULACRA2 at native resolution meets the level's floor: the visibility budget holds exactly,
not on average.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..attacks.base import Attack, Budget, Problem
from ..attacks.budgets import LinfBudget, LumaChromaBudget, masked_caps, texture_eps_map
from ..attacks.objectives import ExpressionAway, IdentityAway, Terms
from ..attacks.perceptual import dssim
from ..attacks.search import PGD, Chain, SmoothPGD
from ..attacks.ssimulacra2 import ssimulacra2
from ..attacks.transforms import SitePipeline, Transformed
from ..expressions import EXPRESSIONS, BoxReader, square_boxes
from ..faces.detect import Face
from ..levels import CloakSettings
from ..surrogates import AlignedRecognizer

# Region shapes. Ellipse: semi-axes as fractions of the face box (MTCNN's box runs from the brows to the chin),
# its centre raised to take in the forehead; full strength inside ELLIPSE_CORE of the radius, a cosine fade to
# zero at the edge. Square (the old cloak): a box REGION_SCALE × the face box, feathered over FEATHER.
ELLIPSE_AXES = (0.68, 0.82)
ELLIPSE_LIFT = 0.10
ELLIPSE_CORE = 0.6
REGION_SCALE = 2.2
FEATHER = 0.12
PERCEPTUAL_WEIGHT = 0.05  # loss per SSIMULACRA2 point below the floor (+ margin) during the search
PERCEPTUAL_MARGIN = 2.0  # the search aims this many points above the floor, so the final scaling rarely bites
DSSIM_WEIGHT = 20.0  # penalty weight once a face region's DSSIM exceeds a Fawkes-style cap
SCALE_SEARCH_STEPS = 6  # bisection steps of the final scaling (1/64 resolution)
# Other recognizers align faces their own way (other landmark models, templates and crop margins). Jittering
# the crop — landmarks moved by up to this fraction of the eye distance, crop scaled by up to ±ALIGN_ZOOM —
# keeps the cloak from depending on our alignment, which is what makes it carry over to unseen models.
ALIGN_JITTER = 0.06
ALIGN_ZOOM = 0.12
# The same for the expression readers' box crops: the crop's centre moves by up to BOX_SHIFT of its side and
# its side changes by up to ±BOX_ZOOM (other detectors draw other boxes).
BOX_SHIFT = 0.05
BOX_ZOOM = 0.12
EXPRESSION_GOALS = ("away", "neutral")
CHAIN_STEP_FRACTION = 0.25  # the chained schedule's second stage: its step size, as a share of the level's

FaceProgress = Callable[[int, int, int, int], None]  # (0, faces, step, steps): all faces step together


@dataclass(frozen=True)
class FaceReport:
    box: tuple[float, float, float, float]
    similarity: dict[str, float]  # surrogate id → cosine(protected, original), no site transforms
    dssim: float  # of the face box, luma SSIM
    ssimulacra2: float  # of the face box at native resolution, protected vs original
    strength: float  # share of the searched change that was kept to meet the visibility floor (1 = all)
    # surrogate reader id → (clean top expression, its probability on the protected face), no site transforms;
    # empty when the expression was not hidden
    expression: dict[str, tuple[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CloakResult:
    rgb: np.ndarray  # uint8 H×W×3, the protected photo
    faces: list[FaceReport]


@dataclass(frozen=True)
class Region:
    """Native pixel bounds [x0, x1) × [y0, y1) of the part of the photo the cloak may change for one face."""

    x0: int
    y0: int
    x1: int
    y1: int
    centre: tuple[float, float]  # photo coordinates
    axes: tuple[float, float]  # ellipse semi-axes (or half-sides of the square), native pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def region_for(face: Face, width: int, height: int, shape: str = "ellipse") -> Region:
    x1, y1, x2, y2 = face.box
    bw, bh = x2 - x1, y2 - y1
    if shape == "square":
        half = max(bw, bh) * REGION_SCALE / 2
        centre, axes = ((x1 + x2) / 2, (y1 + y2) / 2), (half, half)
    elif shape == "ellipse":
        centre = ((x1 + x2) / 2, (y1 + y2) / 2 - ELLIPSE_LIFT * bh)
        axes = (ELLIPSE_AXES[0] * bw, ELLIPSE_AXES[1] * bh)
    else:
        raise ValueError(f"unknown region shape {shape!r}")
    rx0, ry0 = max(0, int(np.floor(centre[0] - axes[0]))), max(0, int(np.floor(centre[1] - axes[1])))
    rx1, ry1 = min(width, int(np.ceil(centre[0] + axes[0]))), min(height, int(np.ceil(centre[1] + axes[1])))
    return Region(rx0, ry0, rx1, ry1, centre, axes)


def region_mask(region: Region, h: int, w: int, shape: str, device: torch.device | str = "cpu") -> Tensor:
    """[1,1,h,w] weights in [0,1] over the region sampled at h × w; exactly 0 at and beyond its edge."""
    sy, sx = region.size[0] / h, region.size[1] / w
    ys = region.y0 + (torch.arange(h, dtype=torch.float32, device=device) + 0.5) * sy
    xs = region.x0 + (torch.arange(w, dtype=torch.float32, device=device) + 0.5) * sx
    u = (xs[None, :] - region.centre[0]) / region.axes[0]
    v = (ys[:, None] - region.centre[1]) / region.axes[1]
    if shape == "square":
        # Distance to the edge as a fraction of the side, ramped over FEATHER (the old cloak's feather).
        edge = torch.minimum((1 - u.abs()) / 2, (1 - v.abs()) / 2) / FEATHER
        mask = edge.clamp(0, 1)
    else:
        r = torch.sqrt(u**2 + v**2)
        t = ((r - ELLIPSE_CORE) / (1 - ELLIPSE_CORE)).clamp(0, 1)
        mask = 0.5 * (1 + torch.cos(torch.pi * t))
        mask = torch.where(r >= 1, torch.zeros_like(mask), mask)
    return mask[None, None]


def _face_box_in(region: Region, face: Face, scale_y: float, scale_x: float, h: int, w: int) -> tuple[int, int, int, int]:
    """The face box in a region sampled at h × w, clipped to it; at least 8 px each way where the region allows."""
    x1, y1, x2, y2 = face.box
    bx0 = int(np.floor((x1 - region.x0) * scale_x))
    by0 = int(np.floor((y1 - region.y0) * scale_y))
    bx1 = int(np.ceil((x2 - region.x0) * scale_x))
    by1 = int(np.ceil((y2 - region.y0) * scale_y))
    bx0, by0 = max(0, min(bx0, w - 8)), max(0, min(by0, h - 8))
    return bx0, by0, min(w, max(bx1, bx0 + 8)), min(h, max(by1, by0 + 8))


def working_scale(faces: Sequence[Face], photo_size: tuple[int, int], settings: CloakSettings) -> float:
    """Working pixels per native pixel for a photo: the scale the largest site serves it at, but no face wider
    than ``face_px`` (the cost of a step grows with the region's area)."""
    long_edge = max(photo_size)
    served = min(1.0, max(settings.site_long_edges) / long_edge)
    widest = max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces)
    return min(served, settings.face_px / max(widest, 1.0))


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
        align_jitter: bool = True,
        readers: Sequence[BoxReader] = (),
        identity: bool = True,
        expression: str | None = None,
    ):
        if identity and not surrogates:
            raise ValueError("the face cloak needs at least one surrogate recognizer")
        if expression is not None and expression not in EXPRESSION_GOALS:
            raise ValueError(f"unknown expression goal {expression!r}; choose from {', '.join(EXPRESSION_GOALS)}")
        if expression is not None and not readers:
            raise ValueError("hiding the expression needs at least one surrogate expression reader")
        if not identity and expression is None:
            raise ValueError("nothing to protect: neither identity nor expression")
        self.surrogates = list(surrogates)
        self.readers = list(readers)
        self.identity = identity
        self.expression = expression
        self.settings = settings
        self.decoys = list(decoys) if decoys is not None else None
        self.decoy_weight = decoy_weight
        self.device = torch.device(device)
        self.seed = seed
        self.align_jitter = align_jitter

    def embed(self, images: Tensor, landmarks: Tensor) -> list[Tensor]:
        """Each surrogate's embeddings [F,D]: face f has ``landmarks[f]`` [5,2] in ``images[f]`` ([F,3,H,W])."""
        return [s.embed_each(images, landmarks) for s in self.surrogates]

    def protect(
        self, rgb: np.ndarray, faces: Sequence[Face], progress: FaceProgress | None = None
    ) -> CloakResult:
        if not faces:
            return CloakResult(rgb, [])
        s = self.settings
        height, width = rgb.shape[:2]
        original = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        regions = [region_for(f, width, height, s.region) for f in faces]
        scale = working_scale(faces, (width, height), s)
        sizes = [(max(8, round(r.size[0] * scale)), max(8, round(r.size[1] * scale))) for r in regions]
        deltas = self._search(original, faces, regions, sizes, scale, (width, height), progress)

        out = original.clone()
        strengths = []
        for face, region, delta in zip(faces, regions, deltas):
            native = original[..., region.y0:region.y1, region.x0:region.x1]
            if delta.shape[-2:] != native.shape[-2:]:
                delta = F.interpolate(delta, size=native.shape[-2:], mode="bilinear", align_corners=False)
            support = region_mask(region, *native.shape[-2:], s.region, self.device) > 0
            delta = delta * support
            strength = self._fit_to_budget(native, delta, face, region)
            current = out[..., region.y0:region.y1, region.x0:region.x1]
            out[..., region.y0:region.y1, region.x0:region.x1] = (current + strength * delta).clamp(0, 1)
            strengths.append(strength)
        protected = (out * 255.0).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
        protected_np = protected.cpu().numpy()
        faces_out = [self._report(rgb, protected_np, f, r, k) for f, r, k in zip(faces, regions, strengths)]
        return CloakResult(protected_np, faces_out)

    # -- the search over all faces at once ------------------------------------------------------------------
    def _search(
        self, original: Tensor, faces: Sequence[Face], regions: Sequence[Region], sizes: Sequence[tuple[int, int]],
        scale: float, photo_size: tuple[int, int], progress: FaceProgress | None,
    ) -> list[Tensor]:
        s = self.settings
        hm, wm = max(h for h, _ in sizes), max(w for _, w in sizes)
        x0s, masks, points, face_boxes = [], [], [], []
        for face, region, (h, w) in zip(faces, regions, sizes):
            native = original[..., region.y0:region.y1, region.x0:region.x1]
            x = F.interpolate(native, size=(h, w), mode="area") if (h, w) != native.shape[-2:] else native
            # Padding to the batch's size repeats the edge (no false edges for the blur and JPEG to spread).
            x0s.append(F.pad(x.clamp(0, 1), (0, wm - w, 0, hm - h), mode="replicate"))
            masks.append(F.pad(region_mask(region, h, w, s.region, self.device), (0, wm - w, 0, hm - h)))
            sy, sx = h / region.size[0], w / region.size[1]
            points.append((face.landmarks - np.array([region.x0, region.y0])) * np.array([sx, sy]))
            bx1, by1, bx2, by2 = face.box
            face_boxes.append([(bx1 - region.x0) * sx, (by1 - region.y0) * sy, (bx2 - region.x0) * sx, (by2 - region.y0) * sy])
        x0 = torch.cat(x0s)
        mask = torch.cat(masks)
        landmarks = torch.tensor(np.stack(points), dtype=torch.float32, device=self.device)
        boxes = torch.tensor(face_boxes, dtype=torch.float32, device=self.device)

        long_edge = max(photo_size)
        site_scales = tuple(min(1.0, edge / long_edge) / scale for edge in s.site_long_edges)
        generator = torch.Generator().manual_seed(self.seed)
        pipeline = SitePipeline(scales=site_scales, jpeg_quality=s.jpeg_quality, generator=generator)
        with torch.no_grad():
            clean = [e.detach() for e in self.embed(x0, landmarks)] if self.identity else []
            clean_expressions = [torch.softmax(r.logits(x0, boxes), -1) for r in self.readers] if self.expression else []
        identity = IdentityAway(clean, self.decoys, self.decoy_weight, balance=s.balance)
        target = EXPRESSIONS.index("neutral") if self.expression == "neutral" else None
        expression = ExpressionAway(clean_expressions, target, s.expression_kappa)
        eye_distance = torch.linalg.vector_norm(landmarks[:, 1] - landmarks[:, 0], dim=-1)[:, None, None]
        count = len(faces)

        def jittered(pts: Tensor) -> Tensor:
            if not self.align_jitter:
                return pts
            centre = pts.mean(dim=1, keepdim=True)
            zoom = 1 + ALIGN_ZOOM * (2 * torch.rand((count, 1, 1), generator=generator) - 1)
            noise = torch.randn(pts.shape, generator=generator) * ALIGN_JITTER
            return centre + (pts - centre) * zoom.to(pts.device) + noise.to(pts.device) * eye_distance

        def jittered_squares(b: Tensor, margin: float) -> Tensor:
            sq = square_boxes(b, margin)
            if not self.align_jitter:
                return sq
            shift = (2 * torch.rand((count, 2), generator=generator) - 1).to(b.device) * BOX_SHIFT * sq[:, 2:]
            zoom = 1 + BOX_ZOOM * (2 * torch.rand((count, 1), generator=generator) - 1).to(b.device)
            return torch.cat([sq[:, :2] + shift, sq[:, 2:] * zoom], dim=1)

        # One view per step: the transform draw that every term reads.
        def identity_term(t: Transformed) -> Tensor:
            return identity(self.embed(t.image, jittered(t.map_points(landmarks))))

        def expression_term(t: Transformed) -> Tensor:
            served = t.map_points(boxes.view(count, 2, 2)).view(count, 4)
            return expression([r.logits(t.image, served, jittered_squares(served, r.margin)) for r in self.readers])

        terms: Terms[Transformed] = Terms({
            "identity": (1.0 if self.identity else 0.0, identity_term),
            "expression": (s.expression_weight if self.expression else 0.0, expression_term),
        })

        # Visibility is judged at native resolution (smooth skin there hides less than the downscaled face):
        # each face box's change is brought up to native size inside the loss.
        natives = []
        for face, region, (h, w) in zip(faces, regions, sizes):
            native = original[..., region.y0:region.y1, region.x0:region.x1]
            bx0, by0, bx1, by1 = _face_box_in(region, face, 1.0, 1.0, *native.shape[-2:])
            natives.append((native, (bx0, by0, bx1, by1)))

        def perceptual(x: Tensor) -> Tensor:
            total = x.new_zeros(())
            for i, (native, (bx0, by0, bx1, by1)) in enumerate(natives):
                h, w = sizes[i]
                if s.min_ssimulacra2 is not None:
                    change = x[i:i + 1, :, :h, :w] - x0[i:i + 1, :, :h, :w]
                    if (h, w) != native.shape[-2:]:
                        change = F.interpolate(change, size=native.shape[-2:], mode="bilinear", align_corners=False)
                    # The face box and the whole region (its outer part would otherwise take the change).
                    floor = s.min_ssimulacra2 + PERCEPTUAL_MARGIN
                    box = native[..., by0:by1, bx0:bx1]
                    score_box = ssimulacra2(box, (box + change[..., by0:by1, bx0:bx1]).clamp(0, 1))
                    score_region = ssimulacra2(native, (native + change).clamp(0, 1))
                    total = total + PERCEPTUAL_WEIGHT * (F.relu(floor - score_box) + F.relu(floor - score_region)).sum()
                if s.max_dssim is not None:
                    total = total + DSSIM_WEIGHT * F.relu(dssim(x[i:i + 1, :, :h, :w], x0[i:i + 1, :, :h, :w]) - s.max_dssim).sum()
            return total

        def loss_of(objective: Terms[Transformed]) -> Callable[[Tensor], Tensor]:
            def loss(x: Tensor) -> Tensor:
                total = x.new_zeros(())
                for _ in range(max(1, s.eot_samples)):
                    total = total + objective(pipeline(x))
                # Faces are independent: their losses add, so each face's gradient is its own.
                return total / max(1, s.eot_samples) * count + perceptual(x)
            return loss

        budget = self._budget(x0)
        search_generator = torch.Generator().manual_seed(self.seed)
        extra = s.expression_steps if self.expression else 0
        if self.expression and self.identity and s.expression_schedule == "chained" and extra:
            # The second stage refines the cloak's result at a fraction of the level's step size: at full size
            # its large early steps undid the identity change (README, "Hiding facial expressions too").
            search: Attack = Chain([
                (self._searcher(s.steps, search_generator), loss_of(terms.only("identity"))),
                (self._searcher(extra, search_generator, s.step_size * CHAIN_STEP_FRACTION), None),
            ])
        elif s.expression_schedule in ("joint", "chained"):
            search = self._searcher(s.steps + extra, search_generator)
        else:
            raise ValueError(f"unknown expression schedule {s.expression_schedule!r}")
        callback = (lambda step, total, _loss: progress(0, count, step, total)) if progress else None
        delta = search(Problem(x0, loss_of(terms), budget, mask), callback=callback)
        return [delta[i:i + 1, :, :h, :w] for i, (h, w) in enumerate(sizes)]

    def _searcher(self, steps: int, generator: torch.Generator, step_size: float | None = None) -> Attack:
        s = self.settings
        size = s.step_size if step_size is None else step_size
        if s.search == "sign":
            return PGD(steps=steps, step_size=size, generator=generator)
        if s.search == "smooth":
            return SmoothPGD(steps=steps, step_size=size, sigma=s.smoothing_sigma, generator=generator)
        raise ValueError(f"unknown search {s.search!r}")

    def _budget(self, x0: Tensor) -> Budget:
        s = self.settings
        if s.chroma_fraction >= 1.0:  # the old cloak: one RGB box
            return LinfBudget(texture_eps_map(x0, s.eps, s.eps_floor))
        luma, chroma = masked_caps(x0, s.eps, s.eps_floor, s.chroma_fraction)
        return LumaChromaBudget(luma, chroma)

    # -- the visibility floor, exactly, at native resolution ------------------------------------------------
    def _fit_to_budget(self, native: Tensor, delta: Tensor, face: Face, region: Region) -> float:
        """The largest share (1/64 steps) of ``delta`` whose rounded result meets the level's visibility floor."""
        s = self.settings
        if s.min_ssimulacra2 is None:
            return 1.0
        h, w = native.shape[-2:]
        bx0, by0, bx1, by1 = _face_box_in(region, face, 1.0, 1.0, h, w)
        # The face box (where the change is strongest) and the whole region (what a face-filling photo is).
        views = [(native[..., by0:by1, bx0:bx1], delta[..., by0:by1, bx0:bx1]), (native, delta)]

        def ok(k: float) -> bool:
            with torch.no_grad():
                for ref, d in views:
                    out = ((ref + k * d).clamp(0, 1) * 255).round() / 255
                    if float(ssimulacra2(ref, out)[0]) < s.min_ssimulacra2:
                        return False
            return True

        if ok(1.0):
            return 1.0
        lo, hi = 0.0, 1.0
        for _ in range(SCALE_SEARCH_STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        return lo

    def _report(self, rgb: np.ndarray, protected: np.ndarray, face: Face, region: Region, strength: float) -> FaceReport:
        """Similarity of the protected face to the original under each surrogate (no transforms), and visibility."""
        a = torch.from_numpy(np.ascontiguousarray(rgb[region.y0:region.y1, region.x0:region.x1])).permute(2, 0, 1)[None].float() / 255
        b = torch.from_numpy(np.ascontiguousarray(protected[region.y0:region.y1, region.x0:region.x1])).permute(2, 0, 1)[None].float() / 255
        a, b = a.to(self.device), b.to(self.device)
        landmarks = torch.tensor(face.landmarks - np.array([region.x0, region.y0]), dtype=torch.float32, device=self.device)[None]
        bx0, by0, bx1, by1 = _face_box_in(region, face, 1.0, 1.0, *a.shape[-2:])
        with torch.no_grad():
            ea, eb = self.embed(a, landmarks), self.embed(b, landmarks)
            similarity = {s.model_id: float((x * y).sum()) for s, x, y in zip(self.surrogates, ea, eb)}
            expression: dict[str, tuple[str, float]] = {}
            if self.expression:
                box = torch.tensor([[face.box[0] - region.x0, face.box[1] - region.y0, face.box[2] - region.x0,
                                     face.box[3] - region.y0]], dtype=torch.float32, device=self.device)
                for r in self.readers:
                    clean_p, after_p = (torch.softmax(r.logits(img, box), -1)[0] for img in (a, b))
                    label = int(clean_p.argmax())
                    expression[r.model_id] = (EXPRESSIONS[label], float(after_p[label]))
            fa, fb = a[..., by0:by1, bx0:bx1], b[..., by0:by1, bx0:bx1]
            d = float(dssim(fb, fa))
            score = float(ssimulacra2(fa.double(), fb.double())[0])
        return FaceReport(face.box, similarity, d, score, strength, expression)
