"""The receipt a user sees per photo: does a recognizer that was not used to make the cloak still match?

Per face: the protected photo is put through what a site does to an upload (JPEG 75 and a resize to a
1080 px long edge, with real codecs); then dlib's face recognizer — its own runtime, its own HOG detector and
its own alignment, of another lineage than every surrogate — finds the face again and compares it with the
same face in the original photo at its standard threshold (euclidean 0.6). Beside it, the face's visibility
(SSIMULACRA2 of the face region against the original, native resolution).

Why dlib's own pipeline and not a torch recognizer on our alignment: a recognizer fed our landmarks and crop
sees the face the way the cloak was optimised for, and says "still matches" or "safe" for the wrong reasons
(face-api's port of the same network on our ArcFace-aligned crops disagreed with dlib's own chips by a factor
of five in distance on the same protected faces). The receipt is only ever shown: no setting is tuned on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..eval.evaluators import Box, descriptor_at
from ..expressions import EXPRESSIONS, BoxReader
from ..eval.sites import SiteCondition
from ..faces.detect import Face
from .face_cloak import FaceReport

RECEIPT_MODEL = "dlib-resnet"
RECEIPT_CONDITION = SiteCondition("JPEG 75 + 1080 px", 75, 1080)


class Recognizer(Protocol):
    """A held-out recognizer with its own detector (``ally.eval.evaluators.DlibEvaluator``)."""

    name: str

    def faces(self, rgb: np.ndarray) -> tuple[list[Box], np.ndarray]: ...


@dataclass(frozen=True)
class FaceReceipt:
    recognizer: str  # model id; not in the ensemble
    condition: str  # what the photo went through before the check
    found: bool  # the recognizer's own detector found this face in the original (else it cannot judge)
    matched: bool  # the recognizer still takes the protected face for the original
    distance: float | None  # protected (after the site) vs original; None when either is not found
    threshold: float  # the recognizer's same-person cut on that distance
    ssimulacra2: float  # visibility of the change on the face region (≥ 90 invisible, ≥ 70 good)

    def as_dict(self) -> dict[str, object]:
        return {"recognizer": self.recognizer, "condition": self.condition, "found": self.found,
                "matched": self.matched, "distance": None if self.distance is None else round(self.distance, 4),
                "threshold": self.threshold, "ssimulacra2": round(self.ssimulacra2, 1)}


def check(
    recognizer: Recognizer, threshold: float, original: np.ndarray, protected: np.ndarray, faces: Sequence[Face],
    reports: Sequence[FaceReport], condition: SiteCondition = RECEIPT_CONDITION,
) -> list[FaceReceipt]:
    """One receipt per face of ``protected`` (uint8 H×W×3) against the same face in ``original``."""
    clean_boxes, clean = recognizer.faces(original)
    served, scale = condition.apply(protected)
    served_boxes, after = recognizer.faces(served)
    out = []
    for face, report in zip(faces, reports):
        reference = descriptor_at(face.box, clean_boxes, clean)
        probe = descriptor_at(tuple(v * scale for v in face.box), served_boxes, after)
        distance = None if reference is None or probe is None else float(np.linalg.norm(reference - probe))
        matched = distance is not None and distance <= threshold
        out.append(FaceReceipt(recognizer.name, condition.name, reference is not None, matched, distance,
                               threshold, report.ssimulacra2))
    return out


@dataclass(frozen=True)
class ExpressionReceipt:
    """Per face, when emotion protection was asked for: what an expression reader outside the ensemble reads.

    The reader sees the original and the protected photo after ``condition`` (the site's JPEG and resize).
    ``changed``: its top expression on the protected photo is no longer the one it reads on the original."""

    reader: str  # model id; not used to make the perturbation
    condition: str
    found: bool  # the face was found again in the served photo (else the reader cannot read it)
    clean: str  # top expression on the original
    clean_confidence: float  # its probability on the original
    after: str | None  # top expression on the protected photo after the site; None when not found
    after_confidence: float | None  # probability of ``clean`` on the protected photo after the site
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return {"reader": self.reader, "condition": self.condition, "found": self.found, "clean": self.clean,
                "clean_confidence": round(self.clean_confidence, 4), "after": self.after,
                "after_confidence": None if self.after_confidence is None else round(self.after_confidence, 4),
                "changed": self.changed}

    def line(self) -> str:
        """The receipt as the user reads it."""
        if not self.found:
            return f"an expression reader that was not used cannot find this face after {self.condition}"
        if self.changed:
            return (f"an expression reader that was not used no longer reads {self.clean} "
                    f"(reads {self.after} after {self.condition})")
        return (f"an expression reader that was not used STILL READS {self.clean} after {self.condition} "
                f"({self.after_confidence:.0%}, was {self.clean_confidence:.0%})")


def check_expressions(
    reader: BoxReader, detect: Callable[[np.ndarray], Sequence[Face]], original: np.ndarray, protected: np.ndarray,
    faces: Sequence[Face], condition: SiteCondition = RECEIPT_CONDITION,
) -> list[ExpressionReceipt]:
    """One expression receipt per face: ``reader`` (outside the ensemble) on the original and on the protected
    photo, both as the site serves them (so that what the site's JPEG alone changes is not counted), each face
    found again by ``detect`` in the served photos."""

    def readings(rgb: np.ndarray) -> list[np.ndarray | None]:
        served, scale = condition.apply(rgb)
        boxes = [f.box for f in detect(served)]
        probs = reader.read(served, boxes)
        return [descriptor_at(tuple(v * scale for v in face.box), boxes, probs) for face in faces]

    clean, after = readings(original), readings(protected)
    receipts = []
    for p0, p1 in zip(clean, after):
        if p0 is None:  # not even the original's face is found after the site: nothing to compare
            receipts.append(ExpressionReceipt(reader.model_id, condition.name, False, "unknown", 0.0, None, None, False))
            continue
        label = int(p0.argmax())
        if p1 is None:
            receipts.append(ExpressionReceipt(reader.model_id, condition.name, False, EXPRESSIONS[label],
                                              float(p0[label]), None, None, False))
            continue
        top = int(p1.argmax())
        receipts.append(ExpressionReceipt(reader.model_id, condition.name, True, EXPRESSIONS[label], float(p0[label]),
                                          EXPRESSIONS[top], float(p1[label]), top != label))
    return receipts
