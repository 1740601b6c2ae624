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
    """Face-cloak budget, search and robustness settings for one level."""

    eps: float  # L∞ budget in [0,1] units, in the most textured areas
    eps_floor: float  # fraction of eps allowed in flat areas (texture masking)
    max_dssim: float  # perceptual constraint on each face region: (1 - SSIM) / 2
    steps: int
    step_size: float
    face_px: int  # faces are optimised at most this wide (working resolution), then upsampled
    jpeg_quality: tuple[float, float]  # EOT range of the sites' JPEG quality
    site_long_edges: tuple[int, ...]  # EOT: the sites' resize targets


FACE_CLOAK: dict[Level, CloakSettings] = {
    Level.LOW: CloakSettings(
        eps=4 / 255, eps_floor=0.5, max_dssim=0.01, steps=25, step_size=1.5 / 255, face_px=128,
        jpeg_quality=(75.0, 90.0), site_long_edges=(2048,),
    ),
    Level.MEDIUM: CloakSettings(
        eps=8 / 255, eps_floor=0.5, max_dssim=0.025, steps=50, step_size=2 / 255, face_px=160,
        jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048),
    ),
    Level.HIGH: CloakSettings(
        eps=12 / 255, eps_floor=0.6, max_dssim=0.04, steps=100, step_size=2.5 / 255, face_px=192,
        jpeg_quality=(65.0, 90.0), site_long_edges=(1080, 2048),
    ),
}
