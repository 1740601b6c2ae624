"""``TextProtector``: one post in, the protected post and what changed out. Models load once and stay warm.

Order of work for a post: protected spans (links, hashtags, mentions, code, emoji, safe names) → explicit pass
(stated age, gender, home, school, workplace, private words) → adversarial pass (search against the attribute
surrogates under the level's constraints) → meaning check (sentence embedding similarity to the original;
adversarial edits are undone from the last one back until it holds).
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..levels import TEXT, Level, TextSettings
from .embed import WordVectors
from .explicit import ExplicitPass
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
class TextProtection:
    text: str
    original: str
    changes: list[TextChange]
    similarity: float  # all-MiniLM-L6-v2 cosine, original vs protected (1.0 when unchanged)
    changed_fraction: float  # share of the original's words that were changed or removed
    level: Level = Level.MEDIUM
    goal_reached: bool = True  # the surrogates no longer read the original's attributes
    seconds: float = 0.0
    readings: dict[str, tuple[str, str]] = field(default_factory=dict)  # attribute -> (before, after)


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
        xp = ExplicitPass(settings.explicit, partners=settings.partners, private_words=self.private_words)
        explicit = [f.edit() for f in xp.find(text, locked)]
        spans = [*locked, *(Span(e.start, e.end, "explicit") for e in explicit)]
        ws = words(text, spans)
        recipe = self.recipe(level, settings)
        recipe.budget.already = _changed_words(text, explicit)
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
        say("done", 1.0)
        return TextProtection(out, text, changes, similarity, _changed_words(text, edits) / n if n else 0.0, level,
                              reached, time.perf_counter() - t0, readings)


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
