"""Decode TF.js weight files (a ``weightsManifest`` plus its binary shards) into numpy arrays.

Mirrors ``decodeWeights`` in tfjs-core's ``io/io_utils``: the shards of every group are read in
manifest order and concatenated, then each weight entry consumes its bytes in turn.
Supported: float32 / int32 / bool entries, and the quantizations ``float16`` (stored as
IEEE half floats) and ``uint8`` / ``uint16`` (affine: ``q * scale + min``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

WeightSpec = dict[str, Any]

_PLAIN_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
}
_QUANT_DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype("<f2"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
}


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Return the weights manifest (list of groups) from a manifest or graph-model JSON file."""
    data = json.loads(Path(path).read_text())
    return data["weightsManifest"] if isinstance(data, dict) else data


def shard_paths(manifest: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """The binary shard files a manifest names, resolved relative to ``folder``."""
    return [Path(folder) / p for group in manifest for p in group["paths"]]


def _stored_dtype(spec: WeightSpec) -> np.dtype:
    quant = spec.get("quantization")
    if quant is None:
        if spec["dtype"] not in _PLAIN_DTYPES:
            raise NotImplementedError(f"weight {spec['name']!r}: unsupported dtype {spec['dtype']!r}")
        return _PLAIN_DTYPES[spec["dtype"]]
    if quant["dtype"] not in _QUANT_DTYPES:
        raise NotImplementedError(f"weight {spec['name']!r}: unsupported quantization {quant['dtype']!r}")
    return _QUANT_DTYPES[quant["dtype"]]


def decode_weight(spec: WeightSpec, raw: np.ndarray) -> np.ndarray:
    """Decode one entry from its stored values ``raw`` (already typed) into float32/int32/bool."""
    shape = tuple(int(d) for d in spec["shape"])
    quant = spec.get("quantization")
    if quant is None:
        values = raw.astype(bool) if spec["dtype"] == "bool" else raw
    elif quant["dtype"] == "float16":
        if spec["dtype"] != "float32":
            raise NotImplementedError(f"weight {spec['name']!r}: float16 quantization of {spec['dtype']}")
        values = raw.astype(np.float32)
    else:
        # tfjs computes q * scale + min in float64 (JS numbers), then stores it in the target type.
        affine = raw.astype(np.float64) * quant["scale"] + quant["min"]
        if spec["dtype"] == "float32":
            values = affine.astype(np.float32)
        elif spec["dtype"] == "int32":
            values = np.floor(affine + 0.5).astype(np.int32)  # JS Math.round
        else:
            raise NotImplementedError(f"weight {spec['name']!r}: {quant['dtype']} quantization of {spec['dtype']}")
    return np.ascontiguousarray(values).reshape(shape)


def decode_weights(specs: Sequence[WeightSpec], data: bytes) -> dict[str, np.ndarray]:
    """Decode the concatenated shard bytes ``data`` for the entries ``specs`` (in manifest order)."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        dtype = _stored_dtype(spec)
        count = int(np.prod([int(d) for d in spec["shape"]], dtype=np.int64))
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(data):
            raise ValueError(f"weight {spec['name']!r} runs past the end of the weight data")
        raw = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        out[spec["name"]] = decode_weight(spec, raw)
        offset += nbytes
    if offset != len(data):
        raise ValueError(f"weight data has {len(data) - offset} trailing bytes not described by the manifest")
    return out


def load_weights(manifest_path: str | Path, bin_paths: Sequence[str | Path] | None = None) -> dict[str, np.ndarray]:
    """Load all weights named in a manifest (or graph-model JSON) as ``{name: array}``.

    ``bin_paths`` overrides the shard files (in manifest order); by default they are looked up
    next to the manifest under the names it lists.
    """
    manifest = read_manifest(manifest_path)
    paths = [Path(p) for p in bin_paths] if bin_paths is not None else shard_paths(manifest, Path(manifest_path).parent)
    data = b"".join(p.read_bytes() for p in paths)
    specs = [spec for group in manifest for spec in group["weights"]]
    return decode_weights(specs, data)
