"""The face-cloak level tables the evaluation can put side by side on the same photos.

* ``current``: whatever :data:`ally.levels.FACE_CLOAK` holds at run time (what users get).
* ``v2``: the levels before v3 (issue 9's perceptual budget on the face box), on v3's code.
* ``v1``: the levels before the perceptual budget (issue 9), kept measurable after the live table changed.
* ``fawkes``: our optimiser under Fawkes 1.0's published budgets — DSSIM ≤ 0.012 at 75 steps ("mid") and
  ≤ 0.017 at 150 steps ("high"), 224 px crops. The table is keyed by level names, so Fawkes' mid sits in the
  ``low`` slot and its high in the ``high`` slot. Fawkes bounds only the DSSIM; our SSIM is on luma, so without
  a per-pixel cap the colours drift freely (measured: PSNR 20.9 dB, 3 of 5 faces no longer even detected), and
  the rows keep the old high level's L∞ cap of 16/255, with the new optimiser's other parts (luma/chroma caps,
  smoothed steps, elliptical region).
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import levels
from ..levels import CloakSettings, Level

FAWKES_LINF = 16 / 255

FAWKES: dict[Level, CloakSettings] = {
    Level.LOW: CloakSettings(eps=FAWKES_LINF, eps_floor=1.0, max_dssim=0.012, steps=75, step_size=2 / 255,
                             face_px=224, jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048)),
    Level.HIGH: CloakSettings(eps=FAWKES_LINF, eps_floor=1.0, max_dssim=0.017, steps=150, step_size=2 / 255,
                              face_px=224, jpeg_quality=(70.0, 90.0), site_long_edges=(1080, 2048)),
}
FAWKES_NAMES = {Level.LOW: "fawkes-mid (DSSIM 0.012, 75 steps)", Level.HIGH: "fawkes-high (DSSIM 0.017, 150 steps)"}

FACE_CLOAK_V1 = levels.FACE_CLOAK_V1

TABLES = ("current", "v2", "v1", "fawkes")


def level_table(name: str) -> Mapping[Level, CloakSettings]:
    if name == "current":
        return levels.FACE_CLOAK
    if name == "v1":
        return FACE_CLOAK_V1
    if name == "v2":
        return levels.FACE_CLOAK_V2
    if name == "fawkes":
        return FAWKES
    raise ValueError(f"unknown level table {name!r}; choose from {', '.join(TABLES)}")


def level_name(table: str, level: Level) -> str:
    """How a (table, level) point is labelled in reports: ``medium``, ``v1 medium``, ``fawkes-mid (…)``."""
    if level is Level.OFF:
        return "off"
    if table == "fawkes":
        return FAWKES_NAMES.get(level, f"fawkes {level.value}")
    return level.value if table == "current" else f"{table} {level.value}"
