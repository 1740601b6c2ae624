"""The explicit pass on the public phrasing file (tests/fixtures/text/stated_facts.txt), one test per post and
level, and the cases it must leave alone: place names that are common words, numbers that are not ages."""

from __future__ import annotations

from pathlib import Path

import pytest
from ally.text.explicit import ExplicitPass, article_for, fix_articles
from ally.text.facts import read_fact_file, surviving
from ally.text.tokens import Edit, apply_edits, protected_spans

PHRASINGS = read_fact_file(Path(__file__).parents[2] / "fixtures" / "text" / "stated_facts.txt")


def rewrite(text: str, granularity: str = "stage", **kw) -> str:
    xp = ExplicitPass(granularity, **kw)
    edits = [f.edit() for f in xp.find(text, protected_spans(text, kw.pop("safe", ())))]
    return apply_edits(text, [*edits, *fix_articles(text, edits)])


def test_the_phrasing_file_has_many_phrasings_per_kind():
    kinds = {k: sum(p.kind == k for p in PHRASINGS) for k in {p.kind for p in PHRASINGS}}
    assert kinds.keys() >= {"place", "age", "gender", "school"}
    assert min(kinds.values()) >= 6 and len(PHRASINGS) >= 70


@pytest.mark.parametrize("granularity", ["stage", "remove"])
@pytest.mark.parametrize("post", PHRASINGS, ids=lambda p: f"{p.kind}:{p.text[:30]}")
def test_no_stated_fact_survives_medium_or_high(post, granularity):
    out = rewrite(post.text, granularity, dialect=granularity == "remove")
    assert surviving(post.facts, out) == [], out


@pytest.mark.parametrize("text,expected", [
    ("My mom from Manchester is visiting.", "My parent from [place] is visiting."),
    ("The commute from Croydon is killing me.", "The commute from [place] is killing me."),
    ("I retired at 65.", "I retired later in life."),
    ("He's 29 and still lives at home.", "He's an adult and still lives at home."),
    ("16 yo here, any advice?", "Young here, any advice?"),
    ("I'm turning 40 next week.", "I'm having a birthday next week."),
    ("72 and still running marathons.", "Older and still running marathons."),
    ("As a 34 year old mother of two, I'm tired.", "As an adult parent of two, I'm tired."),
    ("Night out with the lads!", "Night out with my friends!"),
    ("Hey ladies, any tips?", "Hey everyone, any tips?"),
    ("Mom and Dad are coming over.", "My parents are coming over."),
    ("Us girls need a weekend away.", "All of us need a weekend away."),
    ("In my early twenties I traveled a lot.", "As an adult I traveled a lot."),
    ("Me (24F) and my partner went hiking.", "Me and my partner went hiking."),
])
def test_rewrites_read_as_english(text, expected):
    assert rewrite(text) == expected


@pytest.mark.parametrize("text", [
    "I love reading in the bath.", "What a nice day.", "My mobile died.", "Orange is my favourite colour.",
    "We had a deal.", "I hope so.", "Jordan and Victoria came to dinner.", "I'm 100% sure.",
    "I'm 5 minutes late.", "It was 3 pm and I'm 2 hours away.", "I ran at 12 mph.", "They scored at 20:45.",
])
def test_common_words_and_numbers_that_are_not_facts_are_left_alone(text):
    assert rewrite(text, "remove", dialect=False) == text


@pytest.mark.parametrize("text,expected", [
    ("Spent a week in Leeds.", "Spent a week in the United Kingdom."),
    ("I'm 16.", "I'm a teenager."),
    ("He's 29.", "He's in his twenties."),
    ("I live in Japan.", "I live in Japan."),  # low keeps the country
])
def test_low_keeps_the_kind_of_fact(text, expected):
    assert rewrite(text, "coarse") == expected


@pytest.mark.parametrize("text,expected", [
    ("Y'all, my mate at uni loves the colour blue.", "You all, my friend at university loves the color blue."),
    ("Cheers, I reckon it's fine.", "Thanks, I think it's fine."),
    ("I met a woman and a man.", "I met a person and a person."),
])
def test_high_removes_region_cues_and_every_gendered_noun(text, expected):
    assert rewrite(text, "remove", dialect=True) == expected


def test_medium_keeps_region_cues_for_the_search():
    assert rewrite("Cheers mate, I reckon so") == "Cheers mate, I reckon so"


def test_safe_names_keep_the_place_and_say_so():
    xp = ExplicitPass("stage")
    text = "I live in Leeds with my wife."
    applied, left = xp.choose(xp.candidates(text), protected_spans(text, ["Leeds"]))
    assert [f.old for f in applied] == ["wife"] and [f.old for f in left] == ["Leeds"]


def test_tone_lol_and_bangs_toned_down():
    assert rewrite("It was great lol!!!") == "It was great!"
    assert rewrite("LOL that was fun!!") == "That was fun!" or rewrite("LOL that was fun!!") == "that was fun!"
    assert rewrite("omg really?!?!") == "omg really?"


@pytest.mark.parametrize("word,article", [
    ("adult", "an"), ("parent", "a"), ("hour", "an"), ("university", "a"), ("[age]", "an"), ("[place]", "a"),
    ("18", "an"), ("8", "an"), ("one", "a"), ("honest", "an"), ("European", "a"), ("uncle", "an"), ("MBA", "an"),
])
def test_article_for(word, article):
    assert article_for(word) == article


def test_articles_are_fixed_only_where_the_next_word_changed():
    text = "a adult here, an uncle"  # the author's own "a adult" stays; the edited "an uncle" is fixed
    i = text.index("uncle")
    edits = [Edit(i, i + 5, "uncle", "relative", "t")]
    assert apply_edits(text, [*edits, *fix_articles(text, edits)]) == "a adult here, a relative"
    text = "a really old car"
    edits = [Edit(2, 9, "really ", "", "d")]
    assert apply_edits(text, [*edits, *fix_articles(text, edits)]) == "an old car"


def test_durations_are_not_ages():
    assert rewrite("This happened about 10 years ago.") == "This happened about 10 years ago."
    assert rewrite("We have been married 12 years.") == "We have been married 12 years."


def test_an_age_without_old_after_im_a():
    """From the eval posts: "I'm a 27 year college grad"."""
    assert rewrite("I'm a 27 year college grad.") == "I'm an adult college grad."
