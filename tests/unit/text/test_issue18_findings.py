"""One test per finding of issue 18 ("Text v3"): each quoted phrasing or rewrite failed on the landed main.

Facts left: places after verbs and nouns the gazetteer context missed, ages as milestones and ordinals, school
years, gendered possessives and relatives that imply age. Rewrites that broke English or the meaning: "ripe old
older", "Adult and I just ran", "GO my grandparent", girlfriends → partners, "maintains stealing", and fillers
deleted while the age stayed. The search-level ones run the real protector (real models in the cache).
"""

from __future__ import annotations

import pytest
from ally.levels import Level
from ally.text.explicit import ExplicitPass, fix_articles
from ally.text.facts import surviving
from ally.text.fixed_phrases import broken_phrases, fixed_spans
from ally.text.tokens import apply_edits, protected_spans


def rewrite(text: str, granularity: str = "stage") -> str:
    xp = ExplicitPass(granularity, dialect=granularity == "remove")
    edits = [f.edit() for f in xp.find(text, protected_spans(text))]
    return apply_edits(text, [*edits, *fix_articles(text, edits)])


# -- facts left --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", ["stage", "remove"])
@pytest.mark.parametrize("text,fact", [
    ("Back home in Kerala for the wedding season.", "Kerala"),  # a state the city list lacks
    ("Leaving Madrid was the hardest thing I've done.", "Madrid"),  # a city WordNet also lists (as a proper noun)
    ("Our flat in Hackney has no heating again.", "Hackney"),  # a district
    ("Booked a spa weekend in Sedona to recover.", "Sedona"),  # a small town
    ("Saw my old coach at the Boise YMCA today.", "Boise"),  # a name before a facility
])
def test_places_after_verbs_and_nouns_are_found(text, fact, granularity):
    assert surviving((fact,), rewrite(text, granularity)) == []


@pytest.mark.parametrize("granularity", ["stage", "remove"])
@pytest.mark.parametrize("text,fact", [
    ("Just hit the big 3-0 and my knees already hurt.", "3-0"),
    ("Spent my 35th at a karaoke bar.", "35th"),
    ("We got married when we were both 20.", "20"),
    ("Sophomore year has been a blur.", "Sophomore"),
])
def test_milestone_ordinal_clause_ages_and_school_years_are_found(text, fact, granularity):
    assert surviving((fact,), rewrite(text, granularity)) == []


@pytest.mark.parametrize("text,fact", [
    ("The women's changing room is being redone.", "women's"),
    ("My grandkids think I'm hilarious.", "grandkids"),
    ("My grandson beat me at chess.", "grandson"),  # "grandchild" still said the author's age
])
def test_gendered_possessives_and_age_revealing_relatives_are_found(text, fact):
    out = rewrite(text)
    assert surviving((fact,), out) == [] and "grandchild" not in out.lower(), out


# -- rewrites a person would sign ----------------------------------------------------------------------------

def test_ripe_old_age_keeps_its_idiom():
    out = rewrite("At the ripe old age of 71 I took up surfing.")
    assert "ripe old age" in out and "71" not in out and "older" not in out, out
    assert broken_phrases("At the ripe old age of 71 I took up surfing.", out) == []


@pytest.mark.parametrize("granularity", ["stage", "remove"])
def test_an_opening_age_is_replaced_by_a_phrase_for_the_same_slot(granularity):
    out = rewrite("Fifty-two years old and I just ran my first marathon.", granularity)
    assert not out.startswith("Adult"), out
    assert out.endswith(" and I just ran my first marathon.") and "Fifty" not in out, out


def test_shouted_text_keeps_its_form():
    out = rewrite('Made a sign that said "GO GRANDPA" for the race.')
    assert "my grandparent" not in out.lower() and "GO GRANDPARENT" in out, out


def test_girlfriends_plural_stay_friends_not_partners():
    out = rewrite("Me and my girlfriends are off to Lisbon.")
    assert "partners" not in out and "my friends" in out, out
    assert rewrite("My girlfriend is visiting.") == "My partner is visiting."  # one girlfriend is a partner


def test_catenative_verbs_and_idioms_are_locked_against_synonym_swaps():
    text = "She keeps stealing my hoodies, but it won't kill us to share."
    locked = {text[s.start:s.end] for s in fixed_spans(text)}
    assert "keeps stealing" in locked and "won't kill" in locked


@pytest.mark.parametrize("text", [
    "Got a text from Sarah about dinner in March.", "I work in Excel all day.", "Our 30th anniversary is next week.",
    "Last year I went shopping with Tom.", "My first and only dog was a rescue.",
])
def test_context_rules_leave_people_months_software_and_anniversaries_alone(text):
    assert rewrite(text) == text


# -- the whole protector (search included) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def protector(real_model, model_cache):
    from ally.text import resources as R
    from ally.text.models import load_text_models
    from ally.text.protector import TextProtector

    for mid in R.TEXT_MODELS:
        real_model(mid)
    return TextProtector(load_text_models(model_cache, pull=False))


@pytest.mark.real_models
def test_medium_keeps_the_voice_and_removes_the_age(protector):
    r = protector.protect("Just hit the big 3-0 and honestly my knees are not happy lol", Level.MEDIUM)
    assert "3-0" not in r.text and r.text.startswith("Just hit") and "honestly" in r.text, r.text


@pytest.mark.real_models
@pytest.mark.parametrize("level", [Level.MEDIUM, Level.HIGH])
def test_search_never_swaps_a_verb_out_of_its_pair(protector, level):
    for post in ("My little brother keeps stealing my hoodies and my mom keeps saying nothing",
                 "My husband keeps stealing my hoodies, so cute, it won't kill us to buy more lol"):
        r = protector.protect(post, level)
        assert "keeps stealing" in r.text and "maintains" not in r.text, r.text
        assert broken_phrases(post, r.text) == [], r.text


# -- found reading 50 rewrites of `ally eval text` (seed 0) --------------------------------------------------

@pytest.mark.parametrize("words_,i", [
    (["thats", "statistically", "unlikely", "isn't", "it"], 3),  # "is not it?"
    (["Why", "don't", "you", "clarify"], 1),  # "Why do not you"
    (["depression", "has", "it's", "benefits"], 2),  # "has it is benefits"
])
def test_contractions_that_cannot_be_written_out_stay(words_, i):
    from ally.text.tokens import Word
    from ally.text.transformations import ExpandContractions

    ws, pos = [], 0
    for j, w in enumerate(words_):
        ws.append(Word(j, w, pos, pos + len(w)))
        pos += len(w) + 1
    assert ExpandContractions().candidates(ws, i) == []


def test_prove_to_be_is_locked():
    text = "hopefully this will prove to be a source of fun"
    assert any(text[s.start:s.end] == "prove to be" for s in fixed_spans(text))


@pytest.mark.parametrize("text", ["Me and Devon had a huge fight just now.",
                                  "We might go to Austin's house to watch the fire.",
                                  "So today I went to the girls first tennis practice."])
def test_people_and_other_peoples_groups_are_not_places_or_my_friends(text):
    assert rewrite(text) == text


# -- found reading 50 more rewrites (seed 5), after the fixes above ------------------------------------------

def test_a_synonym_is_not_the_same_word_with_more_letters():
    from ally.text.tokens import words
    from ally.text.transformations import Synonyms

    table = {"wood": ["woods", "forest"], "specially": ["especially", "peculiarly"]}
    for text, i, bad in (("a yellow wood", 2, "woods"), ("the specially designed glasses", 1, "especially")):
        news = [c.new for c in Synonyms(table).candidates(words(text), i)]
        assert bad not in news, news


def test_pieces_of_compounds_are_locked():
    text = "Ayokong mag-suicide, masyadong common."
    assert any(text[s.start:s.end] == "mag-suicide" for s in fixed_spans(text))


def test_has_before_a_participle_is_not_written_as_is():
    from ally.text.transformations import expand_contraction

    assert expand_contraction("it's", "improved") is None


def test_yay_is_not_a_filler_at_medium():
    from ally.text.tokens import words
    from ally.text.transformations import DeleteFillers

    assert DeleteFillers(voice=False).candidates(words("Yay no more trips"), 0) == []
    assert DeleteFillers(voice=False).candidates(words("haha no more trips"), 0) != []


@pytest.mark.parametrize("text", ["on da fone wif kenny. he's like, so uncle.",
                                  "The antipathy I feel for George W. Bush is consuming me."])
def test_adjective_kin_words_and_first_names_with_an_initial_stay(text):
    assert rewrite(text) == text


# -- found reading 50 more rewrites (seed 9), after the fixes above ------------------------------------------

def test_shouted_words_get_no_synonym():
    from ally.text.tokens import words
    from ally.text.transformations import Compose, Register, Synonyms

    ws = words("it really ROCKS!")
    assert Compose([Synonyms({"rock": ["stone"]}), Register()]).candidates(ws, 2) == []


@pytest.mark.parametrize("text,piece", [('"If it\'s bad, it\'s experience." - a quote', "it's experience"),
                                        ("check it every 30 minutes 'cuz i can't believe it", "'cuz"),
                                        ("for free of cos", "of cos")])
def test_quotes_apostrophe_words_and_of_cos_are_locked(text, piece):
    spans = fixed_spans(text)
    start = text.index(piece)
    assert any(s.start <= start and start + len(piece) <= s.end for s in spans), piece


def test_a_surname_that_is_also_a_town_is_a_person():
    text = '"Never regret." - Victoria Holt. This is an interesting quote.'
    assert rewrite(text) == text


# -- found reading 50 more rewrites (seed 13), after the fixes above -----------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("I felt closer to my Godmother, my father's sister Aunt Rosemary, than to anyone.",
     "I felt closer to my Godmother, my parent's sibling Rosemary, than to anyone."),
    ("my fucken haircut sucks my moms booty crack.", "my fucken haircut sucks my parent's booty crack."),
    ("shut up ah. okay papa just called.", "shut up ah. okay my parent just called."),
    ("live from the valley of hte half slit wrist", "live from the valley of hte half slit wrist"),
])
def test_titles_possessives_subjects_and_common_words(text, expected):
    assert rewrite(text) == expected


def test_supposed_to_is_locked():
    text = "i went even though i am not suppose to"
    assert any(text[s.start:s.end] == "suppose to" for s in fixed_spans(text))


# -- found reading 50 more rewrites (seed 17), after the fixes above -----------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("So today Kim and I were walking our pet rabbit.", "So today Kim and I were walking our pet rabbit."),
    ("Well im Sutton here adding to my sitting.", "Well im Sutton here adding to my sitting."),
    ("babies who are going to be born in 2004.", "babies who are going to be born in 2004."),
    ("Daddy, what else did you leave for me?", "Parent, what else did you leave for me?"),
    ("Two years living in Bushwick and I still get lost.", "Two years living in [place] and I still get lost."),
])
def test_people_others_birth_years_and_vocatives(text, expected):
    assert rewrite(text) == expected


def test_amazing_is_not_made_great():
    from ally.text.tokens import words
    from ally.text.transformations import Register

    assert Register().candidates(words("It's amazing how the days drag"), 2) == []
