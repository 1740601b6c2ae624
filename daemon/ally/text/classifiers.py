"""Attribute classifiers: the surrogates the search attacks and the held-out evaluators that measure it.

=====================  =========  ==============================================================  ============
model                  role       what                                                            trained on
=====================  =========  ==============================================================  ============
word-lr-{age,gender}   surrogate  TF-IDF word 1-2-grams → logistic regression                     surrogate authors
word-nb-{age,gender}   surrogate  binary word unigrams → multinomial naive Bayes                  surrogate authors
breame-region          surrogate  British/American spellings and dialect terms (breame lists)    (lexicon)
char-lr-{age,gender}   evaluator  TF-IDF character 2-5-grams, case kept → logistic regression     evaluator authors
sap-{age,gender}       evaluator  Sap et al. 2014 lexica (Facebook users), age in years → bracket  (pretrained)
abclf-region           evaluator  VarCon American/British lexicon (abclf's decision rule)          (lexicon)
=====================  =========  ==============================================================  ============

Trained models are plain arrays (``.npz``) plus a JSON header — no pickles. They are trained at first use from
the cached corpus, with fixed seeds, into the user's cache directory (see :func:`ensure_trained`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .resources import AGE_BRACKETS, BreameLists

ATTRIBUTES = ("age", "gender", "region")
FORMAT_VERSION = 1


class AttributeModel(Protocol):
    name: str
    attribute: str
    classes: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, len(classes)) probabilities."""
        ...


def predict(model: AttributeModel, texts: Sequence[str]) -> list[str]:
    return [model.classes[i] for i in np.argmax(model.predict_proba(texts), axis=1)]


# ---------------------------------------------------------------------------------------------------------
# Linear models over n-grams (trained here)

WORD_TOKENS = r"(?u)\b[\w']+\b|[!?]{2,}"


@dataclass
class LinearNgramModel:
    """A linear classifier over TF-IDF (or binary) n-gram features, stored as arrays."""

    name: str
    attribute: str
    classes: tuple[str, ...]
    analyzer: str  # "word" | "char_wb"
    ngram: tuple[int, int]
    lowercase: bool
    binary: bool
    vocabulary: list[str]
    idf: np.ndarray | None
    coef: np.ndarray  # (classes, features) — for 2 classes still 2 rows
    intercept: np.ndarray
    temperature: float = 1.0  # logits are divided by it (calibration; set at load, not stored)
    _vectorizer: object = field(default=None, repr=False)

    def vectorizer(self):
        """The n-gram featuriser (scikit-learn's analysers and weighting, without importing scikit-learn)."""
        if self._vectorizer is None:
            from .features import NgramFeaturizer

            self._vectorizer = NgramFeaturizer(
                self.analyzer, tuple(self.ngram), self.lowercase, self.binary,
                {t: i for i, t in enumerate(self.vocabulary)}, self.idf,
                **({"token_pattern": WORD_TOKENS} if self.analyzer == "word" else {}))
        return self._vectorizer

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.vectorizer().dot(list(texts), self.coef) + self.intercept

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        z = self.logits(texts) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    # -- storage ----------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = dict(format=FORMAT_VERSION, name=self.name, attribute=self.attribute, classes=list(self.classes),
                      analyzer=self.analyzer, ngram=list(self.ngram), lowercase=self.lowercase,
                      binary=self.binary, vocabulary=self.vocabulary)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                            idf=self.idf if self.idf is not None else np.zeros(0, np.float32),
                            has_idf=np.array(self.idf is not None), coef=self.coef, intercept=self.intercept)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearNgramModel:
        with np.load(path, allow_pickle=False) as z:
            h = json.loads(z["header"].tobytes().decode())
            if h["format"] != FORMAT_VERSION:
                raise ValueError(f"{path}: format {h['format']}, expected {FORMAT_VERSION}")
            return cls(name=h["name"], attribute=h["attribute"], classes=tuple(h["classes"]),
                       analyzer=h["analyzer"], ngram=tuple(h["ngram"]), lowercase=h["lowercase"],
                       binary=h["binary"], vocabulary=h["vocabulary"],
                       idf=z["idf"].astype(np.float32) if bool(z["has_idf"]) else None,
                       coef=z["coef"].astype(np.float32), intercept=z["intercept"].astype(np.float32))


@dataclass(frozen=True)
class NgramRecipe:
    """How one linear model is fitted (the training command is this table plus a fixed seed)."""

    kind: str  # "lr" | "nb"
    analyzer: str
    ngram: tuple[int, int]
    lowercase: bool
    binary: bool
    tfidf: bool
    min_df: int
    max_features: int
    C: float = 1.0


RECIPES: dict[str, NgramRecipe] = {
    "word-lr": NgramRecipe("lr", "word", (1, 2), True, False, True, 2, 200_000, C=2.0),
    "word-nb": NgramRecipe("nb", "word", (1, 1), True, True, False, 2, 50_000),
    "char-lr": NgramRecipe("lr", "char_wb", (2, 5), False, False, True, 3, 300_000, C=2.0),
}


def fit_ngram_model(name: str, attribute: str, recipe: NgramRecipe, texts: Sequence[str],
                    labels: Sequence[str], *, seed: int = 0) -> LinearNgramModel:
    """Fit one model (scikit-learn), then keep only its arrays."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    common = dict(analyzer=recipe.analyzer, ngram_range=recipe.ngram, lowercase=recipe.lowercase,
                  min_df=recipe.min_df, max_features=recipe.max_features, dtype=np.float32, binary=recipe.binary)
    if recipe.analyzer == "word":
        common["token_pattern"] = WORD_TOKENS
    vec = TfidfVectorizer(sublinear_tf=True, **common) if recipe.tfidf else CountVectorizer(**common)
    x = vec.fit_transform(list(texts))
    classes = tuple(sorted(set(labels)))
    if recipe.kind == "lr":
        clf = LogisticRegression(C=recipe.C, max_iter=3000, random_state=seed).fit(x, list(labels))
        coef, intercept = clf.coef_, clf.intercept_
        if len(classes) == 2:  # binary LR has one row: expand to two symmetric rows
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    else:
        clf = MultinomialNB(alpha=1.0).fit(x, list(labels))
        coef, intercept = clf.feature_log_prob_, clf.class_log_prior_
    assert tuple(clf.classes_) == classes
    vocab = [None] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        vocab[i] = term
    return LinearNgramModel(name=name, attribute=attribute, classes=classes, analyzer=recipe.analyzer,
                            ngram=recipe.ngram, lowercase=recipe.lowercase, binary=recipe.binary,
                            vocabulary=vocab, idf=vec.idf_.astype(np.float32) if recipe.tfidf else None,
                            coef=np.asarray(coef, np.float32), intercept=np.asarray(intercept, np.float32))


# ---------------------------------------------------------------------------------------------------------
# Pretrained lexica


_LEX_TOKENS = re.compile(r"[a-z0-9']+|[^\sa-z0-9']", re.IGNORECASE)


def lexicon_tokens(text: str) -> list[str]:
    return [t.lower() for t in _LEX_TOKENS.findall(text)]


@dataclass
class SapLexiconModel:
    """Sap et al. (2014): score = intercept + Σ weight(term) · freq(term) / tokens.

    Age is a regression in years, turned into the corpus's brackets at the middle of the gaps between them
    (20 and 30 years: fixed by the brackets, not fitted); gender > 0 is female.
    """

    name: str
    attribute: str  # "age" | "gender"
    weights: dict[str, float]

    @property
    def classes(self) -> tuple[str, ...]:
        return AGE_BRACKETS if self.attribute == "age" else ("female", "male")

    def score(self, text: str) -> float:
        toks = lexicon_tokens(text)
        if not toks:
            return self.weights["_intercept"]
        counts = Counter(toks)
        s = sum(self.weights.get(t, 0.0) * c for t, c in counts.items()) / len(toks)
        return self.weights["_intercept"] + s

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.classes)), np.float32)
        for i, t in enumerate(texts):
            s = self.score(t)
            if self.attribute == "age":
                out[i, 0 if s < 20 else 1 if s < 30 else 2] = 1.0
            else:
                p = 1.0 / (1.0 + math.exp(-4.0 * s))
                out[i] = (p, 1.0 - p)
        return out


REGION_CLASSES = ("american", "british", "unmarked")


@dataclass
class VarietyLexiconModel:
    """American vs British from variety-specific words.

    ``rule="abclf"`` is abclf's published decision (a variety needs more than twice the other's count; none
    found → unknown; else mixed — mixed and unknown both read as ``unmarked`` here). ``rule="soft"`` gives a
    smooth score over the same counts for the search to descend.
    """

    name: str
    lexicon: dict[str, str]  # word -> "A" | "B"
    rule: str = "abclf"
    attribute: str = "region"
    classes: tuple[str, ...] = REGION_CLASSES

    def counts(self, text: str) -> tuple[int, int]:
        a = b = 0
        for tok in re.findall(r"[a-z']+", text.casefold()):
            v = self.lexicon.get(tok)
            a += v == "A"
            b += v == "B"
        return a, b

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 3), np.float32)
        for i, t in enumerate(texts):
            a, b = self.counts(t)
            if self.rule == "abclf":
                k = 0 if a > 2 * b else 1 if b > 2 * a else 2
                out[i, k] = 1.0
            else:
                z = np.array([1.5 * a, 1.5 * b, 1.0])
                e = np.exp(z - z.max())
                out[i] = e / e.sum()
        return out


def breame_lexicon(lists: BreameLists) -> dict[str, str]:
    """breame's spelling pairs and dialect-only terms as one word → variety map."""
    lex: dict[str, str] = {}
    for brit, amer in lists.british_to_american.items():
        if brit != amer and brit.isalpha() and amer.isalpha():
            lex[brit], lex[amer] = "B", "A"
    for t in lists.british_terms - lists.american_terms:
        lex.setdefault(t, "B")
    for t in lists.american_terms - lists.british_terms:
        lex.setdefault(t, "A")
    return lex


# ---------------------------------------------------------------------------------------------------------
# Ensembles


@dataclass
class AttributeEnsemble:
    """Models of one attribute; the mean of their probabilities (classes must agree)."""

    attribute: str
    models: list[AttributeModel]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.models[0].classes

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.mean([m.predict_proba(texts) for m in self.models], axis=0)


Progress = Callable[[str, float], None]
