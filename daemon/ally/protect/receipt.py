"""The receipt a user sees per photo: does a recognizer that was not used to make the cloak still match?

Per face: the protected photo is put through what a site does to an upload (JPEG 75 and a resize to a
1080 px long edge, with real codecs), then a recognizer outside the attack ensemble, of another lineage than
every surrogate, compares that face with the same face in the original photo at its own threshold. Beside it,
the face's visibility (SSIMULACRA2 of the face region against the original, native resolution).

The receipt's recognizer (face-api's port of dlib's ResNet, in torch, so it is cheap to run warm) is named in
every receipt. It is never used to choose settings: ``ally eval faces`` reports dlib's own runtime (its own
detector and alignment) beside it, so a level picked by looking at receipts is still checked by another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..eval.sites import SiteCondition
from ..faces.detect import Face
from ..surrogates import AlignedRecognizer
from .face_cloak import FaceReport

RECEIPT_MODEL = "faceapi-resnet"
RECEIPT_CONDITION = SiteCondition("JPEG 75 + 1080 px", 75, 1080)


@dataclass(frozen=True)
class FaceReceipt:
    recognizer: str  # model id; not in the ensemble
    condition: str  # what the photo went through before the check
    matched: bool  # the recognizer still takes the protected face for the original
    distance: float  # cosine distance 1 - cos, protected (after the site) vs original
    threshold: float  # the recognizer's same-person cut on that distance
    ssimulacra2: float  # visibility of the change on the face region (≥ 90 invisible, ≥ 70 good)

    def as_dict(self) -> dict[str, object]:
        return {"recognizer": self.recognizer, "condition": self.condition, "matched": self.matched,
                "distance": round(self.distance, 4), "threshold": round(self.threshold, 4),
                "ssimulacra2": round(self.ssimulacra2, 1)}


def check(
    recognizer: AlignedRecognizer, original: np.ndarray, protected: np.ndarray, faces: Sequence[Face],
    reports: Sequence[FaceReport], condition: SiteCondition = RECEIPT_CONDITION,
) -> list[FaceReceipt]:
    """One receipt per face of ``protected`` (uint8 H×W×3) against the same face in ``original``."""
    threshold = recognizer.recognizer.threshold
    if threshold is None:
        raise ValueError(f"{recognizer.model_id} has no calibrated threshold: it cannot give a receipt")
    device = next(recognizer.recognizer.parameters()).device
    served, scale = condition.apply(protected)

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().to(device) / 255.0

    points = torch.tensor(np.stack([f.landmarks for f in faces]), dtype=torch.float32, device=device)
    with torch.no_grad():
        clean = recognizer.embed(tensor(original), points)
        after = recognizer.embed(tensor(served), points * scale)
    distance = (1.0 - (clean * after).sum(-1)).tolist()
    return [FaceReceipt(recognizer.model_id, condition.name, d < threshold, float(d), float(threshold), r.ssimulacra2)
            for d, r in zip(distance, reports)]
