"""Ages stated as milestones, ordinals, clauses and school years (issue 18), for the explicit pass.

"the big 3-0" / "the big five-oh" → "a milestone birthday"; "my 35th" (no noun after it) → "my birthday";
"when we were both 20" → "when we were both young"; a sentence that opens with an age ("Fifty-two years old and
I…", "Mid-thirties and still…") gets a phrase that fits the same slot ("Grown up and I…"); "the ripe old age of
71" keeps its idiom ("a ripe old age"); school and university years ("Sophomore year", "my second year of uni",
"a freshman at") → "this school year" / "a student".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .tokens import match_case

_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_NUM_WORD = rf"(?:(?:{_TENS})(?:[- ](?:{_UNITS}))?|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen" \
            r"|eighteen|nineteen)"
_NUM = rf"(\d{{1,2}}|{_NUM_WORD})"
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
for _t, _w in enumerate(_TENS.split("|"), start=2):
    _WORDS[_w] = _t * 10
    for _u, _uw in enumerate(_UNITS.split("|"), start=1):
        _WORDS[f"{_w}-{_uw}"] = _WORDS[f"{_w} {_uw}"] = _t * 10 + _u


def number(s: str) -> int | None:
    s = s.lower().strip()
    return int(s) if s.isdigit() else _WORDS.get(s)


def stage(age: int) -> str:
    return "young" if age < 18 else "adult" if age < 65 else "older"


# "the big 3-0", "the big 4-0", "the big five-oh", "the big 50", "the big thirty"
_BIG = re.compile(rf"(?i)\b(?:the\s+)?big\s+(?:\d\s?-\s?(?:0|o|oh)|\d0|(?:{_UNITS})[- ]?(?:oh|o|0)|(?:{_TENS}))(?![\w-])")
_ORDINAL_WORDS = ("thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth"
                  "|fortieth|fiftieth|sixtieth|seventieth|eightieth|ninetieth")
# "my 35th" with no noun after it (a noun makes it something else: "our 30th anniversary")
_MY_ORDINAL = re.compile(
    rf"(?i)\b(my|his|her|their|our)\s+(\d{{2}}(?:st|nd|rd|th)|(?:{_TENS})-(?:first|second|third|fourth|fifth"
    rf"|sixth|seventh|eighth|ninth)|{_ORDINAL_WORDS})(?=\s*(?:[.!?,;:)]|$|\s+(?:with|and|at|on|in|was|is|went|"
    r"yesterday|today|tonight|last|this|next|but|so|party|celebration|bash|dinner|coming|came|had)\b))")
# "when I was 16", "when we were both 20", "I was 19 when", "back when we were 25"
_WAS = re.compile(rf"(?i)\b(I|we|he|she|they)\s+(was|were)\s+((?:both|all|only|just|barely|about|around)\s+)?"
                  rf"{_NUM}\b(?!\s*(?:%|percent|minutes?|mins?|hours?|days?|weeks?|months?|dollars|pounds|miles"
                  r"|km|feet|points|people|of\b|:|\.\d|-\d|/\d|am\b|pm\b))")
# a sentence opening with an age: "Fifty-two years old and I…", "Mid-thirties and still…", "43, and…"
_LEADING = re.compile(
    rf"(?:^|(?<=[.!?\n])\s*)((?i:(?:(?:early|mid|late)[- ]?(?:(?:{_TENS.replace('y', 'ies').replace('|', '|')}|teens)"
    rf"|\d0s))|\d{{2}}\s*-?\s*years?\s*-?\s*old|{_NUM_WORD}(?:\s*-?\s*years?\s*-?\s*old)?))"
    r"(?=\s*(?:,\s*)?(?:and|but|&)\s+(?!a\s+half\b))")
_DECADE = {"teens": 15, "twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65,
           "seventies": 75, "eighties": 85, "nineties": 95}
# "the ripe old age of 71" (an idiom: keep it, drop the number)
_RIPE = re.compile(rf"(?i)\b(the|a)\s+((?:ripe\s+)?old|tender|young|grand\s+old|advanced|mature)\s+age\s+of\s+{_NUM}\b")
# school and university years
_SCHOOL_YEAR = re.compile(
    r"(?i)\b(?:(my|our|his|her|their|the)\s+)?(freshman|sophomore|junior|senior|first|second|third|fourth|final"
    r"|last)\s+year(\s+(?:of|at|in)\s+(?:high\s+school|college|uni|university|school|my\s+degree|med\s+school"
    r"|law\s+school|grad\s+school|the\s+course|my\s+course))?\b")
_STUDENT = re.compile(r"(?i)\b(an?)\s+(freshman|sophomore|fresher|first-year|second-year|third-year|final-year)"
                      r"(?=\s*(?:[.!?,;]|$|\s+(?:in|at|here|student|studying|majoring|and|who|from)\b))")


def _age_of(token: str) -> int | None:
    t = token.lower()
    for word, age in _DECADE.items():
        if word in t:
            return age + (-3 if "early" in t else 3 if "late" in t else 0)
    m = re.search(r"(\d)0s", t)
    if m:
        return int(m.group(1)) * 10 + 5
    m = re.match(rf"{_NUM}", t)
    return number(m.group(1)) if m else None


def _sentence_start(text: str, i: int) -> bool:
    before = text[:i].rstrip()
    return not before or before[-1] in ".!?\n\"“(:"


def find(text: str, granularity: str) -> Iterable[tuple[int, int, str, str]]:
    """(start, end, category, new) for each milestone age or school year in ``text`` (stage and remove only)."""
    if granularity == "coarse":
        return
    remove = granularity == "remove"
    for m in _BIG.finditer(text):
        yield m.start(), m.end(), "age", "a milestone birthday"
    for m in _MY_ORDINAL.finditer(text):
        n = m.group(2).lower()
        if n[:2].isdigit() and int(n[:2]) < 13:
            continue
        yield m.start(2), m.end(2), "age", "birthday"
    for m in _WAS.finditer(text):
        age = number(m.group(4))
        if age is None or not 5 <= age <= 99:
            continue
        plural = m.group(2).lower() == "were"
        new = "[age]" if remove else {"young": "young", "adult": "adults" if plural else "an adult",
                                      "older": "older"}[stage(age)]
        yield m.start(4), m.end(4), "age", new
    for m in _LEADING.finditer(text):
        age = _age_of(m.group(1))
        if age is None or not 10 <= age <= 99:
            continue
        new = "[Age]" if remove else {"young": "Young", "adult": "Grown up", "older": "Older"}[stage(age)]
        yield m.start(1), m.end(1), "age", new if m.group(1)[:1].isupper() or m.group(1)[:1].isdigit() else new.lower()
    for m in _RIPE.finditer(text):
        new = f"{match_case(m.group(1), 'a')} {m.group(2)} age"
        yield m.start(), m.end(), "age", new
    for m in _SCHOOL_YEAR.finditer(text):
        which = m.group(2).lower()
        if which in ("first", "second", "third", "fourth", "final", "last") and not m.group(3):
            continue  # "my first year at the job", "last year": not a school year
        det = m.group(1)
        if m.group(3):
            new = ("this year" if not det or det.lower() != "the" else "the year") + m.group(3)
        else:
            new = (det + " school year") if det else "this school year"
        s = m.start()
        if _sentence_start(text, s):
            new = new[:1].upper() + new[1:]
        yield s, m.end(), "age", new
    for m in _STUDENT.finditer(text):
        yield m.start(), m.end(), "age", match_case(m.group(1), "a") + " student"
