"""The explicit pass and the span plumbing: what is generalised, what is never touched."""

from __future__ import annotations

import pytest
from ally.text.explicit import ExplicitPass
from ally.text.tokens import Edit, apply_edits, protected_spans, widen_deletion, words


def rewrite(text: str, granularity: str = "remove", **kw) -> str:
    xp = ExplicitPass(granularity, **kw)
    return apply_edits(text, [f.edit() for f in xp.find(text, protected_spans(text, kw.get("safe", ())))])


def test_protected_spans_cover_links_tags_mentions_code_and_emoji():
    text = "see https://ex.com/a?b=1 and #tbt with @jo_99 `x = 1` 😀 :) me@mail.org"
    kinds = {s.kind for s in protected_spans(text)}
    assert {"url", "hashtag", "mention", "code", "emoji", "email"} <= kinds
    locked = [w.text for w in words(text, protected_spans(text)) if w.locked]
    assert "tbt" in locked and "ex" in locked and "x" in locked
    assert not any(w.locked for w in words(text, protected_spans(text)) if w.text in ("see", "and", "with"))


def test_safe_names_are_locked_case_insensitively():
    spans = protected_spans("Paris said hi to paris", safe_names=["Paris"])
    assert [(s.start, s.end, s.kind) for s in spans] == [(0, 5, "safe-name"), (17, 22, "safe-name")]


def test_apply_edits_keeps_everything_else_byte_for_byte():
    text = "a  b\n\tc"
    assert apply_edits(text, [Edit(3, 4, "b", "B", "t")]) == "a  B\n\tc"
    s, e = widen_deletion("I like cats", 2, 6)
    assert apply_edits("I like cats", [Edit(s, e, "like ", "", "d")]) == "I cats"
    with pytest.raises(ValueError):
        apply_edits("abc", [Edit(0, 2, "ab", "", "x"), Edit(1, 3, "bc", "", "y")])


@pytest.mark.parametrize("granularity,expected", [
    ("coarse", "I'm a teenager and I live in the United Kingdom with my partner."),
    ("stage", "I'm young and I live in [place] with my partner."),
    ("remove", "I'm [age] and I live in [place] with my partner."),
])
def test_age_home_and_partner_are_generalised(granularity, expected):
    assert rewrite("I'm 16 and I live in Leeds with my boyfriend.", granularity) == expected


def test_numbers_that_are_not_ages_are_left_alone():
    text = "I'm 100% sure. I'm 5 minutes late. It was 3 pm and I'm 2 hours away."
    assert rewrite(text) == text


def test_birth_year_school_workplace_street_and_self_description():
    out = rewrite("As a woman in tech I was born in 1987, went to Lincoln High School, work at Acme Corp "
                  "and lived on 42 Baker Street.")
    assert "woman" not in out and "person" in out
    assert "1987" not in out and "[year]" in out
    assert "Lincoln" not in out and "[school]" in out
    assert "Acme" not in out and "[workplace]" in out
    assert "Baker" not in out and "[street]" in out


def test_private_words_and_protected_spans_win():
    text = "Sparky and I went to https://leeds.example.com I live in Leeds"
    out = rewrite(text, private_words=["sparky"])
    assert out.startswith("[private] and I went to https://leeds.example.com")
    assert out.endswith("I live in [place]")


def test_partners_kept_when_the_level_says_so():
    assert rewrite("my husband cooked", partners=False) == "my husband cooked"
    assert rewrite("my husband cooked") == "my spouse cooked"


@pytest.mark.parametrize("text,expected", [
    ("I am a 34 year old mother of two.", "I am a 30-something parent of two."),
    ("I'm a 19-year-old student", "I'm a teenage student"),
    ("a 41 year old single dad here", "a 40-something single dad here"),
])
def test_ages_stated_as_adjectives_are_generalised(text, expected):
    assert rewrite(text, "coarse") == expected


@pytest.mark.parametrize("text,expected", [
    ("I turned 16 last week", "I had a birthday last week"),
    ("she turns 30 on Monday", "she has a birthday on Monday"),
    ("after waiting to turn 18, I", "after waiting to have a birthday, I"),
])
def test_turning_an_age_keeps_the_verb_form(text, expected):
    assert rewrite(text, "coarse") == expected


@pytest.mark.parametrize("text,word,expected", [
    ("Even my grandpa. LOL! It was fun", "LOL", "Even my grandpa. It was fun"),
    ("LOL!! that was fun", "LOL", "that was fun"),
    ("It was great LOL!", "LOL", "It was great!"),  # the sentence's own "!" stays
    ("I like cats", "like", "I cats"),
])
def test_a_deleted_word_takes_its_own_punctuation_only_when_it_is_a_sentence(text, word, expected):
    start = text.index(word)
    s, e = widen_deletion(text, start, start + len(word))
    assert apply_edits(text, [Edit(s, e, text[s:e], "", "d")]) == expected
