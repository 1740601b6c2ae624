"""Privacy levels: the one table of how hard each protection pushes.

The names are shared by every protection (images here, text in its own table keyed by the same names).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Level(str, Enum):
    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @classmethod
    def parse(cls, value: str) -> "Level":
        try:
            return cls(value.lower())
        except ValueError:
            names = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown privacy level {value!r}; choose one of: {names}") from None


@dataclass(frozen=True)
class CloakSettings:
    """Face-cloak budget, search and robustness settings for one level.

    The budget is stated in the terms people see: each face region must keep a SSIMULACRA2 score of at least
    ``min_ssimulacra2`` against the original (and, for Fawkes-style budgets, a DSSIM of at most ``max_dssim``).
    Inside that, per-pixel caps keep the change where the eye does not look: luma up to ``eps`` in textured
    areas and ``eps * eps_floor`` in flat ones, chroma up to ``chroma_fraction`` of the luma cap (and less in
    flat areas).
    """

    eps: float  # luma L∞ cap in [0,1] units, in the most textured areas
    eps_floor: float  # fraction of eps allowed in flat areas (texture masking)
    steps: int
    step_size: float
    face_px: int  # faces are optimised at most this wide; smaller faces at the size the site serves them
    jpeg_quality: tuple[float, float]  # EOT range of the sites' JPEG quality
    site_long_edges: tuple[int, ...]  # EOT: the sites' resize targets
    min_ssimulacra2: float | None = None  # per face region; enforced exactly after the search
    max_dssim: float | None = None  # per face region, (1 - SSIM) / 2 on luma (Fawkes' budget)
    chroma_fraction: float = 0.25  # chroma cap relative to the luma cap (1: RGB box, the old cloak)
    search: str = "smooth"  # smooth: normalised, Gaussian-smoothed gradient steps (TI); sign: MI-FGSM
    smoothing_sigma: float = 1.5  # TI: σ (working pixels) of the Gaussian the gradient is smoothed with
    region: str = "ellipse"  # ellipse around the face | square (the old cloak: a 2.2× box, feathered)
    eot_samples: int = 1  # site-pipeline draws averaged per step
    balance: float = 0.05  # surrogate balancing: soft-max temperature over the surrogates' losses (0: mean)
    # With emotion protection: the expression term's weight beside the identity term's 1, where it stops
    # pushing (clean classes at ~e^-kappa), the extra steps it gets, and how: one search on all terms
    # ("joint") or the cloak's steps on identity, then ``expression_steps`` on all terms from there ("chained").
    expression_weight: float = 1.0
    expression_kappa: float = 6.0
    expression_steps: int = 0
    expression_schedule: str = "joint"
    # Transfer to recognizers outside the ensemble (docs/cloak.md, "v3"): crops as other systems cut them
    # (ally.faces.frames), dropout inside the surrogates' convolutions (DFANet), and the visibility penalty
    # inside the search every this many steps at the working resolution (0: only the exact floor afterwards).
    other_crops: bool = False
    feature_dropout: float = 0.0
    perceptual_every: int = 0
    calibrate: bool = False  # after the search's first part, scale each face's caps to what the floor allows


# v3 (docs/cloak.md, "v3"): the floor on the head as written; crops as other systems cut them; fewer, larger
# steps without the native-resolution SSIMULACRA2 inside the loop. Tuned on the `tune` split of the eval photos
# against dlib's recognizer, reported on the `report` split.
FACE_CLOAK: dict[Level, CloakSettings] = {
    Level.LOW: CloakSettings(
        eps=10 / 255, eps_floor=0.35, steps=16, step_size=2 / 255, face_px=224,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=80.0, other_crops=True, calibrate=True,
    ),
    Level.MEDIUM: CloakSettings(
        eps=14 / 255, eps_floor=0.35, steps=24, step_size=2.5 / 255, face_px=224,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=70.0, other_crops=True, calibrate=True,
    ),
    Level.HIGH: CloakSettings(
        eps=20 / 255, eps_floor=0.4, steps=40, step_size=3 / 255, face_px=256,
        jpeg_quality=(65.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=60.0, other_crops=True, calibrate=True,
    ),
}

# v2, the levels before v3 (issue 9's perceptual budget), kept so that the same photos can be measured with them;
# on v3's code they run with the visibility penalty at every step (at the working resolution, not natively).
FACE_CLOAK_V2: dict[Level, CloakSettings] = {
    Level.LOW: CloakSettings(
        eps=10 / 255, eps_floor=0.35, steps=40, step_size=1.5 / 255, face_px=224,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=80.0, perceptual_every=1,
    ),
    Level.MEDIUM: CloakSettings(
        eps=14 / 255, eps_floor=0.35, steps=50, step_size=2 / 255, face_px=224,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=70.0, perceptual_every=1,
    ),
    Level.HIGH: CloakSettings(
        eps=20 / 255, eps_floor=0.4, steps=80, step_size=2.5 / 255, face_px=256,
        jpeg_quality=(65.0, 90.0), site_long_edges=(1080, 2048), min_ssimulacra2=60.0, perceptual_every=1,
    ),
}

# The levels as they were before the perceptual budget (uniform RGB L∞ box, sign steps, square region, DSSIM
# cap, optimised on a ≤ 160 px crop): kept so that `ally eval faces` and the plots can put old and new side by
# side on the same photos.
FACE_CLOAK_V1: dict[Level, CloakSettings] = {
    Level.LOW: CloakSettings(
        eps=8 / 255, eps_floor=1.0, max_dssim=0.025, steps=30, step_size=2 / 255, face_px=128,
        jpeg_quality=(75.0, 90.0), site_long_edges=(1080, 2048),
        chroma_fraction=1.0, search="sign", smoothing_sigma=0.0, region="square", balance=0.0,
    ),
    Level.MEDIUM: CloakSettings(
        eps=12 / 255, eps_floor=1.0, max_dssim=0.04, steps=40, step_size=2.5 / 255, face_px=160,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048),
        chroma_fraction=1.0, search="sign", smoothing_sigma=0.0, region="square", balance=0.0,
    ),
    Level.HIGH: CloakSettings(
        eps=16 / 255, eps_floor=1.0, max_dssim=0.06, steps=80, step_size=3 / 255, face_px=192,
        jpeg_quality=(65.0, 90.0), site_long_edges=(1080, 2048),
        chroma_fraction=1.0, search="sign", smoothing_sigma=0.0, region="square", balance=0.0,
    ),
}


@dataclass(frozen=True)
class TextSettings:
    """How much of a post ``protect-text`` may change at one level (see daemon/ally/text/)."""

    explicit: str  # stated facts: coarse (decade, country) | stage (life stage, placeholders) | remove
    partners: bool  # generalise "my husband/girlfriend" (reveals the author's gender by inference)
    max_changed: float  # share of the post's words that may change, explicit pass included
    min_similarity: float  # all-MiniLM-L6-v2 cosine between the original and the rewrite
    min_word_similarity: float  # MiniLM word-vector cosine between a word and its synonym
    margin: float  # goal: the surrogates' reading of the original must trail another class by this much
    beam: int  # search beam width
    dialect: bool = False  # region cues that are not place names (y'all, mate, uni, colour) made neutral


TEXT: dict[Level, TextSettings] = {
    Level.LOW: TextSettings(explicit="coarse", partners=False, max_changed=0.08, min_similarity=0.90,
                            min_word_similarity=0.50, margin=0.0, beam=1),
    Level.MEDIUM: TextSettings(explicit="stage", partners=True, max_changed=0.15, min_similarity=0.85,
                               min_word_similarity=0.45, margin=0.10, beam=1),
    Level.HIGH: TextSettings(explicit="remove", partners=True, max_changed=0.25, min_similarity=0.80,
                             min_word_similarity=0.40, margin=0.25, beam=2, dialect=True),
}
