"""Goal + constraints + transformation + search, and the protector, on tiny models.

The classifiers here are fitted on a dozen made-up sentences: they test the plumbing (does the search lower
the goal's loss, respect locks and budgets, back off on meaning), not protection. Real models are exercised in
test_real_text.py.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from ally.levels import FACE_CLOAK, TEXT, Level, TextSettings
from ally.text.classifiers import (
    RECIPES,
    AttributeEnsemble,
    LinearNgramModel,
    VarietyLexiconModel,
    fit_ngram_model,
)
from ally.text.models import TextModels
from ally.text.protector import TextProtector
from ally.text.resources import (
    BreameLists,
    _mysql_rows,
    load_abclf_lexicon,
    load_wordnet_synonyms,
)

TEENS = ["omg lol school was soooo boring today", "lol my mom is so annoying omg", "cant wait for prom lol omg",
         "homework sucks lol", "omg u r so funny lol", "lol math class omg"]
ADULTS = ["the mortgage payment is due on friday", "our meeting with the client went well",
          "the quarterly report needs revision", "my commute to the office was long",
          "we refinanced the mortgage", "the client meeting is on friday"]
SYNONYMS = {"boring": ["tedious", "dull"], "annoying": ["irritating"], "funny": ["amusing"],
            "school": ["schooling"], "today": ["now"]}


class BagEmbedder:
    """A stand-in sentence encoder: normalised bag of lower-cased words."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def encode(self, texts):
        rows = []
        for t in texts:
            v = np.zeros(512, np.float32)
            for w in re.findall(r"[a-z']+", t.lower()):
                v[hash(w) % 512] += 1
            rows.append(v / (np.linalg.norm(v) + 1e-9))
        return np.stack(rows)


@pytest.fixture(scope="module")
def tiny_models() -> TextModels:
    texts, labels = TEENS + ADULTS, ["13-17"] * len(TEENS) + ["33-48"] * len(ADULTS)
    age = [fit_ngram_model(f"{k}-age", "age", RECIPES[k], texts, labels) for k in ("word-lr", "word-nb")]
    for m in age:  # tiny data: min_df=2 would drop most words
        assert m.vocabulary
    region = VarietyLexiconModel("tiny-region", {"colour": "B", "color": "A"}, rule="soft")
    lists = BreameLists({"colour": "color"}, frozenset(), frozenset())
    models = TextModels(surrogates={"age": AttributeEnsemble("age", age), "region": AttributeEnsemble("region", [region])},
                        evaluators={}, synonyms=SYNONYMS, breame=lists, minilm_files={})
    models._embedder = BagEmbedder()
    return models


@pytest.fixture()
def protector(tiny_models) -> TextProtector:
    p = TextProtector(tiny_models)
    p.word_vectors = None  # no MiniLM word vectors in this test
    p._recipes.clear()
    return p


def loose(**kw) -> TextSettings:
    base = dict(explicit="remove", partners=True, max_changed=0.5, min_similarity=0.0, min_word_similarity=0.0,
                margin=0.0, beam=1)
    return TextSettings(**{**base, **kw})


def test_levels_share_names_with_images():
    assert set(TEXT) == set(FACE_CLOAK) == {Level.LOW, Level.MEDIUM, Level.HIGH}
    assert TEXT[Level.LOW].max_changed < TEXT[Level.MEDIUM].max_changed <= 0.15 < TEXT[Level.HIGH].max_changed
    assert TEXT[Level.MEDIUM].min_similarity >= 0.85


def test_linear_model_round_trips_through_npz(tmp_path: Path, tiny_models):
    m = tiny_models.surrogates["age"].models[0]
    m.save(tmp_path / "m.npz")
    back = LinearNgramModel.load(tmp_path / "m.npz")
    texts = ["lol omg school", "the mortgage meeting"]
    np.testing.assert_allclose(back.predict_proba(texts), m.predict_proba(texts), atol=1e-6)
    assert m.predict_proba(texts)[0].argmax() == m.classes.index("13-17")


@pytest.mark.parametrize("every_model", [False, True])
def test_search_lowers_the_goal_and_flips_the_surrogate(protector, monkeypatch, every_model):
    from ally.text import recipes

    monkeypatch.setattr(recipes, "EVERY_MODEL", every_model)
    text = "omg lol school was soooo boring today"
    r = protector.protect(text, Level.MEDIUM, settings=loose())
    assert r.readings["age"] == ("13-17", "33-48")
    assert r.text != text and all(c.reason for c in r.changes)
    # every_model: each surrogate must lose its lead; the tiny naive Bayes (no temperature) may still hold it
    assert r.goal_reached or every_model


def test_budget_caps_changed_words(protector):
    text = "omg lol school was soooo boring today lol omg lol"
    r = protector.protect(text, Level.LOW, settings=loose(max_changed=0.2))
    # laughter ("lol") is toned down outside the budget (README); the search's own changes stay within it
    searched = [c for c in r.changes if c.reason != "tone toned down"]
    assert len(searched) <= 2
    assert "lol" not in r.text and r.text.startswith("oh school")


def test_locked_spans_and_safe_names_never_change(tiny_models):
    p = TextProtector(tiny_models, safe_names=["Soooo"])
    p.word_vectors = None
    text = "omg lol #lol @omg https://lol.com `lol` Soooo boring today"
    r = p.protect(text, Level.HIGH, settings=loose(max_changed=1.0))
    for kept in ("#lol", "@omg", "https://lol.com", "`lol`", "Soooo"):
        assert kept in r.text


def test_meaning_constraint_backs_edits_off(protector):
    text = "omg school was soooo boring today"  # no "lol": its removal is not an adversarial edit
    r = protector.protect(text, Level.MEDIUM, settings=loose(min_similarity=0.999))
    assert r.text == text and r.changes == [] and r.similarity == pytest.approx(1.0)


def test_off_level_and_empty_text_are_untouched(protector):
    assert protector.protect("omg lol", Level.OFF).text == "omg lol"
    assert protector.protect("   ", Level.HIGH).changes == []


def test_progress_is_reported(protector):
    seen = []
    protector.protect("omg lol school", Level.MEDIUM, lambda s, f: seen.append((s, f)), settings=loose())
    assert seen[0][1] == 0.0 and seen[-1] == ("done", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in seen)


# -- resource readers -----------------------------------------------------------------------------------


def test_mysql_values_parser_handles_escapes():
    rows = list(_mysql_rows("(1,'it\\'s ''ok''\\n',NULL),(2,'b',3);"))
    assert rows == [["1", "it's 'ok'\n", None], ["2", "b", "3"]]


def test_abclf_reader_refuses_pickled_objects(tmp_path: Path):
    good, bad = tmp_path / "good.pickle", tmp_path / "bad.pickle"
    good.write_bytes(pickle.dumps({"color": "A", "colour": "B"}))
    bad.write_bytes(pickle.dumps({"x": io.BytesIO(b"")}))
    assert load_abclf_lexicon(good) == {"color": "A", "colour": "B"}
    with pytest.raises(pickle.UnpicklingError):
        load_abclf_lexicon(bad)


def test_wordnet_reader_keeps_the_first_senses(tmp_path: Path):
    (tmp_path / "index.noun").write_text("  licence\ncar n 3 1 @ 3 1 00000001 00000002 00000003  \n")
    data = ("  licence\n00000001 06 n 02 car 0 auto 0 000 | a motor vehicle\n"
            "00000002 06 n 02 car 0 railcar 0 000 | a wheeled vehicle\n00000003 06 n 02 car 0 gondola 0 000 | x\n")
    (tmp_path / "data.noun1").write_text(data)
    (tmp_path / "data.noun2").write_text("")
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"index.{pos}").write_text("")
        (tmp_path / f"data.{pos}").write_text("")
    files = {p.name: p for p in tmp_path.iterdir()}
    assert load_wordnet_synonyms(files) == {"car": ["auto", "railcar"]}
