"""The style transformations added for gender (contractions, intensifiers and laughter, plain register,
exclamation runs), the every-model goal, surrogate calibration and adjacent-edit safety — on made-up text."""

from __future__ import annotations

import numpy as np
import pytest
from ally.text.classifiers import RECIPES, AttributeEnsemble, fit_ngram_model
from ally.text.goals import ConcealAttributes
from ally.text.search import make_edit
from ally.text.tokens import apply_edits, words
from ally.text.transformations import (
    Compose,
    DeleteFillers,
    Exclamations,
    ExpandContractions,
    Register,
    Synonyms,
    expand_contraction,
)


@pytest.mark.parametrize(("word", "nxt", "expected"), [
    ("don't", "", "do not"), ("I'm", "", "I am"), ("i'm", "", "I am"), ("can't", "", "cannot"),
    ("won't", "", "will not"), ("It's", "a", "It is"), ("DON'T", "", "DO NOT"), ("they’re", "", "they are"),
    ("it's", "been", None),  # has, not is
    ("John's", "", None),  # possessive
    ("I'd", "", None),  # had or would
    ("hello", "", None),
])
def test_contractions_are_written_out_only_when_unambiguous(word, nxt, expected):
    assert expand_contraction(word, nxt) == expected


def test_laughter_and_intensifiers_are_deletable_but_ordinary_words_are_not():
    ws = words("hahaha that was absolutely lolz great hello lolly")
    dels = {w.text for w in ws if DeleteFillers().candidates(ws, w.index)}
    assert dels == {"hahaha", "absolutely", "lolz"}


@pytest.mark.parametrize(("text", "deletable"), [
    ("I like cats", set()),
    ("it was like so boring", {"like@2", "so@3"}),
    ("so I left and it hurt so much", set()),
    ("a pretty dress that was pretty good", {"pretty@5"}),
    ("I am not well", set()),
])
def test_fillers_that_are_also_content_words_need_their_context(text, deletable):
    ws = words(text)
    assert {f"{w.text}@{w.index}" for w in ws if DeleteFillers().candidates(ws, w.index)} == deletable


def test_register_and_exclamation_runs():
    text = "That was awesome!!! Really?! fine!"
    ws = words(text)
    got = {(w.text, c.new) for w in ws for c in Compose([Register(), Exclamations()]).candidates(ws, w.index)}
    assert got == {("awesome", "great"), ("awesome", "awesome!"), ("awesome", "awesome."),
                   ("Really", "Really?"), ("fine", "fine.")}
    w = ws[2]
    edit = make_edit(text, w, Exclamations().candidates(ws, 2)[1])
    assert apply_edits(text, [edit]) == "That was awesome. Really?! fine!"


def test_exclamations_inside_protected_spans_are_left_alone():
    from ally.text.tokens import Span

    text = "wow!!! ok"
    ws = words(text, [Span(3, 6, "emoji")])
    assert ws[0].after == "" and Exclamations().candidates(ws, 0) == []


def test_expansion_is_offered_by_the_transformation():
    ws = words("I'm sure it's fine")
    assert [c.new for c in ExpandContractions().candidates(ws, 0)] == ["I am"]
    assert [c.new for c in ExpandContractions().candidates(ws, 2)] == ["it is"]


def _tiny_gender():
    texts = ["i love my friends so much yay", "omg so excited for shopping", "the game was on the tv",
             "our team won the match", "i love shopping with friends", "the team played the game"]
    labels = ["female", "female", "male", "male", "female", "male"]
    return AttributeEnsemble("gender", [fit_ngram_model(f"{k}-gender", "gender", RECIPES[k], texts, labels)
                                        for k in ("word-lr", "word-nb")])


def test_every_model_goal_is_at_least_as_strict_as_the_mean():
    ens = _tiny_gender()
    texts = ["i love shopping", "the team game", "so excited"]
    mean = ConcealAttributes({"gender": ens}, 0.1)
    each = ConcealAttributes({"gender": ens}, 0.1, every_model=True)
    state = mean.start(texts[0])
    lm, le = mean.losses(texts, state), each.losses(texts, state)
    assert np.all(le >= lm - 1e-6)  # mean of hinges ≥ hinge of the mean (convexity)


def test_temperature_softens_probabilities_without_changing_the_reading():
    m = _tiny_gender().models[1]
    texts = ["i love shopping so much", "the team won the game"]
    p1 = m.predict_proba(texts)
    m.temperature = 2.5
    p2 = m.predict_proba(texts)
    m.temperature = 1.0
    assert (p1.argmax(1) == p2.argmax(1)).all() and (p2.max(1) <= p1.max(1) + 1e-7).all()


def test_synonyms_keep_the_inflection_a_noun_reading_would_break():
    """Seen in `ally eval text`: "I've been thinking" → "been thought", "ideas to take from" → "to takings"."""
    table = {"thinking": ["thought", "cerebration"], "think": ["believe", "reckon"], "take": ["takings", "grab"],
             "shout": ["yell"]}
    syn = Synonyms(table)

    def offered(text: str, i: int) -> list[str]:
        return [c.new for c in syn.candidates(words(text), i)]

    assert offered("been thinking of it", 1) == []  # "thinking" is a WordNet noun: its noun synonyms don't fit
    syn.table["seize"] = ["takings", "grab"]
    assert offered("ideas to seize from", 2) == ["grab"]  # "takings" (a noun plural) never stands for a verb
    assert offered("we shouted back", 1) == ["yelled"]
