"""The labelled author corpus cut into post-sized excerpts, split by author (never by post).

Splits are by a hash of the author id, so they are the same on every machine: 40 % of the authors train the
surrogates (attacked), a disjoint 40 % train the held-out evaluator, 20 % are the test authors that
``ally eval text`` protects. No author's text is ever in two splits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .resources import Post

POST_CHARS = 280
MIN_CHARS = 60
SPLITS = ("surrogate", "evaluator", "test")


def author_split(user_id: str) -> str:
    h = int(hashlib.sha256(f"ally-text-split:{user_id}".encode()).hexdigest()[:8], 16) % 10
    return "surrogate" if h < 4 else "evaluator" if h < 8 else "test"


_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def clean(text: str) -> str:
    text = text.replace("urlLink", " ")  # the corpus's marker where a link was
    return _SPACE.sub(" ", text).strip()


def excerpts(text: str, max_chars: int = POST_CHARS, limit: int = 3) -> list[str]:
    """Up to ``limit`` consecutive post-sized pieces, cut at sentence ends where possible, else at a space."""
    text = clean(text)
    out = []
    while text and len(out) < limit:
        if len(text) <= max_chars:
            piece, text = text, ""
        else:
            window = text[:max_chars + 1]
            cuts = [m.start() for m in _SENTENCE_END.finditer(window)]
            cut = cuts[-1] if cuts and cuts[-1] >= max_chars // 2 else window.rfind(" ")
            cut = cut if cut > 0 else max_chars
            piece, text = text[:cut].strip(), text[cut:].strip()
        if len(piece) >= MIN_CHARS:
            out.append(piece)
    return out


@dataclass(frozen=True)
class Sample:
    text: str
    user_id: str
    labels: dict[str, str]  # attribute -> class


def samples(posts: Iterable[Post], split: str, *, posts_per_author: int, pieces_per_post: int) -> list[Sample]:
    """Excerpts of one split, at most ``posts_per_author`` posts of each author (prolific authors would
    otherwise dominate), in corpus order (deterministic)."""
    taken: dict[str, int] = {}
    out = []
    for p in posts:
        if author_split(p.user_id) != split or taken.get(p.user_id, 0) >= posts_per_author:
            continue
        pieces = excerpts(p.text, limit=pieces_per_post)
        if not pieces:
            continue
        taken[p.user_id] = taken.get(p.user_id, 0) + 1
        labels = {"age": p.age_bracket, "gender": p.gender}
        out += [Sample(t, p.user_id, labels) for t in pieces]
    return out


def majority(labels: Sequence[str]) -> tuple[str, float]:
    """The most frequent class and its share: the accuracy of always guessing it."""
    counts: dict[str, int] = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    best = max(sorted(counts), key=lambda k: counts[k])
    return best, counts[best] / max(1, len(labels))
