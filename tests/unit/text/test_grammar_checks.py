"""The rewrite failures seen on everyday posts (issue 11), each refused by the synonym rules: WordNet synonyms
only from the word's dominant part of speech, never for core words, never rare (wordfreq)."""

from __future__ import annotations

import pytest
from ally.text import resources as R
from ally.text.tokens import words
from ally.text.transformations import Synonyms, common_enough

# (word as written, the bad swap, a sentence it appeared in)
FAILURES = [
    ("hate", "hatred", "I hate mornings"), ("new", "newly", "my new phone"), ("bad", "badly", "a bad day"),
    ("blue", "blueness", "the blue car"), ("says", "tells", "she says it's fine"), ("now", "today", "I'm home now"),
    ("five", "fivesome", "five of us went"), ("nurse", "nursemaid", "the nurse was kind"),
    ("stroller", "pusher", "the stroller broke"), ("reunion", "reunification", "our family reunion"),
    ("just", "merely", "I just got home"), ("just", "simply", "I just got home"),
]


@pytest.mark.parametrize("word,bad,sentence", FAILURES)
def test_frequency_rule_refuses_the_listed_swaps(word, bad, sentence):
    assert not common_enough(word, bad)


def test_frequency_rule_keeps_ordinary_swaps():
    assert common_enough("glad", "happy") and common_enough("purchased", "bought")


@pytest.mark.real_models
@pytest.mark.parametrize("word,bad,sentence", FAILURES)
def test_real_wordnet_synonyms_never_offer_the_listed_swaps(word, bad, sentence, real_model, model_cache):
    real_model(R.WORDNET_MODEL)
    table = _table(model_cache)
    ws = words(sentence)
    i = next(k for k, w in enumerate(ws) if w.lower == word)
    offered = [c.new.lower() for c in Synonyms(table).candidates(ws, i)]
    assert bad not in offered, offered


@pytest.mark.real_models
def test_dominant_part_of_speech(real_model, model_cache):
    real_model(R.WORDNET_MODEL)
    table = _table(model_cache)
    assert "hatred" not in table.get("hate", []) and "newly" not in table.get("new", [])
    assert table.get("happy")  # adjectives still have synonyms


_TABLES: dict = {}


def _table(model_cache):
    if "t" not in _TABLES:
        _TABLES["t"] = R.load_wordnet_synonyms(model_cache.files(R.WORDNET_MODEL, pull=False))
    return _TABLES["t"]


@pytest.mark.real_models
@pytest.mark.parametrize("word,bad,sentence", [
    ("laugh", "laughter", "those comments make me laugh"), ("load", "loading", "all you do is load this program"),
])
def test_words_used_as_verbs_keep_verb_synonyms(word, bad, sentence, real_model, model_cache):
    """Read in `ally eval text` rewrites (issue 11): SemCor tags "laugh" and "load" as nouns more often."""
    real_model(R.WORDNET_MODEL)
    ws = words(sentence)
    i = next(k for k, w in enumerate(ws) if w.lower == word)
    assert bad not in [c.new.lower() for c in Synonyms(_table(model_cache)).candidates(ws, i)]


def test_quite_a_bit_keeps_quite():
    from ally.text.transformations import DeleteFillers

    assert DeleteFillers().candidates(words("I read quite a bit"), 2) == []
    assert DeleteFillers().candidates(words("it was quite good"), 2)
