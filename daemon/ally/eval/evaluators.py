"""Held-out face recognizers, each with its own detector, as an attacker would run them.

An evaluator must not be in the attack ensemble nor share a family with any surrogate (the manifest refuses
that for role ``evaluator``). Both evaluators here are dlib's ResNet — the original runtime, and face-api's
quantized TF.js port run through our converter — so they are one lineage, measured twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ally_models.cache import ModelCache
from ally_models.dlib_runtime import DlibFaceRecognizer
from ally_models.recognizers import FaceRecognizer, load_faceapi_resnet

Box = tuple[float, float, float, float]
MIN_IOU = 0.3  # an evaluator's detection is a given face when their boxes overlap this much


def box_iou(a: Box, b: Box) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def descriptor_at(box: Box, boxes: list[Box], descriptors: np.ndarray) -> np.ndarray | None:
    """The descriptor of the detection that is the face at ``box`` (best overlap, at least MIN_IOU), or None."""
    best = max(range(len(boxes)), key=lambda i: box_iou(boxes[i], box), default=None)
    if best is None or box_iou(boxes[best], box) < MIN_IOU:
        return None
    return descriptors[best]


class Evaluator(Protocol):
    name: str
    family: str
    threshold: str  # how a match is decided, for the report

    def faces(self, rgb: np.ndarray) -> tuple[list[Box], np.ndarray]:
        """Face boxes found by the evaluator's own detector and their descriptors [F, D]."""

    def matches(self, probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """[G] bool: whether the probe descriptor matches each gallery descriptor at the standard threshold."""


@dataclass
class DlibEvaluator:
    dlib: DlibFaceRecognizer
    name: str = "dlib-resnet"
    family: str = "dlib-resnet"
    threshold: str = "euclidean ≤ 0.6 (face_recognition's default)"

    def faces(self, rgb: np.ndarray) -> tuple[list[Box], np.ndarray]:
        return self.dlib.faces(rgb)

    def matches(self, probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return np.linalg.norm(gallery - probe[None], axis=1) <= DlibFaceRecognizer.THRESHOLD


@dataclass
class FaceApiEvaluator:
    """face-api's port of dlib's ResNet, fed dlib's aligned 150-px chips (the input the network was trained on)."""

    dlib: DlibFaceRecognizer
    net: FaceRecognizer
    name: str = "faceapi-resnet"
    family: str = "dlib-resnet"

    @property
    def threshold(self) -> str:
        return f"cosine distance ≤ {self.net.threshold} (≡ face-api's euclidean 0.6)"

    def faces(self, rgb: np.ndarray) -> tuple[list[Box], np.ndarray]:
        boxes = self.dlib.detect(rgb)
        if not boxes:
            return boxes, np.zeros((0, self.net.embedding_dim), np.float32)
        chips = torch.from_numpy(self.dlib.chips(rgb, boxes, size=self.net.input_size)).permute(0, 3, 1, 2)
        with torch.no_grad():
            return boxes, self.net(chips.float() / 255.0).numpy()

    def matches(self, probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return 1.0 - gallery @ probe <= self.net.threshold


def load_evaluators(cache: ModelCache, names: list[str]) -> list[Evaluator]:
    files = cache.files("dlib-resnet", pull=True)
    dlib = DlibFaceRecognizer(files["recognizer.dat"], files["shape5.dat"])
    out: list[Evaluator] = []
    for name in names:
        if name == "dlib-resnet":
            out.append(DlibEvaluator(dlib))
        elif name == "faceapi-resnet":
            f = cache.files("faceapi-resnet", pull=True)
            out.append(FaceApiEvaluator(dlib, load_faceapi_resnet(f["manifest.json"], f["model.bin"]).eval()))
        else:
            raise ValueError(f"unknown evaluator {name!r}; choose from dlib-resnet, faceapi-resnet")
    return out
