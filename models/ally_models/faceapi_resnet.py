"""face-api's ``FaceRecognitionNet`` (a TF.js port of dlib's ResNet-34-like face recognizer) in torch.

Mirrors ``src/faceRecognitionNet`` of @vladmandic/face-api 1.7.15: input 150x150 RGB in 0..255,
per-channel mean subtraction and /255, a 7x7/2 conv, a 3x3/2 max pool, 14 residual blocks
(32, 64, 128, 256 channels), global average pool and a 256 -> 128 linear layer without bias.
Each conv is followed by a bias and a per-channel affine "scale" layer (dlib's folded batch norm).
Weights are the quantized TF.js layers weights (``face_recognition_model-weights_manifest.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tfjs_weights import load_weights

MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SIZE = 150

# (name, downsamples) for every residual block, in order.
BLOCKS: tuple[tuple[str, bool], ...] = (
    ("conv32_1", False),
    ("conv32_2", False),
    ("conv32_3", False),
    ("conv64_down", True),
    ("conv64_1", False),
    ("conv64_2", False),
    ("conv64_3", False),
    ("conv128_down", True),
    ("conv128_1", False),
    ("conv128_2", False),
    ("conv256_down", True),
    ("conv256_1", False),
    ("conv256_2", False),
    ("conv256_down_out", True),
)


class ConvScale(nn.Module):
    """conv (+bias) then per-channel ``x * weights + biases``, with optional ReLU.

    Stride 2 uses TF 'valid' padding, stride 1 uses 'same' (odd kernels: symmetric).
    """

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, stride: int, relu: bool) -> None:
        super().__init__()
        filters = weights[f"{prefix}/conv/filters"]  # [kh, kw, cin, cout]
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1))))
        self.register_buffer("bias", torch.from_numpy(weights[f"{prefix}/conv/bias"].copy()))
        self.register_buffer("scale", torch.from_numpy(weights[f"{prefix}/scale/weights"].reshape(1, -1, 1, 1).copy()))
        self.register_buffer("shift", torch.from_numpy(weights[f"{prefix}/scale/biases"].reshape(1, -1, 1, 1).copy()))
        self.stride = stride
        self.padding = 0 if stride == 2 else filters.shape[0] // 2
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding) * self.scale + self.shift
        return F.relu(out) if self.relu else out


class Residual(nn.Module):
    """face-api's ``residual`` / ``residualDown`` block."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, down: bool) -> None:
        super().__init__()
        self.conv1 = ConvScale(weights, f"{prefix}/conv1", 2 if down else 1, relu=True)
        self.conv2 = ConvScale(weights, f"{prefix}/conv2", 1, relu=False)
        self.down = down

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        # face-api zero-pads the conv branch by one row/column when it came out smaller than the
        # pooled shortcut, and zero-pads the shortcut's channels to the conv branch's width.
        out = F.pad(out, (0, shortcut.shape[3] - out.shape[3], 0, shortcut.shape[2] - out.shape[2]))
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out.shape[1] - shortcut.shape[1]))
        return F.relu(out + shortcut)


class FaceApiResNet(nn.Module):
    """``forward(x)``: x [N, 3, 150, 150] RGB in 0..255 -> raw 128-d descriptors (not normalised)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB).reshape(1, 3, 1, 1))
        self.stem = ConvScale(weights, "conv32_down", 2, relu=True)
        self.blocks = nn.Sequential(*(Residual(weights, name, down) for name, down in BLOCKS))
        self.register_buffer("fc", torch.from_numpy(weights["fc"].T.copy()))  # [128, 256]

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem((x - self.mean) / 255)
        out = self.blocks(F.max_pool2d(out, 3, 2))
        return F.linear(out.mean(dim=(2, 3)), self.fc)


def load_faceapi_resnet_module(
    manifest_path: str | Path, bin_paths: Sequence[str | Path] | None = None
) -> FaceApiResNet:
    """Build a frozen, eval-mode :class:`FaceApiResNet` from face-api's weights manifest and shard(s)."""
    model = FaceApiResNet(load_weights(manifest_path, bin_paths))
    return model.eval().requires_grad_(False)
