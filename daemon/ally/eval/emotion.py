"""``ally eval emotion``: does the perturbation hide facial expressions from a reader that was not used?

Per level and variant, on the eval photos (the ``faces-eval`` probes of one split, and face-api's group photos
for the report split): each photo is protected, then both the original and the protected photo go through what
a site does (JPEG 75, long edge 1080 px); the held-out reader (face-api's expression net, another lineage than
the mini-Xception surrogate) reads every face found again by the detector. A face counts as hidden when the
reader's top class on the protected photo is no longer its top class on the original. The faces carry no
expression labels: the reader's own clean reading is the reference, as the issue asks.

Variants, on the same photos and levels:
- ``cloak``: the face cloak alone (faces, metadata) — the expression reading it changes by accident;
- ``joint``: faces + emotion, one search on both terms (the level's schedule);
- ``chained``: faces + emotion, the cloak's search, then a second stage from its result (same steps in all).
Identity (dlib's own runtime still matches the face to the original after the site) and visibility
(SSIMULACRA2 of each face region and of the whole photo) are reported beside, so the joint perturbation can be
compared with the cloak alone.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ally_models.cache import default_cache

from ..config import Config, config_for
from ..engine import Engine
from ..imaging.io import load_image
from ..levels import Level
from ..protect import receipt
from ..protections import EMOTION, FACES, METADATA
from . import visibility
from .dataset import LabelledPhoto, load_eval_set

# name: (protections, schedule, extra steps beyond the level's): "joint-longer" and "chained" cost the same
VARIANTS: dict[str, tuple[frozenset[str], str | None, bool]] = {
    "cloak": (frozenset({FACES, METADATA}), None, False),
    "joint": (frozenset({FACES, EMOTION, METADATA}), "joint", False),
    "joint-longer": (frozenset({FACES, EMOTION, METADATA}), "joint", True),
    "chained": (frozenset({FACES, EMOTION, METADATA}), "chained", True),
    "emotion-only": (frozenset({EMOTION, METADATA}), "joint", False),
}
EXTRA_STEPS = 10  # the second stage of "chained", and what "joint-longer" adds to one search
# face-api's group photos that faces-eval does not already hold (its vm-sample1 and vm-sample3 are in `tune`)
REPORT_SAMPLES = ("sample2.jpg", "sample4.jpg", "sample5.jpg", "sample6.jpg")
MAX_FACES = 6  # photos with more faces (dlib's 24-face bald_guys collage) are left out: slow, and tiny faces


@dataclass
class Tally:
    faces: int = 0  # faces the held-out reader read on the original after the site
    found: int = 0  # of those, found again on the protected photo after the site
    changed: int = 0  # top class no longer the clean one
    drops: list[float] = field(default_factory=list)  # clean class probability: original − protected
    surrogate_changed: int = 0  # the same for the surrogate reader, no site (white box, for reference)
    surrogate_faces: int = 0
    identity_checked: int = 0  # faces dlib finds in the original
    identity_matched: int = 0  # of those, still matched after the site
    face_ssimulacra2: list[float] = field(default_factory=list)
    photo_ssimulacra2: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)  # share of the searched change kept by the visibility floor
    clean_labels: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        def mean(v: list[float]) -> float | None:
            return round(float(np.mean(v)), 3) if v else None

        def rate(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {
            "faces": self.faces, "found": self.found, "changed": self.changed,
            "changed_rate": rate(self.changed, self.faces), "confidence_drop": mean(self.drops),
            "surrogate_changed_rate": rate(self.surrogate_changed, self.surrogate_faces),
            "identity_checked": self.identity_checked,
            "identity_match_rate": rate(self.identity_matched, self.identity_checked),
            "face_ssimulacra2": mean(self.face_ssimulacra2),
            "face_ssimulacra2_min": round(min(self.face_ssimulacra2), 2) if self.face_ssimulacra2 else None,
            "photo_ssimulacra2": mean(self.photo_ssimulacra2), "seconds": mean(self.seconds),
            "strength": mean(self.strengths), "clean_labels": dict(sorted(self.clean_labels.items())),
        }


def eval_photos(split: str, quick: bool, per_identity: int | None) -> list[tuple[str, Path]]:
    """(id, path) of the photos of ``split``: faces-eval probes of its people (at most ``per_identity`` per
    person, at most MAX_FACES faces a photo), and in ``report`` face-api's group photos not in faces-eval."""
    cache = default_cache()
    data = load_eval_set(cache)
    identities = data.split(split)
    probes: list[LabelledPhoto] = [p for p in data.probes(per_identity, identities) if len(p.faces) <= MAX_FACES]
    if quick:
        probes = [p for p in probes if p.kind == "chip"][:2] + [p for p in probes if p.kind == "photo"][:1]
    out = [(p.id, p.path) for p in probes]
    if split in ("report", "all") and not quick:
        samples = cache.files("faceapi-samples", pull=True)
        out += [(f"faceapi-{name}", samples[name]) for name in REPORT_SAMPLES]
    return out


def evaluate(engine: Engine, photos: list[tuple[str, Path]], levels: list[Level], variants: list[str],
             log: Callable[[str], None] = print, extra_steps: int = EXTRA_STEPS) -> dict:
    """Tallies per (level, variant) over ``photos``, plus every face's record."""
    held_out = engine.receipt_reader
    surrogate = engine.expression_readers[0]
    base_levels = dict(engine.levels)
    tallies: dict[str, Tally] = {}
    records: list[dict] = []
    for level in levels:
        for variant in variants:
            protections, schedule, extra = VARIANTS[variant]
            key = f"{level.value}/{variant}"
            t = tallies.setdefault(key, Tally())
            settings = base_levels[level]
            engine.levels = {**base_levels, level: replace(
                settings, expression_schedule=schedule or settings.expression_schedule,
                expression_steps=settings.expression_steps + (extra_steps if extra else 0))}
            for n, (photo_id, path) in enumerate(photos, 1):
                image = load_image(path)
                start = time.perf_counter()
                result = engine.protect(image, level, protections=protections, with_receipt=FACES in protections)
                t.seconds.append(time.perf_counter() - start)
                if not result.faces:
                    continue
                expr = result.expression_receipts or receipt.check_expressions(
                    held_out, engine.detector.detect, image.rgb, result.rgb, result.faces)
                clean_sur = surrogate.read(image.rgb, [f.box for f in result.faces]).argmax(-1)
                after_sur = surrogate.read(result.rgb, [f.box for f in result.faces]).argmax(-1)
                t.surrogate_faces += len(result.faces)
                t.surrogate_changed += int((clean_sur != after_sur).sum())
                vis = visibility.measure(image.rgb, result.rgb, [f.box for f in result.faces], with_butteraugli=False)
                t.photo_ssimulacra2.append(vis.whole.ssimulacra2)
                for i, rc in enumerate(expr):
                    rep = result.reports[i] if i < len(result.reports) else None
                    if rep is not None:
                        t.face_ssimulacra2.append(rep.ssimulacra2)
                        t.strengths.append(rep.strength)
                    rec = {"level": level.value, "variant": variant, "photo": photo_id, "face": i, **rc.as_dict()}
                    if rc.clean != "unknown":
                        t.faces += 1
                        t.clean_labels[rc.clean] = t.clean_labels.get(rc.clean, 0) + 1
                        if rc.found:
                            t.found += 1
                            t.changed += rc.changed
                            t.drops.append(rc.clean_confidence - (rc.after_confidence or 0.0))
                        else:  # the face is not found again: its expression is not read either
                            t.changed += 1
                            t.drops.append(rc.clean_confidence)
                    if i < len(result.receipts) and result.receipts[i].found:
                        t.identity_checked += 1
                        t.identity_matched += result.receipts[i].matched
                        rec["identity_matched"] = result.receipts[i].matched
                    records.append(rec)
                log(f"[{key}] {n}/{len(photos)} {photo_id}: {len(result.faces)} face(s), {t.seconds[-1]:.1f} s")
    engine.levels = base_levels
    return {"tallies": {k: v.summary() for k, v in tallies.items()}, "faces": records,
            "reader": held_out.model_id, "surrogates": [r.model_id for r in engine.expression_readers],
            "condition": receipt.RECEIPT_CONDITION.name, "device": str(engine.device)}


def report_table(result: Mapping[str, object]) -> str:
    """A markdown table of the tallies."""
    lines = [f"Held-out expression reader: {result['reader']} (surrogates: {', '.join(result['surrogates'])}); "
             f"condition: {result['condition']}.", "",
             "| level / variant | faces | expression hidden | clean-class confidence drop | surrogate changed (white box) "
             "| dlib still matches | face SSIMULACRA2 (mean / min) | photo SSIMULACRA2 | s / photo |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, t in result["tallies"].items():  # type: ignore[union-attr]
        def pct(v: object) -> str:
            return "–" if v is None else f"{100 * float(v):.0f} %"
        lines.append(f"| {key} | {t['faces']} | {pct(t['changed_rate'])} ({t['changed']}) | {t['confidence_drop']} | "
                     f"{pct(t['surrogate_changed_rate'])} | {pct(t['identity_match_rate'])} of {t['identity_checked']} | "
                     f"{t['face_ssimulacra2']} / {t['face_ssimulacra2_min']} | {t['photo_ssimulacra2']} | {t['seconds']} |")
    return "\n".join(lines)


def run_eval_emotion(args: argparse.Namespace) -> int:
    config: Config = config_for(args)
    levels = [Level.parse(v) for v in args.levels.split(",") if v and v != "off"]
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    photos = eval_photos(args.split, args.quick, None if args.per_identity == 0 else args.per_identity)
    print(f"split {args.split}{' (quick)' if args.quick else ''}: {len(photos)} photos; levels "
          f"{', '.join(lv.value for lv in levels)}; variants {', '.join(variants)}")
    engine = Engine(config, default_cache())
    engine.warm_up()
    result = evaluate(engine, photos, levels, variants)
    result["settings"] = {"extra_steps": EXTRA_STEPS, "split": args.split, "quick": args.quick, "levels": [lv.value for lv in levels],
                          "variants": variants, "photos": [p for p, _ in photos]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emotion.json").write_text(json.dumps(result, indent=2, default=str))
    text = report_table(result)
    (args.out / "emotion.md").write_text(text + "\n")
    print(text)
    print(f"written: {args.out / 'emotion.json'}, emotion.md")
    return 0
