"""N-gram features at inference without scikit-learn: the same analysers and weighting as the
``CountVectorizer``/``TfidfVectorizer`` the classifiers were fitted with (``fit_ngram_model``).

scikit-learn takes several seconds to import on a busy 2-core laptop (it pulls in scipy.stats), which a CLI call
cannot spare; scoring a post needs only its n-grams counted against a fixed vocabulary. Identity with
scikit-learn is checked in ``tests/unit/text/test_features.py``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")


def word_ngrams(tokens: list[str], lo: int, hi: int) -> list[str]:
    """scikit-learn's ``_word_ngrams``: the tokens (when ``lo`` is 1), then their 2..hi-grams joined by spaces."""
    out = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
        out += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return out


def char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's ``_char_wb_ngrams``: character n-grams inside space-padded words."""
    out = []
    for w in _WHITE_SPACES.sub(" ", text).split():
        w = " " + w + " "
        for n in range(lo, hi + 1):
            offset = 0
            out.append(w[offset:offset + n])
            while offset + n < len(w):
                offset += 1
                out.append(w[offset:offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return out


@dataclass
class NgramFeaturizer:
    """Texts → (n, features) float32 rows, as the fitted vectoriser would give them."""

    analyzer: str  # "word" | "char_wb"
    ngram: tuple[int, int]
    lowercase: bool
    binary: bool
    vocabulary: dict[str, int]
    idf: np.ndarray | None  # TF-IDF (sublinear tf, l2 norm) when given; raw counts otherwise
    token_pattern: str = r"(?u)\b\w\w+\b"

    def __post_init__(self) -> None:
        self._tokens = re.compile(self.token_pattern)

    def terms(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "word":
            return word_ngrams(self._tokens.findall(text), *self.ngram)
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, *self.ngram)
        raise ValueError(f"analyzer {self.analyzer!r} is not supported")

    def sparse_row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(feature indices, values) of one text."""
        counts = Counter(i for i in map(self.vocabulary.get, self.terms(text)) if i is not None)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        if self.binary:
            val[:] = 1.0
        if self.idf is not None and len(val):
            val = (np.log(val) + 1.0) * self.idf[idx]
            val /= math.sqrt(float(val @ val)) or 1.0
        return idx, val.astype(np.float32)

    def dot(self, texts: Sequence[str], coef: np.ndarray) -> np.ndarray:
        """(n, classes): each text's features times ``coef.T`` (``coef`` is (classes, features))."""
        out = np.zeros((len(texts), coef.shape[0]), np.float32)
        for r, t in enumerate(texts):
            idx, val = self.sparse_row(t)
            if len(idx):
                out[r] = coef[:, idx] @ val
        return out
