"""Counting identifications under the two threat models, from face descriptors (no models here).

* ``probe`` — the protected upload is the probe, the attacker's gallery is *clean* photos of the person found
  elsewhere (tagged photos, a profile picture). A protected face counts as identified when it matches at least
  one clean gallery photo of the same person; a protected face the evaluator no longer detects is not identified
  and counted in ``not_detected``.
* ``gallery`` — Fawkes' and LowKey's model: the attacker scrapes the person's *protected* uploads (all cloaked
  toward the same per-user decoy) to build the gallery, then meets *clean* photos of the person (a CCTV still,
  a friend's upload) as probes. A clean face counts as identified when it matches at least one protected upload
  of the same person; when the evaluator detects none of those uploads the probe is not identified and counted
  in ``not_detected`` (the person is missing from the gallery).

Both are verification at the evaluator's own threshold against the same person's photos, so the figures are
upper bounds on what a search over many people would find. Every count is kept per probe type as well:
``chip`` (dlib's 150 px aligned face chips) and ``photo`` (larger photos), besides ``all``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .dataset import LabelledFace

THREATS = {
    "probe": "protected upload as probe, clean photos as gallery",
    "gallery": "protected uploads as gallery (per-person decoy), clean photos as probes",
}
PROBE_TYPES = ("all", "chip", "photo")

Matches = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (probe [D], gallery [G, D]) -> [G] bool


@dataclass
class Cell:
    """Counts for one (level, condition, evaluator, threat, probe type)."""

    faces: int = 0
    identified: int = 0
    not_detected: int = 0
    pairs: int = 0
    pairs_matched: int = 0

    @property
    def match_rate(self) -> float:
        return self.identified / self.faces if self.faces else float("nan")

    def add(self, hits: np.ndarray | None) -> None:
        """One probe: ``hits`` its matches against its gallery, None when it (or its gallery) went undetected."""
        self.faces += 1
        if hits is None:
            self.not_detected += 1
            return
        self.identified += int(hits.any())
        self.pairs += len(hits)
        self.pairs_matched += int(hits.sum())


def _cells() -> dict[str, Cell]:
    return {t: Cell() for t in PROBE_TYPES}


def count_probe_threat(
    probes: Iterable[LabelledFace], kind: Mapping[str, str], protected: Mapping[str, np.ndarray | None],
    clean: Mapping[str, np.ndarray], gallery_of: Callable[[LabelledFace], list[LabelledFace]], matches: Matches,
) -> dict[str, Cell]:
    """Threat ``probe``: each protected face against the clean photos of the same person.

    ``protected``: descriptor of each probe face in its protected photo (None: not detected there); ``clean``:
    descriptor of every labelled face the evaluator finds in its clean photo; ``kind``: photo id → probe type.
    A face the evaluator cannot use even when clean, or with no usable clean gallery, is not a fair probe.
    """
    cells = _cells()
    for face in probes:
        gallery = [clean[g.key] for g in gallery_of(face) if g.key in clean]
        if not gallery or face.key not in clean:
            continue
        d = protected.get(face.key)
        hits = None if d is None else matches(d, np.stack(gallery))
        for t in ("all", kind[face.photo]):
            cells[t].add(hits)
    return cells


def count_gallery_threat(
    uploads: Iterable[LabelledFace], kind: Mapping[str, str], protected: Mapping[str, np.ndarray | None],
    clean: Mapping[str, np.ndarray], all_faces: Iterable[LabelledFace],
    gallery_of: Callable[[LabelledFace], list[LabelledFace]], matches: Matches,
) -> dict[str, Cell]:
    """Threat ``gallery``: each clean face against the protected uploads of the same person.

    ``uploads``: the faces that were protected (their descriptors in ``protected``, None when not detected);
    ``all_faces``: every labelled face, the candidate clean probes. A clean probe's gallery is the person's
    uploads that :meth:`EvalSet.gallery` allows for it (other photos, no near-duplicate shot, never the face
    itself) and that the evaluator can use when clean (as in the probe threat, so both count the same faces).
    """
    uploaded = {f.key: f for f in uploads}
    cells = _cells()
    for face in all_faces:
        if face.key not in clean:
            continue
        mine = [g for g in gallery_of(face) if g.key in uploaded and g.key in clean]
        if not mine:
            continue
        found = [protected[g.key] for g in mine if protected.get(g.key) is not None]
        hits = matches(clean[face.key], np.stack(found)) if found else None
        for t in ("all", kind[face.photo]):
            cells[t].add(hits)
    return cells
