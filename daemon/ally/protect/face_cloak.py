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
- transforms: ``SitePipeline`` draws (resize to a site's long edge, JPEG 4:2:0, blur, crop shift), and the
  crops other systems cut (``ally.faces.frames``: their own templates, dlib's chips, box crops, small rolls);
- person-level protection: faces that match the user's enrolled reference embeddings ("protect me") are pushed
  away from all of them (the user's identity, not only this photo's face).

All faces of a photo are optimised together, as one batch: each face's region (an ellipse inscribed in the head
box — the face box grown by a quarter on each side, ``ally.faces.head`` — zero at its edge, so no pixel outside
the head changes and the region has no visible border) is cut out at the resolution the sites will serve the
photo (capped at ``face_px`` for very large faces), padded to a common size, and put through the same
transforms. After the search each face's change is scaled down, if needed, until the head's SSIMULACRA2 on the
pixels as written (rounded, and through the output encoder when the caller gives it) meets the level's floor:
the visibility budget holds exactly where people look, not on average and not on a box of our choosing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ally_models.tfjs_graph import feature_dropout

from ..attacks.base import Attack, Budget, Problem
from ..attacks.budgets import LinfBudget, LumaChromaBudget, masked_caps, texture_eps_map
from ..attacks.objectives import ExpressionAway, IdentityAway, Terms
from ..attacks.perceptual import dssim
from ..attacks.search import PGD, Chain, SmoothPGD
from ..attacks.ssimulacra2 import ssimulacra2
from ..attacks.transforms import SitePipeline, Transformed
from ..expressions import EXPRESSIONS, BoxReader, square_boxes
from ..faces import frames
from ..faces.detect import Face
from ..faces.head import head_box
from ..levels import CloakSettings
from ..surrogates import AlignedRecognizer

# Region shapes. Ellipse: semi-axes as fractions of the face box (MTCNN's box runs from the brows to the chin),
# its centre raised to take in the forehead, inscribed in the head box (its top is the head box's top, its sides
# inside); full strength inside ELLIPSE_CORE of the radius, a cosine fade to zero at the edge. Square (the old
# cloak): a box REGION_SCALE × the face box, feathered over FEATHER.
ELLIPSE_AXES = (0.68, 0.70)
ELLIPSE_LIFT = 0.05
ELLIPSE_CORE = 0.6
REGION_SCALE = 2.2
FEATHER = 0.12
PERCEPTUAL_WEIGHT = 0.05  # loss per SSIMULACRA2 point below the floor (+ margin) during the search
PERCEPTUAL_MARGIN = 2.0  # the search aims this many points above the floor, so the final scaling rarely bites
DSSIM_WEIGHT = 20.0  # penalty weight once a face region's DSSIM exceeds a Fawkes-style cap
CALIBRATION_SHARE = 0.4  # the search's first part, after which each face's budget is scaled to meet the floor
CALIBRATION_ROUNDS = 3  # strength guesses per face when calibrating (no encoder, rounding only)
FACE_BUDGET = 1.5  # several faces: a step costs about this many one-face steps (models_per_step)
ENCODER_ROOM = 5.0  # SSIMULACRA2 points the output encoder must leave a head for the floor to be judged on the original
FIT_ROUNDS = 6  # rounds of the final scaling (each: compose, write, score the heads that are not settled)
FIT_TOLERANCE = 0.05  # a face's strength is settled once its passing and failing strengths are this close
FIT_AIM = 0.3  # the scaling aims this many SSIMULACRA2 points above the floor (rounding noise)
# Person-level protection: a face is the user's when this surrogate's cosine to one of the user's reference
# embeddings reaches its published same-person threshold (MobileFaceNet, sirius-ai: 0.395).
USER_MATCH = ("mobilefacenet", 0.395)
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
    ssimulacra2: float  # of the head (face box + a quarter each side) on the pixels as written, vs the original
    strength: float  # share of the searched change that was kept to meet the visibility floor (1 = all)
    # surrogate reader id → (clean top expression, its probability on the protected face), no site transforms;
    # empty when the expression was not hidden
    expression: dict[str, tuple[str, float]] = field(default_factory=dict)
    user: bool = False  # matched the user's enrolled references: pushed away from the user's whole identity


@dataclass(frozen=True)
class CloakResult:
    rgb: np.ndarray  # uint8 H×W×3, the protected photo
    faces: list[FaceReport]
    photo_ssimulacra2: float | None = None  # the whole photo as written vs the original (None: nothing cloaked)
    skipped: int = 0  # faces left untouched ("only me": they did not match the user)


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
    if shape == "ellipse":  # never past the head box, where the floor is checked
        hx0, hy0, hx1, hy1 = head_box(face.box, (height, width))
        rx0, ry0, rx1, ry1 = max(rx0, hx0), max(ry0, hy0), min(rx1, hx1), min(ry1, hy1)
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


def models_per_step(models: int, faces: int) -> int:
    """How many surrogates (drawn at random) see each step: all for one face; with more faces fewer, so that a
    step costs about FACE_BUDGET one-face steps (on a CPU a batch of crops costs what its crops cost one by one).
    Every surrogate still sees each face, on other steps."""
    return max(1, min(models, round(models * FACE_BUDGET / max(faces, 1))))


def working_scale(faces: Sequence[Face], photo_size: tuple[int, int], settings: CloakSettings) -> float:
    """Working pixels per native pixel for a photo: the scale the largest site serves it at, but no face wider
    than ``face_px`` (the cost of a step grows with the region's area)."""
    long_edge = max(photo_size)
    served = min(1.0, max(settings.site_long_edges) / long_edge)
    widest = max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces)
    return min(served, settings.face_px / max(widest, 1.0))


Written = Callable[[np.ndarray], np.ndarray]  # uint8 H×W×3 → the same pixels as the output file will hold them


def _lossless(rgb: np.ndarray) -> np.ndarray:
    """A lossless file holds the rounded pixels as they are."""
    return rgb


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
        references: Sequence[Tensor] | None = None,
        only_me: bool = False,
    ):
        """``references``: per surrogate, the user's enrolled embeddings [R,D] ("protect me"; None: not enrolled);
        ``only_me``: cloak only the faces that match them, leave the others untouched."""
        if identity and not surrogates:
            raise ValueError("the face cloak needs at least one surrogate recognizer")
        if expression is not None and expression not in EXPRESSION_GOALS:
            raise ValueError(f"unknown expression goal {expression!r}; choose from {', '.join(EXPRESSION_GOALS)}")
        if expression is not None and not readers:
            raise ValueError("hiding the expression needs at least one surrogate expression reader")
        if not identity and expression is None:
            raise ValueError("nothing to protect: neither identity nor expression")
        if references is not None and len(references) != len(surrogates):
            raise ValueError("one reference set per surrogate is required")
        if only_me and references is None:
            raise ValueError('"only me" needs your reference photos: ally me add PHOTO…')
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
        self.references = [r.to(self.device) for r in references] if references is not None else None
        self.only_me = only_me

    def embed(self, images: Tensor, landmarks: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """Each surrogate's embeddings [F,D]: face f has ``landmarks[f]`` [5,2] in ``images[f]`` ([F,3,H,W]);
        ``landmarks`` may be one [F,5,2] for all surrogates or one per surrogate."""
        per_model = [landmarks] * len(self.surrogates) if isinstance(landmarks, Tensor) else list(landmarks)
        return [s.embed_each(images, pts) for s, pts in zip(self.surrogates, per_model)]

    # -- person level -----------------------------------------------------------------------------------------
    def user_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[bool]:
        """Which faces are the user's: the matching surrogate's cosine to any reference ≥ its threshold."""
        if self.references is None or not faces:
            return [False] * len(faces)
        ids = [s.model_id for s in self.surrogates]
        model, threshold = USER_MATCH
        k = ids.index(model) if model in ids else 0
        if model not in ids:
            threshold = 0.5  # no published threshold for the others: a conservative cut on their cosine
        image = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255
        points = torch.tensor(np.stack([f.landmarks for f in faces]), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            e = self.surrogates[k].embed(image, points)
        return [bool(v) for v in ((e @ self.references[k].T).max(-1).values >= threshold)]

    def protect(
        self, rgb: np.ndarray, faces: Sequence[Face], progress: FaceProgress | None = None,
        written: Written | None = None,
    ) -> CloakResult:
        """Cloak ``faces`` of ``rgb`` (uint8 H×W×3). ``written``: the output encoder's round trip, so that the
        visibility floor holds on the file as written (default: the rounded pixels, i.e. a lossless file)."""
        if not faces:
            return CloakResult(rgb, [])
        users = self.user_faces(rgb, faces) if self.identity else [False] * len(faces)
        skipped = 0
        if self.only_me:
            kept = [(f, u) for f, u in zip(faces, users) if u]
            skipped = len(faces) - len(kept)
            if not kept:
                return CloakResult(rgb, [], skipped=skipped)
            faces, users = [f for f, _ in kept], [u for _, u in kept]
        s = self.settings
        written = written or _lossless
        height, width = rgb.shape[:2]
        original = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        regions = [region_for(f, width, height, s.region) for f in faces]
        scale = working_scale(faces, (width, height), s)
        sizes = [(max(8, round(r.size[0] * scale)), max(8, round(r.size[1] * scale))) for r in regions]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # model augmentation draws from the global generator
            deltas = self._search(original, faces, regions, sizes, scale, (width, height), progress, users)

        natives = []
        for region, delta in zip(regions, deltas):
            native = original[..., region.y0:region.y1, region.x0:region.x1]
            if delta.shape[-2:] != native.shape[-2:]:
                delta = F.interpolate(delta, size=native.shape[-2:], mode="bilinear", align_corners=False)
            support = region_mask(region, *native.shape[-2:], s.region, self.device) > 0
            natives.append((delta * support).cpu())
        plain = written(rgb) if s.min_ssimulacra2 is not None else rgb  # the encoder alone, once
        strengths, heads, protected_np = self._fit(rgb, faces, regions, natives, written, plain)
        photo_score = None
        if s.min_ssimulacra2 is not None:
            # The whole photo too: a head can pass while the photo it nearly fills does not (a face chip) — unless
            # the encoder alone already puts the photo below the floor: then the floor is not the cloak's to keep.
            photo_score = _score(rgb, written(protected_np))
            if photo_score < s.min_ssimulacra2 and _score(rgb, plain) >= s.min_ssimulacra2:
                # Many faces close together: each head passes, the photo as a whole does not. Scale all down.
                strengths, heads, protected_np, photo_score = self._fit_photo(rgb, faces, regions, natives, written,
                                                                               strengths)
        faces_out = [self._report(rgb, protected_np, f, r, k, h, u)
                     for f, r, k, h, u in zip(faces, regions, strengths, heads, users)]
        return CloakResult(protected_np, faces_out, photo_score, skipped)

    # -- the search over all faces at once ------------------------------------------------------------------
    def _search(
        self, original: Tensor, faces: Sequence[Face], regions: Sequence[Region], sizes: Sequence[tuple[int, int]],
        scale: float, photo_size: tuple[int, int], progress: FaceProgress | None, users: Sequence[bool],
    ) -> list[Tensor]:
        s = self.settings
        hm, wm = max(h for h, _ in sizes), max(w for _, w in sizes)
        x0s, masks, points, face_boxes, heads = [], [], [], [], []
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
            heads.append(_face_box_in(region, face, sy, sx, h, w) if s.region == "square" else (0, 0, w, h))
        x0 = torch.cat(x0s)
        mask = torch.cat(masks)
        points_np, boxes_np = np.stack(points), np.array(face_boxes)
        landmarks = torch.tensor(points_np, dtype=torch.float32, device=self.device)
        boxes = torch.tensor(face_boxes, dtype=torch.float32, device=self.device)
        count = len(faces)

        long_edge = max(photo_size)
        site_scales = tuple(min(1.0, edge / long_edge) / scale for edge in s.site_long_edges)
        generator = torch.Generator().manual_seed(self.seed)
        pipeline = SitePipeline(scales=site_scales, jpeg_quality=s.jpeg_quality, generator=generator)
        templates = [m.template for m in self.surrogates]
        kinds = frames.KINDS if s.other_crops else ("own",)

        def crop_points(kind: str, rolls: np.ndarray | None = None, margin: float = 0.2) -> list[Tensor]:
            """Per surrogate, the points that make it crop every face as ``kind`` does (working pixels)."""
            return [torch.tensor(frames.points_for(kind, points_np, boxes_np, t, margin, rolls), dtype=torch.float32,
                                 device=self.device) for t in templates]

        nominal = {kind: crop_points(kind) for kind in kinds}
        with torch.no_grad():
            # Each crop kind compares against the clean face cut the same way.
            clean = {kind: [e.detach() for e in self.embed(x0, pts)] for kind, pts in nominal.items()} \
                if self.identity else {}
            clean_expressions = [torch.softmax(r.logits(x0, boxes), -1) for r in self.readers] if self.expression else []
        anchors = {kind: self._anchors(c, users) for kind, c in clean.items()}
        target = EXPRESSIONS.index("neutral") if self.expression == "neutral" else None
        expression = ExpressionAway(clean_expressions, target, s.expression_kappa)
        eye_distance = torch.linalg.vector_norm(landmarks[:, 1] - landmarks[:, 0], dim=-1)[:, None, None]

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

        def drawn_crop() -> tuple[str, list[Tensor]]:
            """One draw of how some system crops the faces: a kind, a roll, a box margin."""
            if len(kinds) == 1 or not self.align_jitter:
                return kinds[0], nominal[kinds[0]]
            kind = kinds[int(torch.randint(len(kinds), (), generator=generator))]
            rolls = (2 * torch.rand(count, generator=generator).numpy() - 1) * frames.MAX_ROTATION_DEG
            lo, hi = frames.BOX_MARGIN
            margin = lo + (hi - lo) * float(torch.rand((), generator=generator))
            return kind, crop_points(kind, rolls, margin)

        # One view per step: the transform draw that every term reads.
        per_step = models_per_step(len(self.surrogates), count)

        def identity_term(t: Transformed) -> Tensor:
            kind, pts = drawn_crop()
            chosen = sorted(torch.randperm(len(self.surrogates), generator=generator)[:per_step].tolist())
            away = IdentityAway([anchors[kind][k] for k in chosen],
                                [self.decoys[k] for k in chosen] if self.decoys is not None else None,
                                self.decoy_weight, balance=s.balance)
            return away([self.surrogates[k].embed_each(t.image, jittered(t.map_points(pts[k]))) for k in chosen])

        def expression_term(t: Transformed) -> Tensor:
            served = t.map_points(boxes.view(count, 2, 2)).view(count, 4)
            return expression([r.logits(t.image, served, jittered_squares(served, r.margin)) for r in self.readers])

        terms: Terms[Transformed] = Terms({
            "identity": (1.0 if self.identity else 0.0, identity_term),
            "expression": (s.expression_weight if self.expression else 0.0, expression_term),
        })

        step = [0]

        def perceptual(x: Tensor) -> Tensor:
            """Visibility inside the search, at the working resolution and every few steps (the exact floor is
            enforced after the search, on the written pixels): it steers the change to where it shows least."""
            total = x.new_zeros(())
            step[0] += 1
            every = s.perceptual_every
            if s.min_ssimulacra2 is not None and every and step[0] % every == 0:
                floor = s.min_ssimulacra2 + PERCEPTUAL_MARGIN
                for i, (h, w) in enumerate(sizes):
                    hx0, hy0, hx1, hy1 = heads[i]
                    ref = x0[i:i + 1, :, hy0:hy1, hx0:hx1]
                    score = ssimulacra2(ref, x[i:i + 1, :, hy0:hy1, hx0:hx1].clamp(0, 1))
                    total = total + every * PERCEPTUAL_WEIGHT * F.relu(floor - score).sum()
            if s.max_dssim is not None:
                for i, (h, w) in enumerate(sizes):
                    total = total + DSSIM_WEIGHT * F.relu(dssim(x[i:i + 1, :, :h, :w], x0[i:i + 1, :, :h, :w]) - s.max_dssim).sum()
            return total

        def loss_of(objective: Terms[Transformed]) -> Callable[[Tensor], Tensor]:
            def loss(x: Tensor) -> Tensor:
                total = x.new_zeros(())
                with feature_dropout(s.feature_dropout):
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
            # its large early steps undid the identity change (docs/cloak.md, "Hiding facial expressions too").
            search: Attack = Chain([
                (self._searcher(s.steps, search_generator), loss_of(terms.only("identity"))),
                (self._searcher(extra, search_generator, s.step_size * CHAIN_STEP_FRACTION), None),
            ])
        elif s.expression_schedule in ("joint", "chained"):
            search = self._searcher(s.steps + extra, search_generator)
        else:
            raise ValueError(f"unknown expression schedule {s.expression_schedule!r}")
        callback = (lambda step, total, _loss: progress(0, count, step, total)) if progress else None
        problem = Problem(x0, loss_of(terms), budget, mask)
        if s.min_ssimulacra2 is None or not s.calibrate or isinstance(search, Chain):
            delta = search(problem, callback=callback)
            return [delta[i:i + 1, :, :h, :w] for i, (h, w) in enumerate(sizes)]
        # Calibrated budget: a first part of the search at the level's caps, then each face's caps (and steps)
        # scaled by the share of that change whose head meets the floor, and the rest of the search inside them —
        # so the steps are spent on a change that will be kept, instead of on one that the floor scales away.
        total = s.steps + extra
        first = max(1, round(total * CALIBRATION_SHARE))
        early = (lambda step, _total, _loss: progress(0, count, step, total)) if progress else None
        delta = self._searcher(first, search_generator)(problem, callback=early)
        k = self._calibrate(original, regions, sizes, mask, delta)
        scaled = self._budget(x0, k)
        rest = self._searcher(total - first, search_generator, s.step_size * k[:, None, None, None])
        late = (lambda step, _total, _loss: progress(0, count, first + step, total)) if progress else None
        delta = rest(replace(problem, budget=scaled, start=delta * k[:, None, None, None]), callback=late)
        return [delta[i:i + 1, :, :h, :w] for i, (h, w) in enumerate(sizes)]

    def _calibrate(self, original: Tensor, regions: Sequence[Region], sizes: Sequence[tuple[int, int]], mask: Tensor,
                   delta: Tensor) -> Tensor:
        """Per face [F]: the share of ``delta`` (working resolution, before the mask) whose head, at native
        resolution and rounded, is about at the level's floor (+ the search's margin)."""
        s = self.settings
        assert s.min_ssimulacra2 is not None
        aim = s.min_ssimulacra2 + PERCEPTUAL_MARGIN
        shares = []
        for i, (region, (h, w)) in enumerate(zip(regions, sizes)):
            native = original[..., region.y0:region.y1, region.x0:region.x1].cpu()
            change = (delta[i:i + 1, :, :h, :w] * mask[i:i + 1, :, :h, :w]).detach().cpu()
            if change.shape[-2:] != native.shape[-2:]:
                change = F.interpolate(change, size=native.shape[-2:], mode="bilinear", align_corners=False)
            ref = (native * 255).round() / 255

            def score(k: float) -> float:
                with torch.no_grad():
                    return float(ssimulacra2(ref, ((ref + k * change).clamp(0, 1) * 255).round() / 255)[0])

            lo: tuple[float, float] | None = None
            hi: tuple[float, float] | None = None
            k = 1.0
            for _ in range(CALIBRATION_ROUNDS):
                value = score(k)
                if value >= aim:
                    lo = (k, value)
                    if hi is None:
                        break
                else:
                    hi = (k, value)
                assert hi is not None
                k = _next_strength(lo, hi, aim)
            shares.append(lo[0] if lo is not None and (hi is None or k < lo[0]) else k)
        return torch.tensor(shares, dtype=original.dtype, device=original.device).clamp(0.02, 1.0)

    def _anchors(self, clean: Sequence[Tensor], users: Sequence[bool]) -> list[Tensor]:
        """What each face is pushed away from, per surrogate [F,D]: its own clean embedding; for the user's faces
        the mean of it and all the user's references (the loss is then the mean cosine to them all: away from the
        user's whole identity, not only from this photo of them)."""
        if self.references is None or not any(users):
            return list(clean)
        out = []
        for c, refs in zip(clean, self.references):
            everyone = (c + refs.sum(0, keepdim=True)) / (1 + refs.shape[0])
            out.append(torch.where(torch.tensor(users, device=c.device)[:, None], everyone, c))
        return out

    def _searcher(self, steps: int, generator: torch.Generator, step_size: float | Tensor | None = None) -> Attack:
        s = self.settings
        size = s.step_size if step_size is None else step_size
        if s.search == "sign":
            return PGD(steps=steps, step_size=size, generator=generator)
        if s.search == "smooth":
            return SmoothPGD(steps=steps, step_size=size, sigma=s.smoothing_sigma, generator=generator)
        raise ValueError(f"unknown search {s.search!r}")

    def _budget(self, x0: Tensor, scale: Tensor | None = None) -> Budget:
        """The level's per-pixel caps; ``scale`` [F] shrinks each face's caps (the calibrated budget)."""
        s = self.settings
        k = 1.0 if scale is None else scale[:, None, None, None]
        if s.chroma_fraction >= 1.0:  # the old cloak: one RGB box
            return LinfBudget(texture_eps_map(x0, s.eps, s.eps_floor) * k)
        luma, chroma = masked_caps(x0, s.eps, s.eps_floor, s.chroma_fraction)
        return LumaChromaBudget(luma * k, chroma * k)

    # -- the visibility floor, exactly, on the head, on the written pixels --------------------------------------
    @staticmethod
    def _compose(rgb: np.ndarray, regions: Sequence[Region], deltas: Sequence[Tensor], strengths: Sequence[float]) -> np.ndarray:
        out = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        for region, delta, k in zip(regions, deltas, strengths):
            if k > 0:
                part = out[..., region.y0:region.y1, region.x0:region.x1]
                out[..., region.y0:region.y1, region.x0:region.x1] = (part + k * delta).clamp(0, 1)
        return (out * 255.0).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()

    def _fit(self, rgb: np.ndarray, faces: Sequence[Face], regions: Sequence[Region], deltas: Sequence[Tensor],
             written: Written, plain: np.ndarray) -> tuple[list[float], list[float], np.ndarray]:
        """The largest share of each face's change whose head, as written, meets the level's floor.

        All faces are scaled in the same rounds (one composition and one encoder round trip per round); a face's
        next strength is interpolated from its SSIMULACRA2 deficit, then bracketed. Returns the strengths, each
        head's score as written, and the protected pixels (not yet encoded)."""
        s = self.settings
        n = len(faces)
        heads = [head_box(f.box, rgb.shape) for f in faces]
        strengths = [1.0] * n
        if s.min_ssimulacra2 is None:
            out = self._compose(rgb, regions, deltas, strengths)
            shown = written(out)
            return strengths, [_score(rgb, shown, h) for h in heads], out
        floor = s.min_ssimulacra2
        # Where the encoder alone leaves a head less than ENCODER_ROOM points above the floor (a small face written
        # as JPEG), the floor is held on the cloak's own change: against the encoder's output, not the original.
        refs = [plain if _score(rgb, plain, h) < floor + ENCODER_ROOM else rgb for h in heads]
        lo: list[tuple[float, float] | None] = [None] * n  # (strength, score) that passed
        hi: list[tuple[float, float] | None] = [None] * n  # (strength, score) that failed
        settled = [False] * n
        out = rgb
        for _ in range(FIT_ROUNDS):
            out = self._compose(rgb, regions, deltas, strengths)
            shown = written(out)
            for i in range(n):
                if settled[i]:
                    continue
                score = _score(refs[i], shown, heads[i])
                k = strengths[i]
                if score >= floor:
                    lo[i] = (k, score)
                else:
                    hi[i] = (k, score)
                if hi[i] is None or (lo[i] is not None and hi[i][0] - lo[i][0] <= FIT_TOLERANCE) or k == 0.0:
                    settled[i] = lo[i] is not None or k == 0.0
                    strengths[i] = lo[i][0] if lo[i] is not None else 0.0
                    continue
                strengths[i] = _next_strength(lo[i], hi[i], floor + FIT_AIM)
            if all(settled):
                break
        # Unsettled faces keep the strongest share that passed (0 when none did); check the final composition,
        # since neighbouring heads can overlap.
        strengths = [lo[i][0] if not settled[i] and lo[i] is not None else (strengths[i] if settled[i] else 0.0)
                     for i in range(n)]
        for _ in range(FIT_ROUNDS):
            out = self._compose(rgb, regions, deltas, strengths)
            shown = written(out)
            scores = [_score(r, shown, h) for r, h in zip(refs, heads)]
            # A failing head, and every face whose change reaches into it, gives way.
            failing = {j for i in range(n) if scores[i] < floor
                       for j in range(n) if strengths[j] > 0 and _overlap(heads[i], regions[j])}
            if not failing:
                return strengths, scores, out
            for j in failing:
                strengths[j] = strengths[j] * 0.8 if strengths[j] > 0.05 else 0.0
        return strengths, scores, out

    def _fit_photo(self, rgb: np.ndarray, faces: Sequence[Face], regions: Sequence[Region], deltas: Sequence[Tensor],
                   written: Written, strengths: list[float]) -> tuple[list[float], list[float], np.ndarray, float]:
        """Scale every face down together until the whole photo as written meets the floor."""
        floor = self.settings.min_ssimulacra2
        assert floor is not None
        heads = [head_box(f.box, rgb.shape) for f in faces]
        factor = 1.0
        for _ in range(FIT_ROUNDS):
            factor *= 0.8
            ks = [k * factor for k in strengths]
            out = self._compose(rgb, regions, deltas, ks)
            shown = written(out)
            whole = _score(rgb, shown)
            if whole >= floor or factor < 0.1:
                return ks, [_score(rgb, shown, h) for h in heads], out, whole
        return ks, [_score(rgb, shown, h) for h in heads], out, whole

    def _report(self, rgb: np.ndarray, protected: np.ndarray, face: Face, region: Region, strength: float,
                head_score: float, user: bool) -> FaceReport:
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
            d = float(dssim(b[..., by0:by1, bx0:bx1], a[..., by0:by1, bx0:bx1]))
        return FaceReport(face.box, similarity, d, head_score, strength, expression, user)


def _score(original: np.ndarray, shown: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """SSIMULACRA2 (the reference's definition, float64) of ``shown`` against ``original``, on ``box`` or whole."""
    if box is not None:
        x0, y0, x1, y1 = box
        original, shown = original[y0:y1, x0:x1], shown[y0:y1, x0:x1]
    if min(original.shape[:2]) < 8:
        return 100.0
    # float32: within 0.01 of the float64 reference on photos, and several times faster.
    a = torch.from_numpy(np.ascontiguousarray(original)).permute(2, 0, 1)[None].float() / 255.0
    b = torch.from_numpy(np.ascontiguousarray(shown)).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        return float(ssimulacra2(a, b)[0])


def _overlap(head: tuple[int, int, int, int], region: Region) -> bool:
    x0, y0, x1, y1 = head
    return region.x0 < x1 and x0 < region.x1 and region.y0 < y1 and y0 < region.y1


def _next_strength(lo: tuple[float, float] | None, hi: tuple[float, float], aim: float) -> float:
    """The next strength to try: between the strongest that passed and the weakest that failed, where the score
    (linear in the strength, with 100 at 0) reaches ``aim``."""
    k_hi, s_hi = hi
    k_lo, s_lo = lo if lo is not None else (0.0, 100.0)
    if s_lo <= s_hi:
        return (k_lo + k_hi) / 2
    k = k_lo + (k_hi - k_lo) * (s_lo - aim) / (s_lo - s_hi)
    margin = 0.1 * (k_hi - k_lo)
    return float(min(max(k, k_lo + margin), k_hi - margin))
