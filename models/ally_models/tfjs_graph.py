"""Run a TF.js graph model (``format: graph-model``) as a differentiable torch module.

The GraphDef in the model JSON is interpreted once, at construction, into a flat plan of torch
calls. Layout convention: every *non-constant* rank-4 tensor is an NHWC tensor of TF stored
as NCHW in torch; constants keep TF's layout and are converted when the plan is built (conv
filters to OIHW, per-channel vectors to ``[1, C, 1, 1]``, ...). Tensors of any other rank are
stored exactly as in TF. The module therefore takes and returns NCHW for rank-4 tensors.

Constants become frozen buffers, so ``state_dict`` and ``.to(device)`` work as usual and only the
input carries gradients.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .tfjs_weights import load_weights

Node = dict[str, Any]
StepFn = Callable[..., Tensor]

# NHWC axis -> NCHW dim, for rank-4 tensors.
_NHWC_TO_NCHW = (0, 2, 3, 1)


# ----------------------------------------------------------------------------- attributes


def _attr(node: Node, key: str, default: Any = None) -> Any:
    """Decode one GraphDef attribute value (JSON protobuf form) into a plain Python value."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "list" in value:
        lst = value["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    return default


def _check_nhwc(node: Node) -> None:
    fmt = _attr(node, "data_format", "NHWC")
    if fmt != "NHWC":
        raise NotImplementedError(f"node {node['name']!r} ({node['op']}): data_format {fmt} is not supported")


def _spatial_pair(node: Node, key: str) -> tuple[int, int]:
    """The H and W entries of a 4-long NHWC attribute such as strides or dilations."""
    vals = _attr(node, key, [1, 1, 1, 1])
    return vals[1], vals[2]


# ----------------------------------------------------------------------------- padding


PadSpec = tuple[str, tuple[int, int, int, int]]  # (mode, explicit top, bottom, left, right)


def _padding_spec(node: Node) -> PadSpec:
    mode = _attr(node, "padding", "VALID")
    if mode == "EXPLICIT":
        p = _attr(node, "explicit_paddings")
        return mode, (p[2], p[3], p[4], p[5])
    if mode not in ("SAME", "VALID"):
        raise NotImplementedError(f"node {node['name']!r}: padding {mode!r} is not supported")
    return mode, (0, 0, 0, 0)


def _same_pad(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF 'SAME' padding for one spatial dim: the extra pixel, if any, goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _resolve_pads(
    spec: PadSpec, h: int, w: int, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]
) -> tuple[int, int, int, int]:
    mode, explicit = spec
    if mode == "SAME":
        return _same_pad(h, k[0], s[0], d[0]) + _same_pad(w, k[1], s[1], d[1])
    return explicit


# ----------------------------------------------------------------------------- step functions


def _prelu(x: Tensor, alpha: Tensor) -> Tensor:
    return torch.where(x >= 0, x, x * alpha)


def _activation(name: str, alpha: float) -> Callable[..., Tensor]:
    """A TF activation by name; ``Prelu`` takes its slope as a second argument."""
    table: dict[str, Callable[..., Tensor]] = {
        "Relu": F.relu,
        "Relu6": F.relu6,
        "Elu": F.elu,
        "Sigmoid": torch.sigmoid,
        "Tanh": torch.tanh,
        "LeakyRelu": partial(F.leaky_relu, negative_slope=alpha),
        "Prelu": _prelu,
    }
    if name not in table:
        raise NotImplementedError(f"fused activation {name!r} is not supported")
    return table[name]


def _finish(out: Tensor, act: Callable[..., Tensor] | None, alpha: Tensor | None) -> Tensor:
    """Apply a fused activation (with its PReLU slope, if any)."""
    if act is None:
        return out
    return act(out) if alpha is None else act(out, alpha)


class feature_dropout:
    """Model augmentation (DFANet, Zhong & Deng 2021): inside this context every convolution's output in every
    graph model goes through dropout with probability ``p``, so each forward pass is a slightly different model
    and an attack cannot overfit one. Not thread-safe by design: the attack runs one search at a time."""

    p: float = 0.0

    def __init__(self, p: float) -> None:
        self._p, self._saved = p, 0.0

    def __enter__(self) -> "feature_dropout":
        self._saved, feature_dropout.p = feature_dropout.p, self._p
        return self

    def __exit__(self, *_: object) -> None:
        feature_dropout.p = self._saved


def _conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    alpha: Tensor | None = None,
    *,
    pad: PadSpec,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    depthwise: bool,
    act: Callable[..., Tensor] | None,
) -> Tensor:
    k = (weight.shape[2], weight.shape[3])
    top, bottom, left, right = _resolve_pads(pad, x.shape[2], x.shape[3], k, stride, dilation)
    if top == bottom and left == right:
        padding = (top, left)
    else:
        x = F.pad(x, (left, right, top, bottom))
        padding = (0, 0)
    groups = x.shape[1] if depthwise else x.shape[1] // weight.shape[1]
    out = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if feature_dropout.p > 0:
        out = F.dropout(out, feature_dropout.p, training=True)
    return _finish(out, act, alpha)


def _pool(x: Tensor, *, kind: str, pad: PadSpec, k: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    top, bottom, left, right = _resolve_pads(pad, x.shape[2], x.shape[3], k, stride, (1, 1))
    if kind == "max":
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, k, stride)
    if not (top or bottom or left or right):
        return F.avg_pool2d(x, k, stride)
    # TF averages over the valid (unpadded) pixels only.
    ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
    pads = (left, right, top, bottom)
    return F.avg_pool2d(F.pad(x, pads), k, stride) / F.avg_pool2d(F.pad(ones, pads), k, stride)


def _reduce(
    x: Tensor, *, fn: Callable[..., Tensor], dims: tuple[int, ...], keepdim: bool, perm: tuple[int, ...] | None
) -> Tensor:
    out = fn(x, dim=dims, keepdim=keepdim) if dims else x
    return out.permute(perm) if perm is not None else out


def _reshape(x: Tensor, *, shape: tuple[int, ...], from_spatial: bool, to_spatial: bool) -> Tensor:
    if from_spatial:
        x = x.permute(0, 2, 3, 1)
    x = x.reshape(shape)
    return x.permute(0, 3, 1, 2) if to_spatial else x


def _matmul(
    a: Tensor,
    b: Tensor,
    bias: Tensor | None = None,
    alpha: Tensor | None = None,
    *,
    transpose_a: bool,
    transpose_b: bool,
    act: Callable[..., Tensor] | None,
) -> Tensor:
    if transpose_a:
        a = a.transpose(-1, -2)
    if transpose_b:
        b = b.transpose(-1, -2)
    out = torch.matmul(a, b)
    return _finish(out if bias is None else out + bias, act, alpha)


def _linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    alpha: Tensor | None = None,
    *,
    act: Callable[..., Tensor] | None,
) -> Tensor:
    return _finish(F.linear(x, weight, bias), act, alpha)


def _to_spatial(t: Tensor) -> Tensor:
    """A runtime tensor of rank <= 4 in TF (NHWC-broadcast) layout -> NCHW-broadcastable."""
    t = t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
    return t.permute(0, 3, 1, 2)


def _binary(fn: Callable[[Tensor, Tensor], Tensor], convert: tuple[bool, bool], a: Tensor, b: Tensor) -> Tensor:
    if convert[0]:
        a = _to_spatial(a)
    if convert[1]:
        b = _to_spatial(b)
    return fn(a, b)


def _concat(*xs: Tensor, dim: int) -> Tensor:
    return torch.cat(xs, dim=dim)


_BINARY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Add": torch.add,
    "AddV2": torch.add,
    "BiasAdd": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "RealDiv": torch.div,
    "Maximum": torch.maximum,
    "Minimum": torch.minimum,
    "Prelu": _prelu,
}

_CLAMP = {"Maximum": "min", "Minimum": "max"}  # Maximum(x, c) == clamp(x, min=c)

_UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "Relu": F.relu,
    "Relu6": F.relu6,
    "Elu": F.elu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Neg": torch.neg,
    "Exp": torch.exp,
    "Sqrt": torch.sqrt,
    "Rsqrt": torch.rsqrt,
    "Square": torch.square,
    "Abs": torch.abs,
}

_REDUCE: dict[str, Callable[..., Tensor]] = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax}


# ----------------------------------------------------------------------------- plan building


@dataclass(frozen=True)
class _Info:
    """Static facts about a value: its TF rank and whether it is a runtime NHWC-as-NCHW tensor."""

    rank: int
    spatial: bool


@dataclass
class _Arg:
    """One input of a node: a runtime slot, or a constant known at build time."""

    name: str
    info: _Info
    slot: int | None = None
    const: np.ndarray | None = None


def _ref(inp: str) -> str:
    """Node name of an input reference such as ``name`` or ``name:0``; rejects other outputs."""
    name, _, index = inp.partition(":")
    if index not in ("", "0"):
        raise NotImplementedError(f"input {inp!r}: only the first output of a node is supported")
    return name


def _buffer_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


class _Builder:
    """Turns GraphDef nodes into (fn, input slots, output slot) steps."""

    def __init__(self) -> None:
        self.steps: list[tuple[StepFn, tuple[int, ...], int]] = []
        self.buffers: dict[str, tuple[int, np.ndarray]] = {}  # buffer name -> (slot, value)
        self.values: dict[str, _Arg] = {}
        self.nodes: dict[str, Node] = {}  # the whole graph, for peephole patterns
        self.num_slots = 0

    def new_slot(self) -> int:
        self.num_slots += 1
        return self.num_slots - 1

    def args(self, node: Node) -> list[_Arg]:
        return [self.values[_ref(i)] for i in node.get("input", []) if not i.startswith("^")]

    def const_slot(self, arg: _Arg, tag: str, convert: Callable[[np.ndarray], np.ndarray]) -> int:
        """Slot of a frozen buffer holding ``convert(arg.const)``, shared between consumers."""
        if arg.const is None:
            raise NotImplementedError(f"{arg.name!r} must be a constant here ({tag})")
        key = _buffer_name(f"{arg.name}{tag}")
        if key not in self.buffers:
            self.buffers[key] = (self.new_slot(), np.ascontiguousarray(convert(arg.const)))
        return self.buffers[key][0]

    def emit(self, node: Node, fn: StepFn, slots: Sequence[int | None], info: _Info) -> None:
        if None in slots:
            raise NotImplementedError(f"node {node['name']!r} ({node['op']}): constant folding is not supported")
        out = self.new_slot()
        self.steps.append((fn, tuple(slots), out))
        self.values[node["name"]] = _Arg(node["name"], info, slot=out)

    def value_slot(self, arg: _Arg, spatial: bool) -> int:
        """Slot for an elementwise operand; constants are laid out to broadcast in NCHW if needed."""
        if arg.slot is not None:
            return arg.slot
        if not spatial or arg.const.ndim == 0:
            return self.const_slot(arg, "", lambda c: c)
        return self.const_slot(arg, "_nchw", lambda c: c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 3, 1, 2))


def _fused(
    node: Node, args: list[_Arg], b: _Builder, alpha_layout: Callable[[np.ndarray], np.ndarray]
) -> tuple[list[int], Callable[..., Tensor] | None]:
    """Slots for the bias (and PReLU slope) inputs of a ``_Fused*`` node, and its activation."""
    ops = _attr(node, "fused_ops", [])
    if not ops:
        return [], None
    if ops[0] != "BiasAdd" or len(ops) > 2:
        raise NotImplementedError(f"node {node['name']!r}: fused ops {ops} are not supported")
    slots = [b.const_slot(args[2], "", lambda c: c)]
    act = None
    if len(ops) == 2:
        act = _activation(ops[1], _attr(node, "leakyrelu_alpha", 0.2))
        if ops[1] == "Prelu":
            slots.append(b.const_slot(args[3], "_alpha", alpha_layout))
    return slots, act


def _build_conv(b: _Builder, node: Node) -> None:
    _check_nhwc(node)
    args = b.args(node)
    depthwise = "Depthwise" in node["op"]
    if depthwise:  # [kh, kw, cin, mult] -> [cin * mult, 1, kh, kw]
        w = b.const_slot(args[1], "_dw", lambda c: c.transpose(2, 3, 0, 1).reshape(-1, 1, *c.shape[:2]))
    else:  # [kh, kw, cin, cout] -> [cout, cin, kh, kw]
        w = b.const_slot(args[1], "_oihw", lambda c: c.transpose(3, 2, 0, 1))
    extra, act = _fused(node, args, b, lambda c: c.reshape(1, -1, 1, 1))
    fn = partial(
        _conv,
        pad=_padding_spec(node),
        stride=_spatial_pair(node, "strides"),
        dilation=_spatial_pair(node, "dilations"),
        depthwise=depthwise,
        act=act,
    )
    b.emit(node, fn, [args[0].slot, w, *extra], _Info(4, True))


def _build_matmul(b: _Builder, node: Node) -> None:
    args = b.args(node)
    ta, tb = _attr(node, "transpose_a", False), _attr(node, "transpose_b", False)
    extra, act = _fused(node, args, b, lambda c: c)
    if args[1].const is not None and not ta and args[1].const.ndim == 2:
        w = b.const_slot(args[1], "_linear", lambda c: c if tb else c.T)
        b.emit(node, partial(_linear, act=act), [args[0].slot, w, *extra], _Info(2, False))
        return
    slots = [b.value_slot(a, False) for a in args[:2]]
    fn = partial(_matmul, transpose_a=ta, transpose_b=tb, act=act)
    b.emit(node, fn, [*slots, *extra], _Info(2, False))


def _prelu_idiom(b: _Builder, node: Node) -> tuple[str, str, float] | None:
    """``(x, c, sign)`` when ``node`` is ``Add(Relu(x), Mul(Sub(x, Abs(x)), c))`` with a constant ``c`` (sign +1),
    or with ``Sub(Abs(x), x)`` (sign -1): TF's PReLU idiom, i.e. PReLU with slope ``2 * sign * c``."""
    refs = [_ref(i) for i in node.get("input", [])]
    ops = {r: b.nodes.get(r, {}).get("op") for r in refs}
    if node["op"] not in ("Add", "AddV2") or sorted(ops.values(), key=str) != ["Mul", "Relu"]:
        return None
    relu, mul = (next(r for r in refs if ops[r] == op) for op in ("Relu", "Mul"))
    (x,) = [_ref(i) for i in b.nodes[relu]["input"]]
    mul_in = [_ref(i) for i in b.nodes[mul]["input"]]
    consts = [r for r in mul_in if b.values.get(r) is not None and b.values[r].const is not None]
    subs = [r for r in mul_in if b.nodes.get(r, {}).get("op") == "Sub"]
    if len(mul_in) != 2 or len(consts) != 1 or len(subs) != 1:
        return None
    sub_in = [_ref(i) for i in b.nodes[subs[0]]["input"]]
    is_abs = [b.nodes.get(r, {}).get("op") == "Abs" and [_ref(i) for i in b.nodes[r]["input"]] == [x] for r in sub_in]
    if sub_in == [x, sub_in[1]] and is_abs == [False, True]:
        return x, consts[0], 1.0
    if sub_in == [sub_in[0], x] and is_abs == [True, False]:
        return x, consts[0], -1.0
    return None


def _build_binary(b: _Builder, node: Node) -> None:
    args = b.args(node)
    idiom = _prelu_idiom(b, node)
    if idiom is not None and b.values[idiom[0]].slot is not None:
        # One where() instead of five elementwise ops (and their backward); the same numbers, as
        # c * (x - |x|) == (2c) * x exactly for x < 0. The unused Relu/Abs/Sub/Mul steps are pruned later.
        x, c, sign = b.values[idiom[0]], b.values[idiom[1]], idiom[2]
        spatial = x.info.rank == 4
        if spatial and c.const.ndim == 1:  # per channel: torch's fused PReLU kernel
            alpha = b.const_slot(c, "_prelu_slope" if sign > 0 else "_prelu_neg_slope",
                                 lambda v: np.float32(2.0 * sign) * v)
            b.emit(node, F.prelu, [x.slot, alpha], x.info)
            return
    if node["op"] in _CLAMP and len(args) == 2:
        runtime = [a for a in args if a.slot is not None]
        scalar = [a for a in args if a.const is not None and a.const.size == 1]
        if len(runtime) == 1 and len(scalar) == 1 and runtime[0].info.rank >= scalar[0].const.ndim:
            # clamp: a much cheaper backward than maximum/minimum; at ties the gradient goes to x.
            bound = {_CLAMP[node["op"]]: float(scalar[0].const.reshape(()))}
            b.emit(node, partial(torch.clamp, **bound), [runtime[0].slot], runtime[0].info)
            return
    rank = max(a.info.rank for a in args)
    spatial = rank == 4  # a rank-4 result is always stored NCHW
    slots = [b.value_slot(a, spatial) for a in args]
    convert = tuple(spatial and a.slot is not None and not a.info.spatial for a in args)
    fn = _BINARY[node["op"]]
    step = partial(_binary, fn, convert) if any(convert) else fn
    b.emit(node, step, slots, _Info(rank, spatial))


def _build_unary(b: _Builder, node: Node) -> None:
    (x,) = b.args(node)
    b.emit(node, _UNARY[node["op"]], [b.value_slot(x, x.info.rank == 4)], _Info(x.info.rank, x.info.rank == 4))


def _build_leaky_relu(b: _Builder, node: Node) -> None:
    (x,) = b.args(node)
    b.emit(node, partial(F.leaky_relu, negative_slope=_attr(node, "alpha", 0.2)), [x.slot], x.info)


def _build_softmax(b: _Builder, node: Node) -> None:
    (x,) = b.args(node)
    b.emit(node, partial(torch.softmax, dim=1 if x.info.spatial else -1), [x.slot], x.info)


def _build_reduce(b: _Builder, node: Node) -> None:
    x, axes_arg = b.args(node)
    rank = x.info.rank
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes_arg.const)})
    keepdim = _attr(node, "keep_dims", False)
    order = _NHWC_TO_NCHW if x.info.spatial else tuple(range(rank))
    dims = tuple(order[a] for a in axes)
    perm = None
    if not keepdim:
        kept_tf = [order[a] for a in range(rank) if a not in axes]  # in TF order, as torch dims
        kept_torch = sorted(kept_tf)
        if kept_tf != kept_torch:
            perm = tuple(kept_torch.index(d) for d in kept_tf)
    out_rank = rank if keepdim else rank - len(axes)
    fn = partial(_reduce, fn=_REDUCE[node["op"]], dims=dims, keepdim=keepdim, perm=perm)
    b.emit(node, fn, [x.slot], _Info(out_rank, x.info.spatial and out_rank == 4))


def _build_reshape(b: _Builder, node: Node) -> None:
    x, shape_arg = b.args(node)
    shape = tuple(int(s) for s in np.atleast_1d(shape_arg.const))
    to_spatial = len(shape) == 4
    fn = partial(_reshape, shape=shape, from_spatial=x.info.spatial, to_spatial=to_spatial)
    b.emit(node, fn, [x.slot], _Info(len(shape), to_spatial))


def _squeeze(x: Tensor, *, dims: tuple[int, ...], from_spatial: bool) -> Tensor:
    if from_spatial:
        x = x.permute(0, 2, 3, 1)
    if any(x.shape[d] != 1 for d in dims):
        raise ValueError(f"Squeeze: dims {dims} of a tensor of shape {tuple(x.shape)} are not all 1")
    return x.squeeze(dims)


def _build_squeeze(b: _Builder, node: Node) -> None:
    (x,) = b.args(node)
    rank = x.info.rank
    axes = _attr(node, "squeeze_dims", [])
    if not axes:  # which dims are 1 is only known at run time, so the output rank would be unknown here
        raise NotImplementedError(f"node {node['name']!r}: Squeeze without squeeze_dims is not supported")
    dims = tuple(sorted({int(a) % rank for a in axes}))
    out_rank = rank - len(dims)
    if out_rank == 4:
        raise NotImplementedError(f"node {node['name']!r}: Squeeze to rank 4 is not supported")
    fn = partial(_squeeze, dims=dims, from_spatial=x.info.spatial)
    b.emit(node, fn, [x.slot], _Info(out_rank, False))


def _build_pad(b: _Builder, node: Node) -> None:
    args = b.args(node)
    x, pads = args[0], np.asarray(args[1].const, dtype=np.int64)
    value = float(args[2].const) if len(args) > 2 else 0.0
    order = _NHWC_TO_NCHW if x.info.spatial else tuple(range(x.info.rank))
    torch_pads = np.zeros_like(pads)
    for tf_axis, dim in enumerate(order):
        torch_pads[dim] = pads[tf_axis]
    flat = tuple(int(p) for row in torch_pads[::-1] for p in row)  # F.pad: last dim first
    b.emit(node, partial(F.pad, pad=flat, value=value), [x.slot], x.info)


def _build_pool(b: _Builder, node: Node) -> None:
    _check_nhwc(node)
    (x,) = b.args(node)
    fn = partial(
        _pool,
        kind="max" if node["op"] == "MaxPool" else "avg",
        pad=_padding_spec(node),
        k=_spatial_pair(node, "ksize"),
        stride=_spatial_pair(node, "strides"),
    )
    b.emit(node, fn, [x.slot], _Info(4, True))


def _build_concat(b: _Builder, node: Node) -> None:
    args = b.args(node)
    parts, axis_arg = args[:-1], args[-1]
    rank = max(a.info.rank for a in parts)
    spatial = rank == 4
    axis = int(axis_arg.const) % rank
    slots = [b.value_slot(a, spatial) for a in parts]
    b.emit(node, partial(_concat, dim=_NHWC_TO_NCHW[axis] if spatial else axis), slots, _Info(rank, spatial))


def _build_identity(b: _Builder, node: Node) -> None:
    (x,) = b.args(node)
    b.values[node["name"]] = x


_BUILDERS: dict[str, Callable[[_Builder, Node], None]] = {
    **{
        op: _build_conv
        for op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "DepthwiseConv2d", "FusedDepthwiseConv2dNative")
    },
    **{op: _build_matmul for op in ("MatMul", "_FusedMatMul")},
    **{op: _build_binary for op in _BINARY},
    **{op: _build_unary for op in _UNARY},
    **{op: _build_reduce for op in _REDUCE},
    **{op: _build_pad for op in ("Pad", "PadV2")},
    **{op: _build_pool for op in ("MaxPool", "AvgPool")},
    "LeakyRelu": _build_leaky_relu,
    "Softmax": _build_softmax,
    "Reshape": _build_reshape,
    "Squeeze": _build_squeeze,
    "ConcatV2": _build_concat,
    "Identity": _build_identity,
}


def unfuse_prelu_relu(nodes: dict[str, Node]) -> int:
    """Undo a wrong fusion of TF's PReLU idiom ``relu(x) + alpha * (x - abs(x))``; returns how many were fixed.

    Where ``x`` came from a conv, the TF.js converter folded the ``Relu`` into the conv's ``fused_ops`` and
    pointed every consumer of ``x`` at the fused node, so ``Abs``/``Sub`` see ``relu(x)`` and the PReLU
    becomes a plain ReLU (the original TFLite file of the same weights keeps the separate ``RELU``). This
    splits such a conv back into the conv (BiasAdd only) and a ``Relu`` node read by the ``Add`` only.
    """
    consumers: dict[str, list[Node]] = {}
    for n in nodes.values():
        for inp in n.get("input", []):
            if not inp.startswith("^"):
                consumers.setdefault(_ref(inp), []).append(n)
    fixed = 0
    for name, n in list(nodes.items()):
        if _attr(n, "fused_ops", []) != ["BiasAdd", "Relu"]:
            continue
        users = consumers.get(name, [])
        ops = sorted(u["op"] for u in users)
        if ops != ["Abs", "Add", "Sub"]:
            continue
        add = next(u for u in users if u["op"] == "Add")
        sub = next(u for u in users if u["op"] == "Sub")
        if not any(_ref(i) == sub["name"] for u in nodes.values() if u["op"] == "Mul" for i in u.get("input", [])):
            continue
        n["attr"]["fused_ops"] = {"list": {"s": [base64.b64encode(b"BiasAdd").decode()]}}
        relu = f"{name}/unfused_Relu"
        nodes[relu] = {"name": relu, "op": "Relu", "input": [name], "attr": {}}
        add["input"] = [relu if _ref(i) == name else i for i in add["input"]]
        fixed += 1
    return fixed


def flip_prelu_slopes(nodes: dict[str, Node]) -> int:
    """Negate the slope of every PReLU idiom ``relu(x) + alpha * (x - abs(x))``; returns how many.

    Done by swapping the operands of its ``Sub`` (``abs(x) - x``), which leaves the weights untouched. For a
    converted graph whose slope constants came out with the wrong sign (see ``load_mobilefacenet``).
    """
    flipped = 0
    for n in nodes.values():
        if n["op"] != "Sub" or len(n.get("input", [])) != 2:
            continue
        x, a = (_ref(i) for i in n["input"])
        if nodes.get(a, {}).get("op") == "Abs" and [_ref(i) for i in nodes[a]["input"]] == [x]:
            n["input"] = [n["input"][1], n["input"][0]]
            flipped += 1
    return flipped


Step = tuple[StepFn, tuple[int, ...], int]


def _live_steps(steps: list[Step], output: int) -> list[Step]:
    """The steps the output depends on (peepholes such as the PReLU idiom leave others behind)."""
    needed, live = {output}, []
    for step in reversed(steps):
        if step[2] in needed:
            live.append(step)
            needed.update(step[1])
    return live[::-1]


def _topological(nodes: dict[str, Node], output: str) -> list[str]:
    """Names of the nodes ``output`` depends on, dependencies first (iterative DFS)."""
    order: list[str] = []
    done: set[str] = set()
    stack: list[tuple[str, bool]] = [(output, False)]
    while stack:
        name, expanded = stack.pop()
        if name in done:
            continue
        if expanded:
            done.add(name)
            order.append(name)
            continue
        if name not in nodes:
            raise KeyError(f"graph has no node named {name!r}")
        stack.append((name, True))
        for inp in nodes[name].get("input", []):
            if not inp.startswith("^") and _ref(inp) not in done:
                stack.append((_ref(inp), False))
    return order


def _placeholder_rank(node: Node) -> int:
    shape = node.get("attr", {}).get("shape", {}).get("shape", {})
    if "dim" not in shape:
        raise NotImplementedError(f"placeholder {node['name']!r} has no static rank")
    return len(shape["dim"])


class TFJSGraphModule(torch.nn.Module):
    """A TF.js graph model from ``input_name`` to ``output_name`` as a torch module.

    Args:
        graph_path: the model JSON (``modelTopology`` + ``weightsManifest``).
        output_name: node to compute (a ``:0`` suffix is accepted).
        input_name: the placeholder fed by ``forward``'s argument.
        bin_paths: weight shards, in manifest order; default: the files the manifest names,
            next to the JSON.
        repair: optional rewrite of the node table (name -> node) before it is built, for graphs the
            converter got wrong (see :func:`unfuse_prelu_relu`).

    ``forward(x)``: a rank-4 input is NCHW (the TF NHWC tensor, permuted); so is a rank-4 output.
    Only nodes the output depends on are built; an unsupported op raises ``NotImplementedError``.
    """

    def __init__(
        self,
        graph_path: str | Path,
        output_name: str,
        input_name: str,
        bin_paths: Sequence[str | Path] | None = None,
        repair: Callable[[dict[str, Node]], None] | None = None,
    ) -> None:
        super().__init__()
        model = json.loads(Path(graph_path).read_text())
        nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        if repair is not None:
            repair(nodes)
        weights = load_weights(graph_path, bin_paths)
        builder = _Builder()
        builder.nodes = nodes
        input_name, output_name = _ref(input_name), _ref(output_name)
        order = _topological(nodes, output_name)
        if input_name not in order:
            raise ValueError(f"output {output_name!r} does not depend on input {input_name!r}")
        for name in order:
            node = nodes[name]
            op = node["op"]
            if op == "Const":
                if name not in weights:
                    raise KeyError(f"constant {name!r} is missing from the weights manifest")
                value = weights[name]
                builder.values[name] = _Arg(name, _Info(value.ndim, False), const=value)
            elif op == "Placeholder":
                if name != input_name:
                    raise ValueError(f"output {output_name!r} needs placeholder {name!r}, which is not the input")
                rank = _placeholder_rank(node)
                builder.values[name] = _Arg(name, _Info(rank, rank == 4), slot=builder.new_slot())
            elif op in _BUILDERS:
                _BUILDERS[op](builder, node)
            else:
                raise NotImplementedError(f"TF op {op!r} (node {name!r}) is not supported")

        out = builder.values[output_name]
        if out.slot is None:
            raise NotImplementedError(f"output {output_name!r} is a constant")
        self.input_rank = builder.values[input_name].info.rank
        self._input_slot = builder.values[input_name].slot
        self._output_slot = out.slot
        self._num_slots = builder.num_slots
        self._steps = _live_steps(builder.steps, out.slot)
        self._const_slots: list[tuple[int, str]] = []
        for key, (slot, value) in builder.buffers.items():
            self.register_buffer(key, torch.from_numpy(np.array(value, dtype=np.float32)))
            self._const_slots.append((slot, key))
        self._release = self._last_uses()

    def _last_uses(self) -> list[tuple[int, ...]]:
        """Per step, the runtime slots no later step reads (freed early to save memory)."""
        last: dict[int, int] = {}
        for k, (_, ins, _) in enumerate(self._steps):
            for i in ins:
                last[i] = k
        consts = {slot for slot, _ in self._const_slots}
        release: list[list[int]] = [[] for _ in self._steps]
        for slot, k in last.items():
            if slot not in consts and slot != self._output_slot:
                release[k].append(slot)
        return [tuple(r) for r in release]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.input_rank:
            raise ValueError(f"expected a rank-{self.input_rank} input, got shape {tuple(x.shape)}")
        vals: list[Tensor | None] = [None] * self._num_slots
        for slot, key in self._const_slots:
            vals[slot] = getattr(self, key)
        vals[self._input_slot] = x
        for (fn, ins, out), release in zip(self._steps, self._release, strict=True):
            vals[out] = fn(*[vals[i] for i in ins])
            for i in release:
                vals[i] = None
        return vals[self._output_slot]
