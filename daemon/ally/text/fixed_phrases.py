"""Fixed phrases a rewrite may not break (issue 18): idioms, and verbs whose sense depends on the word after them.

Two uses: :func:`fixed_spans` locks these words against the adversarial pass (a synonym swap inside "won't kill
us" or "keeps stealing" changes the meaning: "maintains stealing"); :func:`broken_phrases` lists the idioms of an
original that a rewrite no longer contains (the eval and the read-through count them).
"""

from __future__ import annotations

import re

from .tokens import Span

IDIOMS = (
    "ripe old age", "won't kill", "will not kill", "wouldn't kill", "kill time", "killing it", "killing me",
    "kills me", "killed it", "dying to", "to die for", "break a leg", "piece of cake", "under the weather",
    "over the moon", "hit the hay", "hit the sack", "call it a day", "call it a night", "on cloud nine",
    "spill the beans", "an arm and a leg", "once in a blue moon", "the last straw", "rocket science",
    "at the end of the day", "no big deal", "for what it's worth", "in the long run", "out of the blue",
    "hang in there", "bite the bullet", "blessing in disguise", "better late than never", "easier said than done",
    "get out of hand", "go the extra mile", "best of both worlds", "time flies", "make ends meet", "take it easy",
    "by the way", "sooner or later", "all of a sudden", "no way", "of course", "kind of", "sort of", "a lot",
    "at least", "as well", "so far", "right now", "for sure", "what the hell", "on fire", "freak out",
    "freaking out", "over it", "not a big deal", "big deal", "the big day", "up in the air", "in the nick of time",
    "let the cat out of the bag", "the elephant in the room", "a dime a dozen", "cut corners", "feel blue",
    "pull my leg", "pulling my leg", "see eye to eye", "on the fence", "the ball is in your court",
    "throw in the towel", "through thick and thin", "wrap my head around", "my two cents", "heads up",
    "good old", "old school", "old-school", "young at heart", "feel my age", "act your age", "age is just a number",
    "over the hill", "grown-up", "all grown up", "long story short", "to be honest", "at all", "after all",
    "in a while", "once in a while", "every now and then", "now and then", "first thing", "last minute",
    "make it", "made it", "take care", "fingers crossed", "wish me luck", "send help", "brb", "can't wait",
    "cannot wait", "look forward", "looking forward", "feel free", "never mind", "no wonder", "you know",
    "of cos", "of coz", "supposed to", "suppose to", "used to", "ought to", "prove to be", "proves to be", "proved to be", "proven to be", "turn out", "turned out", "turns out",
)
_IDIOM_RX = re.compile(r"(?i)(?<![\w'])(?:" + "|".join(re.escape(p).replace("'", "['’]") for p in
                                                    sorted(IDIOMS, key=len, reverse=True)) + r")(?![\w'])")
# Catenative and aspectual verbs: "keeps stealing", "stopped talking", "started crying", "went shopping".
_CATENATIVE = re.compile(r"(?i)\b(?:keep|keeps|kept|keeping|stop|stops|stopped|stopping|start|starts|started|starting"
                         r"|quit|quits|begin|begins|began|finish|finished|go|goes|went|going|avoid|avoided|mind"
                         r"|miss|missed|enjoy|enjoyed|love|loved|hate|hated|try|tried|get|got|gets)\s+\w+ing\b")
# Phrasal verbs: a verb and its particle ("gave up", "figure out"): swapping the verb alone breaks the pair.
_PHRASAL = re.compile(r"(?i)\b[a-z]+(?:ed|s|ing)?\s+(?:up|out|off|down|over|away|back|around|through)\b"
                      r"(?!\s+(?:the|a|an|my|your|his|her|our|their|this|that)\s+(?:street|road|hill|stairs|river"
                      r"|hall|corridor)\b)")


# Pieces of a hyphenated or slashed compound are not words of their own ("mag-suicide" → "magazine-suicide").
_COMPOUND = re.compile(r"\b[A-Za-z]+(?:[-/][A-Za-z]+)+\b")
# Quoted text keeps its form (a quote, a sign), and so does a word written with a leading apostrophe ('cuz, 'til).
_QUOTED = re.compile(r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”")
_APOSTROPHE_WORD = re.compile(r"(?<![\w'’])['’][A-Za-z]+")


def fixed_spans(text: str) -> list[Span]:
    """Spans whose words the adversarial pass must not touch."""
    spans = [Span(m.start(), m.end(), "fixed-phrase") for m in _IDIOM_RX.finditer(text)]
    spans += [Span(m.start(), m.end(), "compound") for m in _COMPOUND.finditer(text)]
    spans += [Span(m.start(), m.end(), "quoted") for m in _QUOTED.finditer(text)]
    spans += [Span(m.start(), m.end(), "apostrophe") for m in _APOSTROPHE_WORD.finditer(text)]
    spans += [Span(m.start(), m.end(), "fixed-phrase") for m in _CATENATIVE.finditer(text)]
    spans += [Span(m.start(), m.end(), "fixed-phrase") for m in _PHRASAL.finditer(text)]
    return spans


def idioms_in(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", m.group().lower().replace("’", "'")) for m in _IDIOM_RX.finditer(text)]


def broken_phrases(original: str, rewrite: str) -> list[str]:
    """Idioms of ``original`` that ``rewrite`` no longer contains whole."""
    have = idioms_in(rewrite)
    out = []
    for p in idioms_in(original):
        if p in have:
            have.remove(p)
        else:
            out.append(p)
    return out
