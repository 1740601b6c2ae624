"""Ally's adversarial text pass next to TextAttack's recipes: same posts, same classifier, same measures.

Not part of the pytest suite. TextAttack has heavy, conflicting requirements (flair, transformers, datasets), so
it lives in its own virtual environment; this script runs in that environment and imports Ally from the
repository (``daemon/``) and from the project venv's site-packages, appended *after* TextAttack's own::

    python3 -m venv /tmp/ta-venv
    /tmp/ta-venv/bin/pip install torch==2.13.0   # CPU wheel (or let it come from the project venv, appended below)
    /tmp/ta-venv/bin/pip install textattack      # 0.3.10
    nice -n 10 /tmp/ta-venv/bin/python tests/bench/text_vs_textattack.py -n 30 --attribute gender

(pip's resolver backtracks for a long time over transformers versions for ``flair``, which nothing here uses;
the figures in the README were taken with textattack 0.3.10 and all its requirements but flair installed.)

What is compared, on ``-n`` posts of the held-out *test* authors (``ally eval text``'s posts, seed 0):

* the victim: one of Ally's surrogates (default ``word-lr-gender``: TF-IDF word 1-2-grams → logistic
  regression), loaded through the model cache and wrapped as a TextAttack ``ModelWrapper``;
* the goal for both: untargeted — the class the victim reads from the original must lose (TextAttack's
  ``UntargetedClassification`` with the victim's own reading as the label; Ally's goal with margin 0 and this
  one model as the only surrogate);
* Ally: the medium level's adversarial pass (explicit pass off, so both sides only substitute words; cap 15 %
  of words, MiniLM similarity ≥ the medium floor), through ``TextProtector``;
* TextAttack: ``pwws`` (PWWSRen2019, WordNet swaps, weighted-saliency greedy search, no budget), ``wordnet-15``
  (an offline recipe of TextAttack components: WordSwapWordNet + RepeatModification + StopwordModification +
  MaxWordsPerturbed(15 %) + GreedyWordSwapWIR("delete")), ``wordnet-15-minilm`` (the same plus Ally's meaning
  constraint, MiniLM cosine ≥ the medium floor, as a TextAttack ``SentenceEncoder``), and ``textfooler`` (TextFoolerJin2019) which needs
  counter-fitted word embeddings and the Universal Sentence Encoder from hubs: where those cannot be
  downloaded it is reported as not run, with the error.

Measured for each: seconds per example (wall, one process, same machine), attack success rate (the victim's
reading changed), words changed (share of the original's words), all-MiniLM-L6-v2 cosine to the original
(Ally's encoder, for all methods), and the held-out char-n-gram evaluator's accuracy before/after.

NLTK data cannot be downloaded here: the script builds an ``nltk_data`` folder (``--nltk-data``) from the
WordNet 3.0 files in Ally's model cache (``wordnet30``) and writes NLTK's English stop-word list, then points
``NLTK_DATA`` at it and turns ``nltk.download`` into a no-op.

Writes ``artifacts/bench/text_vs_textattack.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NLTK_ENGLISH_STOPWORDS = ["i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "you're", "you've", "you'll", "you'd", "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "she's", "her", "hers", "herself", "it", "it's", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom", "this", "that", "that'll", "these", "those", "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into", "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don", "don't", "should", "should've", "now", "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't", "couldn", "couldn't", "didn", "didn't", "doesn", "doesn't", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "isn", "isn't", "ma", "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "shan", "shan't", "shouldn", "shouldn't", "wasn", "wasn't", "weren", "weren't", "won", "won't", "wouldn", "wouldn't"]

# WordNet 3.0's lexicographer files (lexnames), fixed by the WordNet distribution.
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]


def build_nltk_data(root: Path, wordnet: Path) -> None:
    """``root/corpora/{wordnet,stopwords}`` from the cached WordNet 3.0 database files."""
    wn = root / "corpora" / "wordnet"
    wn.mkdir(parents=True, exist_ok=True)
    for pos in ("adj", "adv", "noun", "verb"):
        parts = sorted(wordnet.glob(f"data.{pos}*"))
        target = wn / f"data.{pos}"
        # data.noun ships split in two (data.noun1, data.noun2, the line break at the cut dropped): synset
        # offsets are byte offsets into one file, so join them with that line break back
        chunks = [p.read_bytes() for p in parts]
        target.write_bytes(b"".join(c if c.endswith(b"\n") or k == len(chunks) - 1 else c + b"\n"
                                    for k, c in enumerate(chunks)))
        if not (wn / f"index.{pos}").exists():
            (wn / f"index.{pos}").write_bytes((wordnet / f"index.{pos}").read_bytes())
        (wn / f"{pos}.exc").touch()  # morphological exceptions are not in the cache: regular rules only
    (wn / "lexnames").write_text("".join(f"{i:02d}\t{n}\t{ {'adj': 3, 'adv': 4, 'noun': 1, 'verb': 2}[n.split('.')[0]]}\n"
                                         for i, n in enumerate(LEXNAMES)))
    sw = root / "corpora" / "stopwords"
    sw.mkdir(parents=True, exist_ok=True)
    (sw / "english").write_text("\n".join(NLTK_ENGLISH_STOPWORDS) + "\n")


def setup_paths(nltk_data: Path) -> None:
    sys.path.append(str(REPO / "daemon"))
    sys.path.append(str(REPO / "models"))
    venv = REPO / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if venv.is_dir() and str(venv) not in sys.path:
        sys.path.append(str(venv))  # after TextAttack's venv: its own versions win
    os.environ["NLTK_DATA"] = str(nltk_data)
    import nltk

    nltk.data.path.insert(0, str(nltk_data))
    nltk.download = lambda *a, **k: True  # no network: everything needed is in nltk_data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # NLTK maps the loaded WordNet onto 3.0 (for OMW) through index.sense files; this *is* 3.0: no mapping.
    WordNetCorpusReader.map_wn = lambda self, version="wordnet": None


def ally_attack(models, victim, texts: list[str], level_name: str = "medium") -> list[dict]:
    from ally.levels import TEXT, Level
    from ally.text import protector as P
    from ally.text.classifiers import AttributeEnsemble

    P.ExplicitPass.find = lambda self, text, locked: []  # word substitutions only, like TextAttack
    level = Level.parse(level_name)
    settings = replace(TEXT[level], margin=0.0)
    single = replace(models, surrogates={victim.attribute: AttributeEnsemble(victim.attribute, [victim])})
    prot = P.TextProtector(single)
    out = []
    for t in texts:
        t0 = time.perf_counter()
        r = prot.protect(t, level, settings=settings)
        dt = time.perf_counter() - t0
        before, after = r.readings[victim.attribute]
        out.append({"text": r.text, "seconds": dt, "success": before != after, "changed": r.changed_fraction})
    return out


def textattack_recipes(wrapper, embedder, minilm_floor: float) -> dict:
    import torch
    from textattack import Attack
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    class MiniLMSimilarity(SentenceEncoder):
        """Ally's meaning constraint as a TextAttack constraint: all-MiniLM-L6-v2 cosine to the original."""

        def __init__(self, emb, threshold):
            super().__init__(threshold=threshold, metric="cosine", compare_against_original=True)
            self.emb = emb

        def encode(self, sentences):
            return torch.from_numpy(self.emb.encode(list(sentences)))

    from textattack.attack_recipes import PWWSRen2019, TextFoolerJin2019
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import (
        RepeatModification,
        StopwordModification,
    )
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapWordNet

    def wordnet15(minilm: float | None = None):
        constraints = [RepeatModification(), StopwordModification(), MaxWordsPerturbed(max_percent=0.15)]
        if minilm is not None:
            constraints.append(MiniLMSimilarity(embedder, minilm))
        return Attack(UntargetedClassification(wrapper), constraints, WordSwapWordNet(),
                      GreedyWordSwapWIR(wir_method="delete"))

    return {"pwws": lambda: PWWSRen2019.build(wrapper), "wordnet-15": wordnet15,
            "wordnet-15-minilm": lambda: wordnet15(minilm_floor),
            "textfooler": lambda: TextFoolerJin2019.build(wrapper)}


def run_textattack(attack, texts: list[str], labels: list[int], timeout_each: float) -> list[dict]:
    from textattack.attack_results import SkippedAttackResult, SuccessfulAttackResult

    out = []
    for t, y in zip(texts, labels):
        t0 = time.perf_counter()
        res = attack.attack(t, y)
        dt = time.perf_counter() - t0
        orig = res.original_result.attacked_text
        pert = res.perturbed_result.attacked_text
        n = max(1, len(orig.words))
        changed = len(orig.all_words_diff(pert)) / n if not isinstance(res, SkippedAttackResult) else 0.0
        out.append({"text": pert.text, "seconds": dt, "success": isinstance(res, SuccessfulAttackResult),
                    "changed": changed})
        if dt > timeout_each:
            out[-1]["note"] = "slow"
    return out


def summarise(name: str, rows: list[dict], originals: list[str], embedder, evaluator, truth: list[str]) -> dict:
    import numpy as np

    sims = []
    for o, r in zip(originals, rows):
        e = embedder.encode([o, r["text"]])
        sims.append(float(e[0] @ e[1]) if r["text"] != o else 1.0)
    ok = [i for i, r in enumerate(rows) if r["success"]]
    pred = [evaluator.classes[i] for i in np.argmax(evaluator.predict_proba([r["text"] for r in rows]), axis=1)]
    return {
        "method": name, "n": len(rows),
        "seconds_per_example": statistics.fmean(r["seconds"] for r in rows),
        "seconds_median": statistics.median(r["seconds"] for r in rows),
        "success_rate": len(ok) / len(rows),
        "words_changed_mean": statistics.fmean(r["changed"] for r in rows),
        "words_changed_mean_successes": statistics.fmean(rows[i]["changed"] for i in ok) if ok else None,
        "similarity_mean": statistics.fmean(sims),
        "similarity_mean_successes": statistics.fmean(sims[i] for i in ok) if ok else None,
        "similarity_min": min(sims),
        "heldout_accuracy_after": sum(p == t for p, t in zip(pred, truth)) / len(truth),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--attribute", choices=["gender", "age"], default="gender")
    ap.add_argument("--methods", default="ally,pwws,wordnet-15,wordnet-15-minilm,textfooler")
    ap.add_argument("--nltk-data", type=Path, default=Path("/tmp/ally-nltk-data"))
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "bench")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (MiniLM)")
    args = ap.parse_args(argv)

    setup_paths(args.nltk_data)
    import numpy as np
    import torch
    from ally_models.cache import default_cache

    torch.set_num_threads(args.threads)
    cache = default_cache()
    from ally.text.resources import WORDNET_MODEL

    build_nltk_data(args.nltk_data, cache.files(WORDNET_MODEL, pull=True)["data.adj"].parent)

    from ally.text.eval import eval_posts
    from ally.text.models import load_text_models

    models = load_text_models(cache)
    victim = next(m for m in models.surrogates[args.attribute].models if m.name.startswith("word-lr"))
    evaluator = models.evaluators[args.attribute][0]  # char-lr, held out
    items = eval_posts(cache, args.n)
    texts = [s.text for s in items]
    truth = [s.labels[args.attribute] for s in items]
    labels = [int(i) for i in np.argmax(victim.predict_proba(texts), axis=1)]  # the victim's own reading
    embedder = models.embedder
    embedder.encode(["warm up"])

    results, errors = [], {}
    before_acc = sum(p == t for p, t in zip([evaluator.classes[i] for i in
                                            np.argmax(evaluator.predict_proba(texts), axis=1)], truth)) / len(truth)
    for method in args.methods.split(","):
        print(f"running {method} on {len(texts)} posts", file=sys.stderr)
        try:
            if method == "ally":
                rows = ally_attack(models, victim, texts)
            else:
                from textattack.models.wrappers import ModelWrapper

                class AllyModelWrapper(ModelWrapper):
                    def __init__(self, model):
                        self.model = model

                    def __call__(self, text_input_list):
                        return self.model.predict_proba(list(text_input_list))

                from ally.levels import TEXT, Level

                recipes = textattack_recipes(AllyModelWrapper(victim), embedder, TEXT[Level.MEDIUM].min_similarity)
                attack = recipes[method]()
                rows = run_textattack(attack, texts, labels, timeout_each=60.0)
        except Exception as e:  # noqa: BLE001 — a recipe that cannot run offline is reported, not fatal
            errors[method] = f"{type(e).__name__}: {e}"[:500]
            print(f"  {method} could not run: {errors[method]}", file=sys.stderr)
            traceback.print_exc(limit=3)
            continue
        results.append(summarise(method, rows, texts, embedder, evaluator, truth))
        results[-1]["examples"] = [{"original": o, "rewritten": r["text"]} for o, r in zip(texts, rows)][:3]
        print(json.dumps({k: v for k, v in results[-1].items() if k != "examples"}), file=sys.stderr)

    report = {"victim": victim.name, "attribute": args.attribute, "posts": len(texts), "results": results,
              "not_run": errors, "heldout_evaluator": evaluator.name, "heldout_accuracy_before": before_acc,
              "torch_threads": args.threads}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "text_vs_textattack.json").write_text(json.dumps(report, indent=2))
    lines = [(f"victim {victim.name}, {len(texts)} held-out test posts; held-out {evaluator.name} accuracy before "
              f"{100 * before_acc:.1f}%"), "",
             f"{'method':18} {'s/example':>9} {'success':>8} {'changed':>8} {'MiniLM':>7} {'held-out acc':>12}"]
    for r in results:
        lines.append(f"{r['method']:18} {r['seconds_per_example']:9.3f} {100 * r['success_rate']:7.0f}% "
                     f"{100 * r['words_changed_mean']:7.1f}% {r['similarity_mean']:7.3f} "
                     f"{100 * r['heldout_accuracy_after']:11.1f}%")
    for m, e in errors.items():
        lines.append(f"{m:18} not run: {e}")
    (args.out / "text_vs_textattack.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
