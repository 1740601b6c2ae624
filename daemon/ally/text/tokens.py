"""Words with their character spans, and the spans that must never change.

Everything in the text pipeline works on :class:`Doc`: the original string plus its word tokens, each with
``start``/``end`` offsets, so that a substitution is an edit of one span and the rest of the text (spacing,
punctuation, line breaks, emoji) is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Spans that are never edited: links, e-mail addresses, @mentions, #hashtags, code, emoji.
_URL = r"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9.-]+\.(?:com|org|net|io|dev|co\.uk|edu|gov)(?:/[^\s<>\"']*)?"
_EMAIL = r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"
_MENTION = r"(?<![\w@])@\w{1,30}"
_HASHTAG = r"(?<![\w#])#\w+"
_CODE = r"```.*?```|`[^`\n]+`"
_EMOJI = (
    "[\U0001F000-\U0001FAFF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF\uFE0F\u200D]+"
    r"|(?<!\w)[:;=8][-']?[)(\]\[dDpP/\\|oO*]+(?!\w)"  # text emoticons :) ;-P
)
PROTECTED_PATTERNS: dict[str, re.Pattern[str]] = {
    "code": re.compile(_CODE, re.DOTALL),
    "url": re.compile(_URL, re.IGNORECASE),
    "email": re.compile(_EMAIL),
    "mention": re.compile(_MENTION),
    "hashtag": re.compile(_HASHTAG),
    "emoji": re.compile(_EMOJI),
}
WORD = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Za-z]+(?:['’][A-Za-z]+)*|\d+(?:[.,:]\d+)*(?:st|nd|rd|th|s)?")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str  # url, email, mention, hashtag, code, emoji, safe-name, explicit, ...

    def overlaps(self, start: int, end: int) -> bool:
        return start < self.end and self.start < end


@dataclass(frozen=True)
class Word:
    """One word of the text; ``locked`` words are inside a protected span."""

    index: int
    text: str
    start: int
    end: int
    locked: bool = False
    after: str = ""  # a run of "!"/"?" right after the word ("" when none)

    @property
    def lower(self) -> str:
        return self.text.lower()


def protected_spans(text: str, safe_names: Iterable[str] = ()) -> list[Span]:
    """Spans that no pass may change: the patterns above plus every occurrence of the user's safe names."""
    spans = [Span(m.start(), m.end(), kind) for kind, rx in PROTECTED_PATTERNS.items() for m in rx.finditer(text)]
    for name in safe_names:
        name = name.strip()
        if name:
            rx = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
            spans += [Span(m.start(), m.end(), "safe-name") for m in rx.finditer(text)]
    return sorted(spans, key=lambda s: (s.start, s.end))


def words(text: str, locked: Sequence[Span] = ()) -> list[Word]:
    out = []
    for m in WORD.finditer(text):
        is_locked = any(s.overlaps(m.start(), m.end()) for s in locked)
        bang = _BANGS.match(text, m.end())
        after = bang.group() if bang and not any(s.overlaps(bang.start(), bang.end()) for s in locked) else ""
        out.append(Word(len(out), m.group(), m.start(), m.end(), is_locked, after))
    return out


_BANGS = re.compile(r"[!?]*![!?]*")


def word_count(text: str) -> int:
    return sum(1 for _ in WORD.finditer(text))


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` (``old``) by ``new``."""

    start: int
    end: int
    old: str
    new: str
    reason: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits (any order) to ``text``; the rest of the text is kept as it was."""
    out, pos, last = [], 0, None
    for e in sorted(edits, key=lambda e: (e.start, -e.end)):
        if last is not None and last.new == "" and e.end <= last.end and e.start >= last.start:
            continue  # inside a deletion that already took it ("OMGOSH!!!! " deleted with its "!!!!")
        last = e
        start = e.start
        if start < pos and not text[start:pos].strip() and e.end >= pos:
            start = pos  # two deletions that each took the same space between them
        if start < pos:
            raise ValueError(f"overlapping edits at {e.start}")
        out += [text[pos:start], e.new]
        pos = max(pos, e.end)
    out.append(text[pos:])
    return "".join(out)


def widen_deletion(text: str, start: int, end: int) -> tuple[int, int]:
    """The span to delete so that removing ``text[start:end]`` leaves no doubled or stray space, and no stray
    punctuation: a word that is a sentence of its own ("grandpa. LOL! It was") goes with its "!" or "?"."""
    if not text[:start].rstrip() or text[:start].rstrip()[-1] in ".!?":
        while end < len(text) and text[end] in ".!?":
            end += 1
    if end < len(text) and text[end] == " ":
        return start, end + 1
    if start > 0 and text[start - 1] == " ":
        return start - 1, end
    return start, end


def match_case(template: str, word: str) -> str:
    """``word`` with the capitalisation of ``template`` (Title, UPPER or lower)."""
    if not word:
        return word
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
