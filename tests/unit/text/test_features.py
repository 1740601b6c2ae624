"""The scikit-learn-free featuriser gives the fitted vectorisers' features exactly (word TF-IDF 1-2-grams,
binary word counts, character 2-5-grams inside words)."""

from __future__ import annotations

import numpy as np
import pytest
from ally.text.classifiers import RECIPES, WORD_TOKENS
from ally.text.features import NgramFeaturizer

TEXTS = ["Just hit the big 3-0 and honestly my knees hurt!!!", "I'm 24 and live in  Leeds with my wife lol",
         "ok", "", "The Boise YMCA pool is closed again?! Swimming at the river instead",
         "Ça va? Naïve café owners say y'all a lot", "a b c d e f g"]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_features_match_scikit_learn(recipe):
    text_mod = pytest.importorskip("sklearn.feature_extraction.text")
    r = RECIPES[recipe]
    common = dict(analyzer=r.analyzer, ngram_range=r.ngram, lowercase=r.lowercase, binary=r.binary,
                  dtype=np.float32)
    if r.analyzer == "word":
        common["token_pattern"] = WORD_TOKENS
    vec = (text_mod.TfidfVectorizer(sublinear_tf=True, **common) if r.tfidf else text_mod.CountVectorizer(**common))
    vec.fit(TEXTS[:5] + ["hit the big the big the big", "the river the river"])
    ref = vec.transform(TEXTS).toarray()
    ours = NgramFeaturizer(r.analyzer, r.ngram, r.lowercase, r.binary, dict(vec.vocabulary_),
                           vec.idf_.astype(np.float32) if r.tfidf else None,
                           **({"token_pattern": WORD_TOKENS} if r.analyzer == "word" else {}))
    coef = np.random.default_rng(0).normal(size=(3, ref.shape[1])).astype(np.float32)
    assert np.allclose(ours.dot(TEXTS, coef), ref @ coef.T, atol=1e-4)
    dense = np.zeros_like(ref)
    for row, t in enumerate(TEXTS):
        idx, val = ours.sparse_row(t)
        dense[row, idx] = val
    assert np.allclose(dense, ref, atol=1e-6)
