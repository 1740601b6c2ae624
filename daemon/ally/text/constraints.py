"""Constraints: what a rewrite may not do.

Two kinds, as in TextAttack: *pre-transformation* constraints say which words may be touched at all (protected
spans, names, the cap on changed words); *candidate* constraints judge one proposed replacement (word-vector
similarity) or the whole rewritten text (sentence-embedding similarity to the original).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .embed import Embedder, WordVectors
from .tokens import Word
from .transformations import Candidate


class PreTransformation:
    def allows(self, words: Sequence[Word], i: int, changed: set[int]) -> bool:
        raise NotImplementedError


class Locked(PreTransformation):
    """Words inside protected spans (links, hashtags, mentions, code, emoji, safe names, explicit edits)."""

    def allows(self, words: Sequence[Word], i: int, changed: set[int]) -> bool:
        return not words[i].locked


class NoRepeat(PreTransformation):
    """A word is changed at most once."""

    def allows(self, words: Sequence[Word], i: int, changed: set[int]) -> bool:
        return i not in changed


class LikelyName(PreTransformation):
    """Capitalised words inside a sentence are probably names: leave them (numbers too)."""

    def allows(self, words: Sequence[Word], i: int, changed: set[int]) -> bool:
        w = words[i].text
        if w[:1].isdigit():
            return False
        if i == 0 or not w[:1].isupper() or w == "I" or w.isupper():
            return True
        return False


@dataclass
class MaxChangedFraction(PreTransformation):
    """At most ``fraction`` of the words may change (at least one, when the text has any)."""

    fraction: float
    already: int = 0  # words changed by earlier passes

    def budget(self, n_words: int) -> int:
        return max(0, math.floor(self.fraction * n_words + 1e-9) - self.already) if n_words else 0

    def allows(self, words: Sequence[Word], i: int, changed: set[int]) -> bool:
        return len(changed) < self.budget(len(words))


class CandidateConstraint:
    def allows(self, words: Sequence[Word], i: int, candidate: Candidate) -> bool:
        raise NotImplementedError


@dataclass
class WordSimilarity(CandidateConstraint):
    """A synonym must stay close to the word in MiniLM's static word vectors (deletions and spelling
    normalisations are meaning-keeping by construction and pass)."""

    vectors: WordVectors
    minimum: float

    def allows(self, words: Sequence[Word], i: int, candidate: Candidate) -> bool:
        if candidate.kind != "synonym":
            return True
        return self.vectors.similarity(words[i].text, candidate.new) >= self.minimum


@dataclass
class SentenceSimilarity:
    """Cosine of the sentence embeddings of the original and the rewrite must be at least ``minimum``."""

    embedder: Embedder
    minimum: float

    def similarities(self, original: str, texts: Sequence[str]) -> np.ndarray:
        e = self.embedder.encode([original, *texts])
        return e[1:] @ e[0]
