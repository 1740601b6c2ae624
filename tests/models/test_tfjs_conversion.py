"""TF.js -> torch conversion: weight decoding, the graph interpreter, and the real recognizers.

(a) the interpreter on tiny hand-built graphs, each op against a numpy NHWC reference;
(b) the real models against embeddings from the original runtime (tests/fixtures/reference: TF.js, TFLite for
    mobilefacenet);
(c) gradients through the real models.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ally_models.faceapi_resnet import BLOCKS, FaceApiResNet
from ally_models.recognizers import (
    FaceRecognizer,
    load_faceapi_resnet,
    load_faceres,
    load_mobileface,
    load_mobilefacenet,
)
from ally_models.tfjs_graph import TFJSGraphModule, flip_prelu_slopes, unfuse_prelu_relu
from ally_models.tfjs_weights import decode_weights, load_weights

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
RNG = np.random.default_rng(1234)


# ----------------------------------------------------------------------------- graph helpers


def _enc(value: Any) -> dict[str, Any]:
    """A Python attribute value in GraphDef JSON form."""
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, list) and value and isinstance(value[0], str):
        return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in value]}}
    return {"list": {"i": [str(v) for v in value]}}


def node(name: str, op: str, inputs: list[str], **attrs: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "input": inputs, "attr": {k: _enc(v) for k, v in attrs.items()}}


def placeholder(name: str, shape: tuple[int, ...]) -> dict[str, Any]:
    dims = [{"size": str(d)} for d in shape]
    return {"name": name, "op": "Placeholder", "attr": {"shape": {"shape": {"dim": dims}}}}


def write_graph(folder: Path, nodes: list[dict[str, Any]], consts: dict[str, np.ndarray]) -> Path:
    """Write a graph-model JSON + one .bin shard (float32/int32 constants) into ``folder``."""
    specs, chunks = [], []
    for name, value in consts.items():
        dtype = "int32" if value.dtype.kind == "i" else "float32"
        specs.append({"name": name, "shape": list(value.shape), "dtype": dtype})
        chunks.append(np.ascontiguousarray(value, dtype="<i4" if dtype == "int32" else "<f4").tobytes())
        nodes = [{"name": name, "op": "Const", "attr": {}}, *nodes]
    (folder / "g.bin").write_bytes(b"".join(chunks))
    model = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": ["g.bin"], "weights": specs}],
    }
    path = folder / "g.json"
    path.write_text(json.dumps(model))
    return path


def run_graph(folder: Path, nodes: list[dict[str, Any]], consts: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Build the graph (input "x", output "out") and run it on ``x``; NHWC in and out for rank 4."""
    module = TFJSGraphModule(write_graph(folder, nodes, consts), "out", "x")
    t = torch.from_numpy(x.astype(np.float32))
    if t.dim() == 4:
        t = t.permute(0, 3, 1, 2)
    with torch.no_grad():
        y = module(t)
    return (y.permute(0, 2, 3, 1) if y.dim() == 4 else y).numpy()


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- numpy references


def np_pad_spatial(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def np_conv(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    pads: tuple[int, int, int, int],
    dilation: int = 1,
    depthwise: bool = False,
) -> np.ndarray:
    """Naive NHWC convolution; ``w`` is HWIO, or [kh, kw, cin, mult] when depthwise."""
    x = np_pad_spatial(x, pads)
    kh, kw = w.shape[:2]
    oh = (x.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (x.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out_c = w.shape[2] * w.shape[3] if depthwise else w.shape[3]
    out = np.zeros((x.shape[0], oh, ow, out_c), dtype=np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[
                :,
                i * stride : i * stride + (kh - 1) * dilation + 1 : dilation,
                j * stride : j * stride + (kw - 1) * dilation + 1 : dilation,
                :,
            ]
            if depthwise:
                out[:, i, j, :] = np.einsum("nhwc,hwcm->ncm", patch, w).reshape(x.shape[0], -1)
            else:
                out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def np_pool(x: np.ndarray, k: int, stride: int, pads: tuple[int, int, int, int], kind: str) -> np.ndarray:
    """Naive NHWC pooling; padded pixels are ignored (TF semantics)."""
    xp = np_pad_spatial(x, pads, np.nan)
    oh, ow = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.nanmax(win, axis=(1, 2)) if kind == "max" else np.nanmean(win, axis=(1, 2))
    return out


def conv_graph(op: str, x_shape: tuple[int, ...], inputs: list[str], **attrs: Any) -> list[dict[str, Any]]:
    attrs.setdefault("data_format", "NHWC")
    attrs.setdefault("dilations", [1, 1, 1, 1])
    return [placeholder("x", x_shape), node("out", op, ["x", *inputs], **attrs)]


# ----------------------------------------------------------------------------- (a) weights


def test_decode_plain_dtypes() -> None:
    f = rand(2, 3)
    i = np.array([1, -2, 3], dtype=np.int32)
    specs = [{"name": "f", "shape": [2, 3], "dtype": "float32"}, {"name": "i", "shape": [3], "dtype": "int32"}]
    out = decode_weights(specs, f.tobytes() + i.tobytes())
    np.testing.assert_array_equal(out["f"], f)
    np.testing.assert_array_equal(out["i"], i)


def test_decode_quantized() -> None:
    half = np.array([0.5, -1.25, 3.0], dtype="<f2")
    q8 = np.array([0, 7, 255], dtype=np.uint8)
    q16 = np.array([0, 1000, 65535], dtype="<u2")
    qi = np.array([0, 1, 3], dtype=np.uint8)
    specs = [
        {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.1, "min": -1.0}},
        {"name": "b", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.01, "min": 2.0}},
        {"name": "c", "shape": [3], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": 0.0}},
    ]
    out = decode_weights(specs, half.tobytes() + q8.tobytes() + q16.tobytes() + qi.tobytes())
    np.testing.assert_array_equal(out["h"], [0.5, -1.25, 3.0])
    np.testing.assert_array_equal(out["a"], (q8 * 0.1 - 1.0).astype(np.float32))
    np.testing.assert_array_equal(out["b"], (q16 * 0.01 + 2.0).astype(np.float32))
    np.testing.assert_array_equal(out["c"], [0, 1, 2])  # JS Math.round(1.5) == 2
    assert out["c"].dtype == np.int32


def test_decode_rejects_bad_data() -> None:
    spec = [{"name": "f", "shape": [2], "dtype": "float32"}]
    with pytest.raises(ValueError, match="trailing"):
        decode_weights(spec, bytes(12))
    with pytest.raises(ValueError, match="past the end"):
        decode_weights(spec, bytes(4))
    with pytest.raises(NotImplementedError, match="string"):
        decode_weights([{"name": "s", "shape": [1], "dtype": "string"}], bytes(4))


def test_load_weights_concatenates_shards(tmp_path: Path) -> None:
    a, b = rand(3), rand(2, 2)
    data = a.tobytes() + b.tobytes()
    (tmp_path / "s1.bin").write_bytes(data[:7])
    (tmp_path / "s2.bin").write_bytes(data[7:])
    manifest = [
        {
            "paths": ["s1.bin", "s2.bin"],
            "weights": [
                {"name": "a", "shape": [3], "dtype": "float32"},
                {"name": "b", "shape": [2, 2], "dtype": "float32"},
            ],
        }
    ]
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    out = load_weights(tmp_path / "m.json")
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["b"], b)


# ----------------------------------------------------------------------------- (a) interpreter


@pytest.mark.parametrize(
    ("size", "k", "stride", "padding", "pads", "dilation"),
    [
        (7, 3, 1, "VALID", (0, 0, 0, 0), 1),
        (7, 3, 2, "SAME", (1, 1, 1, 1), 1),
        (8, 3, 2, "SAME", (0, 1, 0, 1), 1),  # TF puts the odd pixel after
        (8, 4, 1, "SAME", (1, 2, 1, 2), 1),
        (9, 3, 1, "SAME", (2, 2, 2, 2), 2),
        (6, 3, 2, "EXPLICIT", (2, 0, 1, 3), 1),
    ],
)
def test_conv2d(
    tmp_path: Path, size: int, k: int, stride: int, padding: str, pads: tuple[int, int, int, int], dilation: int
) -> None:
    x, w = rand(2, size, size + 1 if padding == "VALID" else size, 3), rand(k, k, 3, 4)
    attrs: dict[str, Any] = {
        "strides": [1, stride, stride, 1],
        "padding": padding,
        "dilations": [1, dilation, dilation, 1],
    }
    if padding == "EXPLICIT":
        attrs["explicit_paddings"] = [0, 0, *pads, 0, 0]
    y = run_graph(tmp_path, conv_graph("Conv2D", x.shape, ["w"], **attrs), {"w": w}, x)
    np.testing.assert_allclose(y, np_conv(x, w, stride, pads, dilation), atol=1e-4)


@pytest.mark.parametrize(("stride", "pads"), [(1, (1, 1, 1, 1)), (2, (0, 1, 0, 1))])
def test_depthwise_conv_with_multiplier(tmp_path: Path, stride: int, pads: tuple[int, int, int, int]) -> None:
    x, w = rand(1, 6, 6, 3), rand(3, 3, 3, 2)
    graph = conv_graph("DepthwiseConv2dNative", x.shape, ["w"], strides=[1, stride, stride, 1], padding="SAME")
    y = run_graph(tmp_path, graph, {"w": w}, x)
    np.testing.assert_allclose(y, np_conv(x, w, stride, pads, depthwise=True), atol=1e-4)


@pytest.mark.parametrize("act", ["Relu", "Relu6", "Prelu", "LeakyRelu", "Elu", "Sigmoid", "Tanh"])
def test_fused_conv(tmp_path: Path, act: str) -> None:
    x, w, bias, alpha = rand(1, 5, 5, 2) * 3, rand(3, 3, 2, 4), rand(4), rand(4)
    inputs = ["w", "b", "alpha"] if act == "Prelu" else ["w", "b"]
    graph = conv_graph(
        "_FusedConv2D",
        x.shape,
        inputs,
        strides=[1, 1, 1, 1],
        padding="SAME",
        fused_ops=["BiasAdd", act],
        leakyrelu_alpha=0.3,
    )
    consts = {"w": w, "b": bias, "alpha": alpha} if act == "Prelu" else {"w": w, "b": bias}
    pre = np_conv(x, w, 1, (1, 1, 1, 1)) + bias
    expected = {
        "Relu": np.maximum(pre, 0),
        "Relu6": np.clip(pre, 0, 6),
        "Prelu": np.where(pre >= 0, pre, pre * alpha),
        "LeakyRelu": np.where(pre >= 0, pre, pre * 0.3),
        "Elu": np.where(pre > 0, pre, np.expm1(np.minimum(pre, 0))),
        "Sigmoid": 1 / (1 + np.exp(-pre)),
        "Tanh": np.tanh(pre),
    }[act]
    np.testing.assert_allclose(run_graph(tmp_path, graph, consts, x), expected, atol=1e-4)


def test_fused_depthwise_conv(tmp_path: Path) -> None:
    x, w, bias = rand(1, 5, 5, 2) * 4, rand(3, 3, 2, 1), rand(2)
    graph = conv_graph(
        "FusedDepthwiseConv2dNative",
        x.shape,
        ["w", "b"],
        strides=[1, 2, 2, 1],
        padding="VALID",
        fused_ops=["BiasAdd", "Relu6"],
    )
    expected = np.clip(np_conv(x, w, 2, (0, 0, 0, 0), depthwise=True) + bias, 0, 6)
    np.testing.assert_allclose(run_graph(tmp_path, graph, {"w": w, "b": bias}, x), expected, atol=1e-4)


BINARY = {
    "Add": np.add,
    "AddV2": np.add,
    "BiasAdd": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("const_shape", [(3,), (), (1, 1, 3), (2, 4, 4, 3)])
def test_binary_with_constant(tmp_path: Path, op: str, const_shape: tuple[int, ...]) -> None:
    x, c = rand(2, 4, 4, 3), rand(*const_shape) + 3.0  # keep divisors away from 0
    for order in (["x", "c"], ["c", "x"]):
        graph = [placeholder("x", x.shape), node("out", op, order)]
        args = (x, c) if order[0] == "x" else (c, x)
        np.testing.assert_allclose(run_graph(tmp_path, graph, {"c": c}, x), BINARY[op](*args), rtol=1e-5, atol=1e-5)


def test_binary_runtime_operands(tmp_path: Path) -> None:
    """A 4-D activation with a lower-rank runtime tensor (broadcast along channels)."""
    x = rand(2, 3, 3, 4)
    graph = [
        placeholder("x", x.shape),
        node("m", "Mean", ["x", "axes"], keep_dims=False),  # [W, C]
        node("sq", "Square", ["x"]),
        node("out", "Sub", ["sq", "m"]),
    ]
    consts = {"axes": np.array([0, 1], dtype=np.int32)}
    expected = x**2 - x.mean(axis=(0, 1))
    np.testing.assert_allclose(run_graph(tmp_path, graph, consts, x), expected, atol=1e-5)


UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Relu": lambda v: np.maximum(v, 0),
    "Relu6": lambda v: np.clip(v, 0, 6),
    "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "Tanh": np.tanh,
    "Neg": np.negative,
    "Exp": np.exp,
    "Sqrt": lambda v: np.sqrt(np.abs(v)),
    "Rsqrt": lambda v: 1 / np.sqrt(np.abs(v)),
    "Square": np.square,
    "Abs": np.abs,
    "Elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(tmp_path: Path, op: str) -> None:
    x = rand(1, 3, 3, 2) * 4
    if op in ("Sqrt", "Rsqrt"):
        x = np.abs(x) + 0.1
    graph = [placeholder("x", x.shape), node("out", op, ["x"])]
    np.testing.assert_allclose(run_graph(tmp_path, graph, {}, x), UNARY[op](x), rtol=1e-5, atol=1e-5)


def test_leaky_relu_and_prelu(tmp_path: Path) -> None:
    x, alpha = rand(1, 3, 3, 2), rand(2)
    graph = [placeholder("x", x.shape), node("l", "LeakyRelu", ["x"], alpha=0.1), node("out", "Prelu", ["l", "a"])]
    leaky = np.where(x >= 0, x, 0.1 * x)
    np.testing.assert_allclose(
        run_graph(tmp_path, graph, {"a": alpha}, x), np.where(leaky >= 0, leaky, leaky * alpha), atol=1e-6
    )


@pytest.mark.parametrize(
    ("op", "axes", "keep"),
    [
        ("Mean", [1, 2], False),
        ("Mean", [1, 2], True),
        ("Mean", [3], False),
        ("Mean", [-1], True),
        ("Sum", [0, 3], False),
        ("Max", [2], False),
        ("Mean", [1], False),
    ],
)
def test_reductions(tmp_path: Path, op: str, axes: list[int], keep: bool) -> None:
    x = rand(2, 3, 4, 5)
    graph = [placeholder("x", x.shape), node("out", op, ["x", "axes"], keep_dims=keep)]
    fn = {"Mean": np.mean, "Sum": np.sum, "Max": np.max}[op]
    y = run_graph(tmp_path, graph, {"axes": np.array(axes, dtype=np.int32)}, x)
    np.testing.assert_allclose(y, fn(x, axis=tuple(axes), keepdims=keep), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("ta", "tb"), [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_transposes(tmp_path: Path, ta: bool, tb: bool) -> None:
    a, b = rand(3, 4), rand(4, 5)
    a_in, b_in = (a.T.copy() if ta else a), (b.T.copy() if tb else b)
    graph = [placeholder("x", a_in.shape), node("out", "MatMul", ["x", "w"], transpose_a=ta, transpose_b=tb)]
    np.testing.assert_allclose(run_graph(tmp_path, graph, {"w": b_in}, a_in), a @ b, atol=1e-5)


def test_fused_matmul(tmp_path: Path) -> None:
    a, b, bias = rand(3, 4), rand(4, 5), rand(5)
    graph = [
        placeholder("x", a.shape),
        node(
            "out", "_FusedMatMul", ["x", "w", "b"], fused_ops=["BiasAdd", "Relu"], transpose_a=False, transpose_b=False
        ),
    ]
    np.testing.assert_allclose(
        run_graph(tmp_path, graph, {"w": b, "b": bias}, a), np.maximum(a @ b + bias, 0), atol=1e-5
    )


def test_squeeze_spatial_dims(tmp_path: Path) -> None:
    """[N, 1, 1, C] -> [N, C], as the end of a conv net (TF's SpatialSqueeze)."""
    x = rand(2, 1, 1, 5)
    graph = [placeholder("x", x.shape), node("i", "Relu", ["x"]), node("out", "Squeeze", ["i"], squeeze_dims=[1, 2])]
    np.testing.assert_array_equal(run_graph(tmp_path, graph, {}, x), np.maximum(x, 0).reshape(2, 5))


def test_squeeze_of_a_dim_that_is_not_one_raises(tmp_path: Path) -> None:
    x = rand(2, 1, 3, 5)
    graph = [placeholder("x", x.shape), node("i", "Relu", ["x"]), node("out", "Squeeze", ["i"], squeeze_dims=[1, 2])]
    with pytest.raises(ValueError, match="Squeeze"):
        run_graph(tmp_path, graph, {}, x)


def test_squeeze_without_dims_is_rejected(tmp_path: Path) -> None:
    graph = [placeholder("x", (2, 1, 1, 5)), node("out", "Squeeze", ["x"])]
    with pytest.raises(NotImplementedError, match="squeeze_dims"):
        TFJSGraphModule(write_graph(tmp_path, graph, {}), "out", "x")


def misconverted_prelu_graph(shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """The TF.js converter's output for conv -> PReLU ``relu(y) + m * (y - abs(y))``: the ReLU fused into the conv,
    and every reader of ``y`` reading the fused node instead."""
    return [
        placeholder("x", shape),
        node("conv", "_FusedConv2D", ["x", "w", "b"], strides=[1] * 4, padding="SAME", fused_ops=["BiasAdd", "Relu"]),
        node("abs", "Abs", ["conv"]),
        node("sub", "Sub", ["conv", "abs"]),
        node("mul_1", "Mul", ["sub", "m"]),
        node("out", "Add", ["conv", "mul_1"]),
    ]


def test_prelu_repairs(tmp_path: Path) -> None:
    x, w, bias, m = rand(1, 5, 5, 2), rand(3, 3, 2, 4), rand(4), np.abs(rand(4)) + 0.1
    consts = {"w": w, "b": bias, "m": m}
    y = np_conv(x, w, 1, (1, 1, 1, 1)) + bias
    path = write_graph(tmp_path, misconverted_prelu_graph(x.shape), consts)

    def run(repair: Callable[[dict[str, Any]], None] | None) -> np.ndarray:
        module = TFJSGraphModule(path, "out", "x", repair=repair)
        with torch.no_grad():
            return module(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()

    np.testing.assert_allclose(run(None), np.maximum(y, 0), atol=1e-5)  # the fault: PReLU became ReLU
    counts: list[int] = []
    np.testing.assert_allclose(
        run(lambda nodes: counts.append(unfuse_prelu_relu(nodes))), np.maximum(y, 0) + m * (y - np.abs(y)), atol=1e-5
    )
    both = run(lambda nodes: counts.extend([unfuse_prelu_relu(nodes), flip_prelu_slopes(nodes)]))
    np.testing.assert_allclose(both, np.maximum(y, 0) - m * (y - np.abs(y)), atol=1e-5)
    assert counts == [1, 1, 1]
    assert (y < 0).any() and (y > 0).any()


def test_prelu_idiom_runs_as_one_step(tmp_path: Path) -> None:
    """``relu(y) + m * (y - abs(y))`` becomes one PReLU step (slope 2m); the Relu/Abs/Sub/Mul steps are pruned."""
    x, w, bias, m = rand(1, 4, 4, 2), rand(3, 3, 2, 3), rand(3), rand(3)
    path = write_graph(tmp_path, misconverted_prelu_graph(x.shape), {"w": w, "b": bias, "m": m})
    module = TFJSGraphModule(path, "out", "x", repair=unfuse_prelu_relu)
    assert len(module._steps) == 2  # the conv and the PReLU
    y = np_conv(x, w, 1, (1, 1, 1, 1)) + bias
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)
    out = module(xt)
    np.testing.assert_allclose(out.detach().permute(0, 2, 3, 1).numpy(), np.where(y >= 0, y, 2 * m * y), atol=1e-5)
    out.sum().backward()
    assert xt.grad is not None and xt.grad.abs().sum() > 0


def test_prelu_repairs_leave_other_graphs_alone(tmp_path: Path) -> None:
    """A fused conv+ReLU read by something other than the PReLU idiom, and a Sub of unrelated values, stay."""
    graph = [
        placeholder("x", (1, 3, 3, 2)),
        node("conv", "_FusedConv2D", ["x", "w", "b"], strides=[1] * 4, padding="SAME", fused_ops=["BiasAdd", "Relu"]),
        node("abs", "Abs", ["x"]),
        node("sub", "Sub", ["conv", "abs"]),
        node("out", "Add", ["conv", "sub"]),
    ]
    nodes = {n["name"]: n for n in json.loads(json.dumps(graph))}
    assert unfuse_prelu_relu(nodes) == 0 and flip_prelu_slopes(nodes) == 0
    assert nodes == {n["name"]: n for n in graph}


def test_reshape_flattens_in_nhwc_order(tmp_path: Path) -> None:
    x = rand(2, 3, 4, 5)
    graph = [placeholder("x", x.shape), node("out", "Reshape", ["x", "shape"])]
    y = run_graph(tmp_path, graph, {"shape": np.array([-1, 60], dtype=np.int32)}, x)
    np.testing.assert_array_equal(y, x.reshape(2, 60))


def test_reshape_to_4d_then_conv(tmp_path: Path) -> None:
    v, w = rand(2, 48), rand(1, 1, 3, 2)
    graph = [
        placeholder("x", v.shape),
        node("r", "Reshape", ["x", "shape"]),
        node("out", "Conv2D", ["r", "w"], strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC"),
    ]
    y = run_graph(tmp_path, graph, {"shape": np.array([2, 4, 4, 3], dtype=np.int32), "w": w}, v)
    np.testing.assert_allclose(y, np_conv(v.reshape(2, 4, 4, 3), w, 1, (0, 0, 0, 0)), atol=1e-5)


@pytest.mark.parametrize("op", ["Pad", "PadV2"])
def test_pad(tmp_path: Path, op: str) -> None:
    x = rand(1, 3, 4, 2)
    pads = np.array([[0, 0], [1, 2], [0, 3], [1, 0]], dtype=np.int32)
    consts = {"p": pads, "v": np.array(1.5, dtype=np.float32)} if op == "PadV2" else {"p": pads}
    graph = [placeholder("x", x.shape), node("out", op, ["x", *consts])]
    expected = np.pad(x, pads, constant_values=1.5 if op == "PadV2" else 0.0)
    np.testing.assert_array_equal(run_graph(tmp_path, graph, consts, x), expected)


@pytest.mark.parametrize("op", ["MaxPool", "AvgPool"])
@pytest.mark.parametrize(
    ("size", "k", "stride", "padding", "pads"),
    [(7, 3, 2, "VALID", (0, 0, 0, 0)), (8, 3, 2, "SAME", (0, 1, 0, 1)), (5, 3, 1, "SAME", (1, 1, 1, 1))],
)
def test_pooling(
    tmp_path: Path, op: str, size: int, k: int, stride: int, padding: str, pads: tuple[int, int, int, int]
) -> None:
    x = rand(2, size, size, 3)
    graph = [
        placeholder("x", x.shape),
        node("out", op, ["x"], ksize=[1, k, k, 1], strides=[1, stride, stride, 1], padding=padding, data_format="NHWC"),
    ]
    expected = np_pool(x, k, stride, pads, "max" if op == "MaxPool" else "avg")
    np.testing.assert_allclose(run_graph(tmp_path, graph, {}, x), expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 3, 5)])
def test_softmax_last_axis(tmp_path: Path, shape: tuple[int, ...]) -> None:
    x = rand(*shape)
    graph = [placeholder("x", shape), node("out", "Softmax", ["x"])]
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(run_graph(tmp_path, graph, {}, x), e / e.sum(axis=-1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concat_with_constant(tmp_path: Path, axis: int) -> None:
    x = rand(1, 3, 3, 2)
    c = rand(1, 3, 3, 2)
    graph = [placeholder("x", x.shape), node("i", "Identity", ["x"]), node("out", "ConcatV2", ["i", "c", "axis"])]
    y = run_graph(tmp_path, graph, {"c": c, "axis": np.array(axis, dtype=np.int32)}, x)
    np.testing.assert_array_equal(y, np.concatenate([x, c], axis=axis))


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    graph = [placeholder("x", (1, 2)), node("out", "Cumsum", ["x"])]
    with pytest.raises(NotImplementedError, match="Cumsum"):
        TFJSGraphModule(write_graph(tmp_path, graph, {}), "out", "x")


def test_nchw_graph_is_rejected(tmp_path: Path) -> None:
    graph = conv_graph("Conv2D", (1, 2, 5, 5), ["w"], strides=[1, 1, 1, 1], padding="VALID", data_format="NCHW")
    with pytest.raises(NotImplementedError, match="NCHW"):
        TFJSGraphModule(write_graph(tmp_path, graph, {"w": rand(1, 1, 2, 2)}), "out", "x")


def test_only_needed_nodes_are_built(tmp_path: Path) -> None:
    """An unsupported op on a branch the output does not need is ignored; ':0' names work."""
    graph = [placeholder("x", (1, 3)), node("unused", "Cumsum", ["x"]), node("out", "Neg", ["x:0"])]
    module = TFJSGraphModule(write_graph(tmp_path, graph, {}), "out:0", "x:0")
    np.testing.assert_array_equal(module(torch.ones(1, 3)).numpy(), -np.ones((1, 3)))


def test_input_must_feed_output(tmp_path: Path) -> None:
    graph = [placeholder("x", (1, 3)), placeholder("y", (1, 3)), node("out", "Neg", ["y"])]
    with pytest.raises(ValueError, match="does not depend"):
        TFJSGraphModule(write_graph(tmp_path, graph, {}), "out", "x")


def test_constants_are_frozen_buffers_and_input_gets_gradient(tmp_path: Path) -> None:
    w = rand(3, 3, 2, 4)
    graph = conv_graph("Conv2D", (1, 5, 5, 2), ["w"], strides=[1, 1, 1, 1], padding="SAME")
    module = TFJSGraphModule(write_graph(tmp_path, graph, {"w": w}), "out", "x")
    assert list(module.parameters()) == []
    assert all(not b.requires_grad for b in module.buffers())
    assert "w_oihw" in module.state_dict()
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    module(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- recognizer interface


def test_faceapi_resnet_shapes_with_random_weights() -> None:
    """Architecture only (no real weights needed): 150 px in, 128-d out, through every block."""
    weights: dict[str, np.ndarray] = {}

    def conv(prefix: str, k: int, cin: int, cout: int) -> None:
        weights[f"{prefix}/conv/filters"] = rand(k, k, cin, cout) * 0.05
        weights[f"{prefix}/conv/bias"] = np.zeros(cout, np.float32)
        weights[f"{prefix}/scale/weights"] = np.ones(cout, np.float32)
        weights[f"{prefix}/scale/biases"] = np.zeros(cout, np.float32)

    conv("conv32_down", 7, 3, 32)
    cin = 32
    for name, _ in BLOCKS:
        cout = int(name[4:].split("_")[0])  # conv64_down -> 64
        conv(f"{name}/conv1", 3, cin, cout)
        conv(f"{name}/conv2", 3, cout, cout)
        cin = cout
    weights["fc"] = rand(256, 128)
    net = FaceApiResNet(weights)
    assert net(torch.rand(2, 3, 150, 150) * 255).shape == (2, 128)


def test_recognizer_normalises_checks_shape_and_freezes() -> None:
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    rec = FaceRecognizer(backbone, model_id="toy", family="toy", input_size=8, embedding_dim=5, threshold=None)
    assert not rec.training and all(not p.requires_grad for p in rec.parameters())
    emb = rec(torch.rand(3, 3, 8, 8))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="expected"):
        rec(torch.rand(1, 3, 9, 9))


# ----------------------------------------------------------------------------- (b), (c) real models


def load_real(model_id: str, model_files: Callable[[str], tuple[Path, Path]]) -> FaceRecognizer:
    graph_or_manifest, bin_path = model_files(model_id)
    if model_id == "mobileface":
        return load_mobileface(graph_or_manifest, bin_path)
    if model_id == "mobilefacenet":
        return load_mobilefacenet(graph_or_manifest, bin_path)
    if model_id == "faceapi-resnet":
        return load_faceapi_resnet(graph_or_manifest, bin_path)
    return load_faceres(graph_or_manifest, bin_path, model_id=model_id)


REAL_MODELS = [
    ("faceres", 224, 1024),
    ("faceres-deep", 224, 1024),
    ("mobileface", 112, 256),
    ("faceapi-resnet", 150, 128),
    ("mobilefacenet", 112, 192),  # its reference comes from the original TFLite file, not TF.js
]


@pytest.mark.real_models
@pytest.mark.parametrize(("model_id", "size", "dim"), REAL_MODELS)
def test_matches_tfjs_reference(
    model_files: Callable[[str], tuple[Path, Path]], model_id: str, size: int, dim: int
) -> None:
    model = load_real(model_id, model_files)
    assert (model.model_id, model.input_size, model.embedding_dim) == (model_id, size, dim)
    ref = np.load(REFERENCE_DIR / f"{model_id}.npz")
    pixels = torch.from_numpy(ref["images"]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        raw = model.backbone(pixels).numpy()
        emb = model(pixels / 255).numpy()
    expected = ref["embeddings"]
    assert np.abs(raw - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.abs(emb - unit).max() < 1e-4
    assert (emb * unit).sum(axis=1).min() > 0.9999


@pytest.mark.real_models
@pytest.mark.parametrize(("model_id", "size", "dim"), REAL_MODELS)
def test_gradient_wrt_input(
    model_files: Callable[[str], tuple[Path, Path]], model_id: str, size: int, dim: int
) -> None:
    model = load_real(model_id, model_files)
    ref = np.load(REFERENCE_DIR / f"{model_id}.npz")
    x = (torch.from_numpy(ref["images"][:2]).permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    emb = model(x)
    (emb[0] * emb[1].detach()).sum().backward()  # pull face 0 towards face 1
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[0].abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())
