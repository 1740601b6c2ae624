"""Face recognizers as the attack sees them: each with the face crop it was trained on.

A recognizer maps an aligned RGB crop in [0, 1] to a unit embedding; ``AlignedRecognizer`` adds the step
before it — cropping a face out of a larger image by its five landmarks, differentiably — so that the
attack can run every model on the same image, through the same robustness transforms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ally_models.cache import ModelCache
from ally_models.recognizers import (
    FaceRecognizer,
    load_faceapi_resnet,
    load_faceres,
    load_mobileface,
    load_mobilefacenet,
)

from .faces.align import aligned_crops, face_template

# The border each model's training crop has around the ArcFace five-point crop, as a fraction of that crop's
# side (0 = the tight 112-px ArcFace crop). Calibrated on real photos: the margin that best separates the same
# person from other people on the labelled ``faces-eval`` photos.
CROP_MARGIN: dict[str, float] = {
    "faceres": 0.1,
    "faceres-deep": 0.1,
    "mobileface": 0.0,
    "mobilefacenet": 0.0,  # trained on the standard tight 112 px ArcFace crop
    "faceapi-resnet": 0.0,
}


@dataclass
class AlignedRecognizer:
    recognizer: FaceRecognizer
    template: np.ndarray  # [5,2] landmark positions in the crop, normalised to [0,1]

    @property
    def model_id(self) -> str:
        return self.recognizer.model_id

    def crops(self, image: Tensor, landmarks: Tensor) -> Tensor:
        """Aligned crops [F,3,S,S] of the faces with ``landmarks`` [F,5,2] (pixels) in ``image`` [1,3,H,W]."""
        pts = landmarks.detach().cpu().numpy()
        return aligned_crops(image, pts, self.recognizer.input_size, self.template)

    def embed(self, image: Tensor, landmarks: Tensor) -> Tensor:
        """Unit embeddings [F,D]; differentiable with respect to ``image``."""
        return self.recognizer(self.crops(image, landmarks))

    def embed_each(self, images: Tensor, landmarks: Tensor) -> Tensor:
        """Unit embeddings [F,D] of one face per image: ``landmarks[f]`` [5,2] in ``images[f]`` ([F,3,H,W]).

        One forward pass for the whole batch of crops."""
        if images.shape[0] == 1:
            return self.embed(images, landmarks)
        crops = [self.crops(images[f:f + 1], landmarks[f:f + 1]) for f in range(images.shape[0])]
        return self.recognizer(torch.cat(crops))


_LOADERS = {
    "faceres": lambda files, mid: load_faceres(files["model.json"], files["model.bin"], model_id=mid),
    "faceres-deep": lambda files, mid: load_faceres(files["model.json"], files["model.bin"], model_id=mid),
    "mobileface": lambda files, mid: load_mobileface(files["model.json"], files["model.bin"]),
    "mobilefacenet": lambda files, mid: load_mobilefacenet(files["model.json"], files["model.bin"]),
    "faceapi-resnet": lambda files, mid: load_faceapi_resnet(files["manifest.json"], files["model.bin"]),
}


def load_aligned(model_id: str, cache: ModelCache, device: torch.device) -> AlignedRecognizer:
    """Load a recognizer from the model cache (pulling it if needed) with its alignment template."""
    if model_id not in _LOADERS:
        raise KeyError(f"{model_id!r} is not a differentiable face recognizer; choose from {sorted(_LOADERS)}")
    files = cache.files(model_id, pull=True)
    recognizer = _LOADERS[model_id](files, model_id).to(device).eval()
    return AlignedRecognizer(recognizer, face_template(CROP_MARGIN[model_id]))


def decoy_embeddings(seed: str, surrogates: Sequence[AlignedRecognizer], device: torch.device) -> list[Tensor]:
    """One fixed unit vector per surrogate, derived from the user's decoy seed (the same for every photo)."""
    out = []
    for s in surrogates:
        digest = hashlib.sha256(f"{seed}:{s.model_id}".encode()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        v = torch.randn(s.recognizer.embedding_dim, generator=g)
        out.append((v / v.norm()).to(device))
    return out
