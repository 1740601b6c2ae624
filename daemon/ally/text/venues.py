"""Places the gazetteer does not list, found by their context (issue 18), for the explicit pass.

A capitalised name after a place preposition or verb ("back home in Kerala", "our flat in Hackney", "a spa
weekend in Sedona", "moved to Leith", "originally from Tralee") is a place even when GeoNames' city list lacks it
(districts, neighbourhoods, small towns, regions); so is a capitalised name between "the" and a local facility
("the Boise YMCA", "the Shoreditch market" → "the local YMCA"). "to" and "from" count only after a verb of moving
or origin ("a text from Sarah" is a person), and names that are months, days, holidays, languages, software or
common words (WordNet, lower case) are not places.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .people import PERSON_AFTER, PERSON_BEFORE

_NAME = r"(?:[A-Z][a-z]+(?:['’-][A-Za-z]+)?|Mc[A-Z][a-z]+|St\.?)(?:\s+(?:[A-Z][a-z]+(?:['’-][A-Za-z]+)?)){0,2}"
_ADJ = r"(?:(?:rural|downtown|central|north|south|east|west|northern|southern|eastern|western|sunny|beautiful|little" \
       r"|old|lovely|rainy|snowy|tiny|sleepy|gorgeous|freezing|hot|humid)\s+)?"
_BEFORE = re.compile(
    r"(?i:\b(?:in|near|around|outside|across|throughout|leaving|visiting|"
    r"(?:moved|moving|move|relocated|relocating|flew|flying|fly|drove|driving|drive|headed|heading|going|went|go|"
    r"trip|travel|traveling|travelling|back|road\s+trip|commute|commuting|bus|train|flight|ferry)\s+(?:back\s+)?to|"
    r"(?:moved|moving|originally|i'm|i’m|im|i\s+am|we're|we\s+are|come|came|coming|hail|hailing|drove|flew|back|"
    r"commute|commuting|down|up|over|here|fresh|family\s+is|folks\s+are|straight)\s+(?:all\s+the\s+way\s+)?"
    r"(?:up\s+|down\s+|over\s+|back\s+|out\s+)?from)\s+" + _ADJ + r")$")
_FACILITY = re.compile(r"\b([Tt]he)\s+(" + _NAME + r")\s+(YMCA|YWCA|library|public\s+library|farmers\s+market|market"
                       r"|airport|hospital|mall|train\s+station|station|zoo|stadium|community\s+center|community"
                       r"\s+centre|rec\s+center|leisure\s+centre|high\s+school|county\s+fair|fair|marina|pier"
                       r"|boardwalk|aquarium|food\s+bank|farmers'\s+market)\b")
_NOT_PLACES = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday christmas easter thanksgiving halloween ramadan
hanukkah diwali eid passover lent advent english spanish french german italian chinese japanese korean arabic
hindi portuguese russian latin greek dutch polish math maths physics chemistry biology history geography excel
word photoshop powerpoint python java javascript minecraft fortnite roblox zoom teams slack discord reddit
twitter tiktok youtube instagram facebook spotify netflix google amazon apple microsoft uber lyft god jesus
christ heaven hell mom mum dad grandma grandpa nana papa mr mrs ms miss dr aunt uncle church mass
covid real dollar dollars i the a an my our this that finance marketing sales engineering accounting hr it
design nursing medicine law retail hospitality tech education science art music business management""".split())


def find(text: str, granularity: str, known: Callable[[str], bool],
         common: Callable[[str], bool]) -> Iterable[tuple[int, int, str, str]]:
    """(start, end, "home", new) for each place found by context. ``known(name)`` says the gazetteer already
    handles the name (left to it); ``common(word)`` says a lower-cased word is an English adjective, verb or
    adverb ("in Excel"): a capitalised common noun after "in" is usually a place ("in Hackney", "in Reading")."""
    if granularity == "coarse":
        return  # coarse keeps the country, which an unknown name does not give
    for m in re.finditer(_NAME, text):
        s, name = m.start(), m.group()
        if s == 0 or text[s - 1] in "#@/.'’" or not _BEFORE.search(text[:s]) or PERSON_BEFORE.search(text[:s]):
            continue
        if PERSON_AFTER.match(text, s + len(re.sub(r"['’]s$", "", name))):
            continue
        before = text[:s].rstrip()
        if not before or before[-1] in ".!?\n\"“:":
            continue  # a capital at the start of a sentence says nothing
        words = name.split()
        while words and (words[-1].lower() in _NOT_PLACES or common(words[-1].lower())) and len(words) > 1:
            words.pop()  # "in Hackney last" never happens, but "in Leith Walk" keeps both
        name = " ".join(words)
        first = re.sub(r"['’]s?$", "", words[0].lower())
        if first in _NOT_PLACES or (len(words) == 1 and common(first)) or known(name) or len(name) < 3:
            continue
        end = s + len(name)  # "Hackney's" → "[place]'s": a possessive stays outside the span
        if name.endswith(("'s", "’s")):
            end -= 2
        yield s, end, "home", "[place]"
    for m in _FACILITY.finditer(text):
        if m.group(2).split()[0].lower() in _NOT_PLACES:
            continue
        yield m.start(), m.start(3), "home", match_the(m.group(1)) + " local "


def match_the(the: str) -> str:
    return "The" if the[:1].isupper() else "the"
