"""Stated-fact files and the check that a rewrite no longer states them (``tests/fixtures/text/``).

A file holds one post per line: ``[kind ||] post || fact; fact`` — each fact a literal piece of the post that
states the author's age, gender or location. A fact *survives* a rewrite when it still occurs in it as a whole
word (case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FactPost:
    kind: str
    text: str
    facts: tuple[str, ...]


def read_fact_file(path: Path) -> list[FactPost]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("||")]
        kind, text, facts = (parts if len(parts) == 3 else ["post", *parts])
        out.append(FactPost(kind, text, tuple(f.strip() for f in facts.split(";") if f.strip())))
    return out


def surviving(facts: tuple[str, ...], rewrite: str) -> list[str]:
    """The facts still stated in ``rewrite``."""
    return [f for f in facts if re.search(r"(?<![\w\[])" + re.escape(f) + r"(?![\w\]])", rewrite, re.IGNORECASE)]
