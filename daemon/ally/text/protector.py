"""``TextProtector``: one post in, the protected post and what changed out. Models load once and stay warm.

Order of work for a post: protected spans (links, hashtags, mentions, code, emoji, safe names) → explicit pass
(stated age, gender, home, school, workplace, private words) → adversarial pass (search against the attribute
surrogates under the level's constraints) → meaning check (sentence embedding similarity to the original;
adversarial edits are undone from the last one back until it holds).
"""

from __future__ import annotations

import re
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..levels import TEXT, Level, TextSettings
from .embed import WordVectors
from .explicit import FACT_CATEGORIES, ExplicitPass, Finding, fix_articles
from .fixed_phrases import fixed_spans
from .models import TextModels, load_text_models
from .recipes import conceal_recipe
from .tokens import Edit, Span, apply_edits, protected_spans, words

Progress = Callable[[str, float], None]
TEXT_CONFIG = "text.toml"


@dataclass(frozen=True)
class TextChange:
    span: tuple[int, int]  # in the original text
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class LeftFact:
    """A stated fact that is still in the protected text, and why."""

    category: str
    text: str
    reason: str


@dataclass(frozen=True)
class Reading:
    """What a held-out reader (a model the rewrite was not searched against) infers from the protected text."""

    attribute: str
    model: str
    before: str
    before_confidence: float
    after: str
    after_confidence: float
    baseline: float  # the share of the majority class, or 1/classes: the confidence a reader has knowing nothing

    @property
    def still_reads(self) -> bool:
        """The reader still gives the original reading, more confidently than a guess."""
        return self.after == self.before and self.after_confidence >= max(0.6, self.baseline + 0.1)


# How sure a held-out reader must be before the report says the attribute "still shows".
_LEFT_REASONS = {
    "safe": "kept: inside a name you marked safe, a link, a hashtag or a mention",
    "level": "kept at this level (low keeps countries, family words and dialect; medium keeps dialect and "
             "gendered words that are not about you; high changes them)",
    "missed": "not recognised in this phrasing by the rewrite (found only by the final check)",
}


@dataclass(frozen=True)
class TextProtection:
    text: str
    original: str
    changes: list[TextChange]
    similarity: float  # all-MiniLM-L6-v2 cosine, original vs protected (1.0 when unchanged)
    changed_fraction: float  # share of the original's words that were changed or removed
    level: Level = Level.MEDIUM
    goal_reached: bool = True  # the surrogates no longer read the original's attributes
    seconds: float = 0.0
    readings: dict[str, tuple[str, str]] = field(default_factory=dict)  # surrogates: attribute -> (before, after)
    left: list[LeftFact] = field(default_factory=list)  # stated facts still in the text
    reader: list[Reading] = field(default_factory=list)  # held-out readers' inferences on the result

    def report(self) -> dict:
        """The honest report sent with every result (CLI, daemon, extension)."""
        shows = [r for r in self.reader if r.still_reads]
        notes = []
        if not self.goal_reached:
            notes.append(f"Goal not reached at {self.level.value}: the attribute classifiers can still read this "
                         "post's style within the allowed changes.")
        for r in shows:
            notes.append(f"A held-out reader still infers {r.attribute} = {r.after} "
                         f"({100 * r.after_confidence:.0f}% confident; a guess would be {100 * r.baseline:.0f}%).")
        for f in self.left:
            notes.append(f"Left in the text: {f.category} \u201c{f.text}\u201d \u2014 {f.reason}.")
        if not notes:
            notes.append("No stated age, gender or place is left, and no held-out reader infers an attribute "
                         "beyond a guess.")
        return {
            "goal_reached": self.goal_reached,
            "left": [{"category": f.category, "text": f.text, "reason": f.reason} for f in self.left],
            "reader": [{"attribute": r.attribute, "model": r.model, "before": r.before,
                        "before_confidence": round(r.before_confidence, 3), "after": r.after,
                        "after_confidence": round(r.after_confidence, 3), "baseline": round(r.baseline, 3),
                        "still_shows": r.still_reads} for r in self.reader],
            "notes": notes,
        }


def cosine_one(embedder, a: str, b: str) -> float:
    e = embedder.encode([a, b])
    return float(e[0] @ e[1])


def _changed_words(text: str, edits: Sequence[Edit]) -> int:
    ws = words(text)
    return sum(1 for w in ws if any(e.start < w.end and w.start < e.end for e in edits))


class TextProtector:
    def __init__(self, models: TextModels, *, private_words: Sequence[str] = (), safe_names: Sequence[str] = (),
                 use_embedder: bool = True):
        self.models = models
        self.private_words = tuple(private_words)
        self.safe_names = tuple(safe_names)
        self.embedder = models.embedder if use_embedder else None
        self.word_vectors = WordVectors(self.embedder) if hasattr(self.embedder, "w") else None
        self._recipes: dict[Level, object] = {}

    def recipe(self, level: Level, settings: TextSettings):
        if level not in self._recipes:
            self._recipes[level] = conceal_recipe(
                settings, self.models.surrogates, synonyms=self.models.synonyms, breame=self.models.breame,
                embedder=self.embedder, word_vectors=self.word_vectors)
        return self._recipes[level]

    def protect(self, text: str, level: Level, progress: Progress | None = None, *,
                settings: TextSettings | None = None) -> TextProtection:
        t0 = time.perf_counter()
        say = progress or (lambda stage, fraction: None)
        if level is Level.OFF or not text.strip():
            return TextProtection(text, text, [], 1.0, 0.0, level, True, time.perf_counter() - t0)
        settings = settings or TEXT[level]
        say("explicit", 0.0)
        locked = protected_spans(text, self.safe_names)
        xp = ExplicitPass(settings.explicit, partners=settings.partners, private_words=self.private_words,
                          dialect=settings.dialect)
        applied, kept_safe = xp.choose(xp.candidates(text), locked)
        explicit = [f.edit() for f in applied]
        # idioms and verb + particle/-ing pairs are locked against the search (the explicit pass may still
        # generalise a fact inside one, with its own slot-fitting phrase)
        spans = [*locked, *(Span(e.start, e.end, "explicit") for e in explicit), *fixed_spans(text)]
        ws = words(text, spans)
        recipe = self.recipe(level, settings)
        # tone edits ("lol", "!!!") carry no content: they do not use the changed-word budget
        recipe.budget.already = _changed_words(text, [f.edit() for f in applied if f.category != "tone"])
        say("search", 0.1)
        result = recipe.search.run(text, ws, recipe.goal, recipe.transformation, recipe.pre, recipe.checks,
                                   base_edits=explicit, progress=lambda f: say("search", 0.1 + 0.6 * f))
        subs = list(result.substitutions)
        similarity = 1.0
        if recipe.meaning is not None and subs:
            # The meaning constraint holds the adversarial edits to the explicit pass's output (the stated facts
            # are generalised whatever it costs); undo them from the last one back until it holds.
            say("meaning", 0.75)
            reference = apply_edits(text, explicit)
            final = apply_edits(text, [*explicit, *(s.edit for s in subs)])
            if float(recipe.meaning.similarities(reference, [final])[0]) < recipe.meaning.minimum:
                prefixes = [apply_edits(text, [*explicit, *(s.edit for s in subs[:k])]) for k in range(1, len(subs))]
                sims = recipe.meaning.similarities(reference, prefixes) if prefixes else []
                ok = [k + 1 for k in range(len(prefixes)) if sims[k] >= recipe.meaning.minimum]
                subs = subs[:max(ok)] if ok else []
        edits = [*explicit, *(s.edit for s in subs)]
        edits += fix_articles(text, edits)
        out = apply_edits(text, edits)
        if self.embedder is not None and out != text:
            similarity = float(cosine_one(self.embedder, text, out))
        readings = {}
        for attr, ens in self.models.surrogates.items():
            p = ens.predict_proba([text, out])
            readings[attr] = (ens.classes[int(p[0].argmax())], ens.classes[int(p[1].argmax())])
        reached = float(recipe.goal.losses([out], recipe.goal.start(apply_edits(text, explicit)))[0]) <= 1e-9
        n = len(ws)
        changes = [TextChange((e.start, e.end), e.old, e.new, e.reason) for e in sorted(edits, key=lambda e: e.start)]
        left = left_facts(out, kept_safe, level, self.private_words)
        reader = self.held_out_reading(text, out)
        say("done", 1.0)
        return TextProtection(out, text, changes, similarity, _changed_words(text, edits) / n if n else 0.0, level,
                              reached, time.perf_counter() - t0, readings, left, reader)

    def held_out_reading(self, original: str, out: str) -> list[Reading]:
        """The evaluators' reading (char-n-gram models fitted on other authors, abclf for region): models the
        search never saw, so what they read is what an outside classifier would likely read."""
        readings = []
        for attr, models in self.models.evaluators.items():
            m = models[0]
            p = m.predict_proba([original, out])
            b, a = int(p[0].argmax()), int(p[1].argmax())
            baseline = float(getattr(self.models, "baselines", {}).get(attr, 1.0 / len(m.classes)))
            if attr == "region" and m.classes[a] == "unmarked":
                continue
            readings.append(Reading(attr, m.name, m.classes[b], float(p[0, b]), m.classes[a], float(p[1, a]),
                                    baseline))
        return readings


def left_facts(out: str, kept_safe: Sequence[Finding], level: Level, private_words: Sequence[str] = ()) -> list[LeftFact]:
    """Stated facts still in ``out``: those a protected span kept (``--safe``, links, hashtags), and whatever
    the strictest pass still finds in the result (kept by a gentler level, or missed)."""
    left = [LeftFact(f.category, f.old, _LEFT_REASONS["safe"]) for f in kept_safe]
    settings = TEXT.get(level)
    if settings is None:
        return left
    protected = [*protected_spans(out), *(Span(m.start(), m.end(), "placeholder")
                                          for m in re.finditer(r"\[[a-z ,]+\]", out))]
    own = ExplicitPass(settings.explicit, partners=settings.partners, private_words=private_words,
                       dialect=settings.dialect, tone=False).find(out, protected)
    strict = ExplicitPass("remove" if level is Level.HIGH else "stage", partners=True, private_words=private_words,
                          dialect=True, tone=False)
    for f in strict.find(out, protected):
        if f.category not in FACT_CATEGORIES or any(f.old.lower() == k.old.lower() for k in kept_safe):
            continue
        missed = level is not Level.LOW and any(o.start < f.end and f.start < o.end for o in own)
        left.append(LeftFact(f.category, f.old, _LEFT_REASONS["missed" if missed else "level"]))
    return left


def read_text_config(path: Path | None = None) -> dict[str, list[str]]:
    """``text.toml`` beside config.toml: ``private_words = [...]`` and ``safe_names = [...]`` (both optional)."""
    from ..config import config_dir

    path = path or config_dir() / TEXT_CONFIG
    if not path.is_file():
        return {"private_words": [], "safe_names": []}
    data = tomllib.loads(path.read_text())
    out = {}
    for key in ("private_words", "safe_names"):
        value = data.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{path}: {key} must be a list of strings")
        out[key] = value
    unknown = set(data) - {"private_words", "safe_names"}
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return out


def load_text_protector(config: object, cache: object, *, log: Callable[[str], None] | None = None,
                        private_words: Sequence[str] = (), safe_names: Sequence[str] = ()) -> TextProtector:
    """Load (and on first use, train) every text model once; the daemon keeps the returned object warm."""
    models = load_text_models(cache, log=log)  # type: ignore[arg-type]
    user = read_text_config()
    protector = TextProtector(models, private_words=[*user["private_words"], *private_words],
                              safe_names=[*user["safe_names"], *safe_names])
    protector.embedder.encode(["warm up"])  # first call allocates; do it before the first post
    return protector


class WarmTextProtector:
    """The daemon's text engine: :class:`TextProtector` loaded once by ``warm_up`` (in the daemon's loader
    thread), then kept warm. The text models are small linear models and MiniLM: they run on the CPU."""

    device = "cpu"

    def __init__(self, config: object, cache: object | None = None):
        self._config, self._cache = config, cache
        self._protector: TextProtector | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._protector is None:
                from ally_models.cache import default_cache

                self._protector = load_text_protector(self._config, self._cache or default_cache())

    def protect(self, text: str, level: Level, progress: Progress | None = None) -> TextProtection:
        self.warm_up()
        assert self._protector is not None
        return self._protector.protect(text, level, progress)


def create_protector(config: object) -> WarmTextProtector:
    """The daemon's entry point (``ally.server.engines.TEXT_PROTECTOR_FACTORY``)."""
    return WarmTextProtector(config)
