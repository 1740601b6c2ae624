"""Reference embeddings of the user's own face ("protect me"): the largest face of a photo, embedded by every
surrogate. Only the vectors leave this module; the photo is not kept (see ``ally.me``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .faces.detect import Face
from .surrogates import AlignedRecognizer


class NoFaceError(ValueError):
    """The photo shows no face to enrol."""


@dataclass(frozen=True)
class Enrolment:
    """One photo's reference: a unit vector per surrogate model id, and how many faces the photo showed."""

    embeddings: dict[str, np.ndarray]  # model id -> [D] float32, unit length
    faces: int  # faces found; the largest was used
    box: tuple[float, float, float, float]  # the face used (for a message; not stored)

    @property
    def note(self) -> str:
        if self.faces == 1:
            return "one face"
        return f"{self.faces} faces; the largest was used"


def largest_face(faces: Sequence[Face]) -> Face:
    """The face with the largest box; :class:`NoFaceError` when there is none."""
    if not faces:
        raise NoFaceError("no face found in the photo; choose a photo where your face is clearly visible")
    return max(faces, key=lambda f: f.area)


@torch.no_grad()
def embed_face(rgb: np.ndarray, face: Face, surrogates: Sequence[AlignedRecognizer],
               device: torch.device) -> dict[str, np.ndarray]:
    """Unit embeddings of ``face`` in ``rgb`` (uint8 H×W×3), by every surrogate: {model id: [D] float32}."""
    image = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float() / 255.0
    landmarks = torch.tensor(np.array(face.landmarks, np.float32)[None], device=device)
    out: dict[str, np.ndarray] = {}
    for surrogate in surrogates:
        vector = surrogate.embed(image, landmarks)[0].float()
        vector = vector / vector.norm().clamp_min(1e-12)
        out[surrogate.model_id] = vector.cpu().numpy().astype(np.float32)
    return out
