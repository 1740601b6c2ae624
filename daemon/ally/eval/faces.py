"""``ally eval faces``: do held-out recognizers still match protected photos to other photos of the person?

For each level, every probe photo is protected by the engine, written the way ``ally protect`` writes it,
then put through each site condition (as uploaded; JPEG 75 + resize to 1080 / 2048). Each held-out evaluator
finds the faces with its own detector and compares each labelled face with the *clean* photos of the same
person elsewhere in the set (threat ``probe``), and each clean face with the protected uploads of the same
person (threat ``gallery``, Fawkes' and LowKey's; see threats.py). A face counts as identified when it matches
at least one gallery photo at the evaluator's standard threshold; a face the evaluator no longer detects counts
as not identified, and is reported separately. Level ``off`` (no protection) is the baseline.

Visibility is measured on the file as written against the original, at native resolution: SSIMULACRA2 and
Butteraugli of the whole photo and of each labelled face region (visibility.py); 1:1 crops (original |
protected | amplified difference) are written for every protected photo. Several level tables (the live one,
the old v1 levels, Fawkes' published budgets) run on the same photos for the identification-vs-SSIMULACRA2
curve. ``--split tune|report`` chooses half of the people, so settings tuned on one half are reported on the
other; ``--quick`` is a small fixed subset for development.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ally_models.cache import default_cache

from ..attacks.perceptual import psnr, ssim
from ..config import Config, config_for
from ..engine import Engine
from ..surrogates import decoy_embeddings
from ..imaging.io import load_image, save_image
from ..levels import Level
from .dataset import EvalSet, LabelledFace, LabelledPhoto, load_eval_set
from . import visibility
from .evaluators import MIN_IOU, Evaluator, box_iou, descriptor_at, load_evaluators
from .report import write_report
from .sites import CONDITIONS, SiteCondition
from .tables import level_name, level_table
from .threats import THREATS, count_gallery_threat, count_probe_threat

QUICK_CHIPS, QUICK_PHOTOS = 2, 1  # --quick: this many face chips and larger photos


@dataclass
class LevelQuality:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    ssimulacra2: list[float] = field(default_factory=list)  # whole photo, as written, vs the original
    butteraugli: list[float] = field(default_factory=list)  # whole photo (empty: binary unavailable)
    face_ssimulacra2: list[float] = field(default_factory=list)  # each labelled face region
    face_butteraugli: list[float] = field(default_factory=list)
    butteraugli_note: str | None = None

    def summary(self) -> dict:
        def stat(v: list[float], f) -> float | None:
            return float(f(v)) if v else None

        return {"psnr_mean": stat(self.psnr, np.mean), "ssim_mean": stat(self.ssim, np.mean),
                "ssim_min": stat(self.ssim, np.min), "seconds_mean": float(np.mean(self.seconds)),
                "ssimulacra2_mean": stat(self.ssimulacra2, np.mean),
                "ssimulacra2_min": stat(self.ssimulacra2, np.min),
                "butteraugli_mean": stat(self.butteraugli, np.mean),
                "butteraugli_max": stat(self.butteraugli, np.max),
                "face_ssimulacra2_mean": stat(self.face_ssimulacra2, np.mean),
                "face_ssimulacra2_min": stat(self.face_ssimulacra2, np.min),
                "face_butteraugli_mean": stat(self.face_butteraugli, np.mean),
                "face_butteraugli_max": stat(self.face_butteraugli, np.max),
                "butteraugli_note": self.butteraugli_note}

    def add_visibility(self, vis: visibility.Visibility) -> None:
        self.ssimulacra2.append(vis.whole.ssimulacra2)
        self.face_ssimulacra2.extend(f.ssimulacra2 for f in vis.faces)
        if vis.whole.butteraugli is not None:
            self.butteraugli.append(vis.whole.butteraugli)
            self.face_butteraugli.extend(f.butteraugli for f in vis.faces if f.butteraugli is not None)
        else:
            self.butteraugli_note = vis.butteraugli_note


def _find(face: LabelledFace, boxes: list, descriptors: np.ndarray, scale: float) -> np.ndarray | None:
    return descriptor_at(tuple(v * scale for v in face.box), boxes, descriptors)


def _gallery_descriptors(evaluator: Evaluator, data: EvalSet) -> dict[str, np.ndarray]:
    """Descriptor of every labelled face in its clean photo (faces the evaluator cannot find are left out)."""
    out = {}
    for photo in data.photos.values():
        boxes, descriptors = evaluator.faces(load_image(photo.path).rgb)
        for face in photo.faces:
            d = _find(face, boxes, descriptors, 1.0)
            if d is not None:
                out[face.key] = d
    return out


def clean_descriptors(data: EvalSet, evaluators: list[Evaluator]) -> dict[str, dict[str, np.ndarray]]:
    """Evaluator name → descriptor of every labelled face it finds in its clean photo."""
    return {ev.name: _gallery_descriptors(ev, data) for ev in evaluators}


def _as_written(rgb: np.ndarray, path: Path) -> np.ndarray:
    """The pixels of the file ``ally protect`` would write (same format, its JPEG quality)."""
    like = load_image(path)
    buf = io.BytesIO()
    save_image(rgb, like, buf)
    return load_image(buf.getvalue()).rgb


def _write_crop(folder: Path, photo: LabelledPhoto, original: np.ndarray, written: np.ndarray) -> Path:
    """original | protected | amplified difference of the photo's largest labelled face, at 1:1."""
    from PIL import Image

    face = max(photo.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{photo.id}.png"
    Image.fromarray(visibility.side_by_side(original, written, face.box)).save(path)
    return path


def _owner(photo: LabelledPhoto, identities: set[str] | None) -> str:
    """Whose upload a photo is (the person most of its counted faces show): whose decoy cloaks it."""
    names = [f.identity for f in photo.faces if identities is None or f.identity in identities]
    names = names or [f.identity for f in photo.faces]
    return max(sorted(set(names)), key=names.count)


def _use_decoy(engine: Engine, seed: str) -> None:
    """Cloak the next photos toward the decoy of ``seed`` (one per person, as each user's config has its own)."""
    if engine.config.decoy:
        engine.decoys = decoy_embeddings(seed, engine.surrogates, engine.device)


MAX_REFERENCES = 3  # person-level protection: the user enrols this many photos of themselves ("a few")


def person_references(engine: Engine, data: EvalSet, photo: LabelledPhoto, identity: str) -> list[torch.Tensor] | None:
    """What ``ally me add`` would hold for the owner of ``photo``: embeddings (every surrogate) of their face in up to
    MAX_REFERENCES other photos of them (never this photo nor a near-duplicate of it), found by our detector at the
    labelled box; None when there is no other photo of them."""
    from ..enrol import embed_face

    others: list[LabelledFace] = []
    for face in photo.faces:
        if face.identity == identity:
            others = [g for g in data.gallery(face) if g.photo != photo.id][:MAX_REFERENCES]
            break
    rows: list[dict[str, np.ndarray]] = []
    for ref in others:
        rgb = load_image(data.photos[ref.photo].path).rgb
        found = [f for f in engine.detector.detect(rgb) if box_iou(f.box, ref.box) >= MIN_IOU]
        if found:
            rows.append(embed_face(rgb, max(found, key=lambda f: box_iou(f.box, ref.box)), engine.surrogates,
                                   engine.device))
    if not rows:
        return None
    return [torch.from_numpy(np.stack([r[s.model_id] for r in rows])).float().to(engine.device)
            for s in engine.surrogates]


def evaluate(
    engine: Engine, data: EvalSet, evaluators: list[Evaluator], levels: list[Level],
    probes: list[LabelledPhoto], conditions: tuple[SiteCondition, ...] = CONDITIONS, log=print,
    crops: Path | None = None, table: str = "current", identities: set[str] | None = None,
    baseline: bool = True, decoy_seed: str = "eval", galleries: dict[str, dict[str, np.ndarray]] | None = None,
    person_level: bool = False, decoys: str = "person",
) -> dict:
    """Match rates per (level, condition, evaluator, threat, probe type) and visibility per level.

    ``engine`` protects with its own level table, labelled ``table`` in the result; only faces of
    ``identities`` (default: everyone) are counted; level ``off`` is measured first when ``baseline``. Each
    probe photo is cloaked toward its owner's decoy (``decoy_seed:identity``), so one person's uploads agree,
    as they do for a real user. 1:1 crops of each protected photo's largest face go under ``crops``.
    ``galleries``: the clean descriptors (:func:`clean_descriptors`), when already computed. ``person_level``:
    each owner has enrolled up to MAX_REFERENCES other photos of themselves ("protect me",
    :func:`person_references`). ``decoys``: ``person`` (one decoy per owner: their uploads agree), ``photo`` (one
    per photo: their uploads drift apart) or ``none``.
    """
    galleries = galleries or clean_descriptors(data, evaluators)
    engine.references = None  # never the evaluating user's own enrolment; person_level sets each owner's below
    kind = {p.id: p.kind for p in data.photos.values()}
    counted = [f for p in probes for f in p.faces if identities is None or f.identity in identities]
    everyone = [f for p in data.photos.values() for f in p.faces if identities is None or f.identity in identities]
    cells: list[dict] = []
    quality: dict[str, LevelQuality] = {}
    run = [*([Level.OFF] if baseline else []), *[lv for lv in levels if lv is not Level.OFF]]
    for level in run:
        name = level_name(table, level)
        q = quality.setdefault(name, LevelQuality())
        found: dict[tuple[str, str], dict[str, np.ndarray | None]] = {}  # (condition, evaluator) -> key -> descriptor
        for n, photo in enumerate(probes, 1):
            image = load_image(photo.path)
            start = time.perf_counter()
            if level is Level.OFF:
                protected = image.rgb
            else:
                owner = _owner(photo, identities)
                if decoys == "none":
                    engine.decoys = None
                else:
                    _use_decoy(engine, f"{decoy_seed}:{owner}" + (f":{photo.id}" if decoys == "photo" else ""))
                if person_level:
                    engine.references = person_references(engine, data, photo, owner)
                protected = engine.protect(image, level).rgb
            q.seconds.append(time.perf_counter() - start)
            written = _as_written(protected, photo.path)
            if level is not Level.OFF:
                a, b = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (written, image.rgb))
                q.psnr.append(float(psnr(a, b)))
                q.ssim.append(float(ssim(a, b)))
                q.add_visibility(visibility.measure(image.rgb, written, [f.box for f in photo.faces]))
                if crops is not None:
                    _write_crop(crops / f"{table}-{level.value}", photo, image.rgb, written)
            for cond in conditions:
                rgb, scale = cond.apply(written)
                for ev in evaluators:
                    boxes, descriptors = ev.faces(rgb)
                    store = found.setdefault((cond.name, ev.name), {})
                    for face in photo.faces:
                        store[face.key] = _find(face, boxes, descriptors, scale)
            log(f"[{name}] {n}/{len(probes)} {photo.id}: {q.seconds[-1]:.1f} s")
        for cond in conditions:
            for ev in evaluators:
                store, clean = found[(cond.name, ev.name)], galleries[ev.name]
                by_threat = {
                    "probe": count_probe_threat(counted, kind, store, clean, data.gallery, ev.matches),
                    "gallery": count_gallery_threat(counted, kind, store, clean, everyone, data.gallery, ev.matches),
                }
                for threat, per_type in by_threat.items():
                    for probe_type, c in per_type.items():
                        if c.faces or probe_type == "all":
                            cells.append({"level": name, "table": table, "condition": cond.name, "evaluator": ev.name,
                                          "threat": threat, "probe": probe_type, **asdict(c),
                                          "match_rate": c.match_rate})
    return {
        "evaluators": [{"name": ev.name, "family": ev.family, "threshold": ev.threshold} for ev in evaluators],
        "probes": [p.id for p in probes],
        "probe_faces": len(counted),
        "threats": THREATS,
        "cells": cells,
        "quality": {lv: v.summary() for lv, v in quality.items()},
        "conditions": [c.name for c in conditions],
        "device": str(engine.device),
    }


def evaluate_tables(
    config: Config, cache, data: EvalSet, evaluators: list[Evaluator], levels: dict[str, list[Level]],
    probes: list[LabelledPhoto], crops: Path | None = None, identities: set[str] | None = None, log=print,
    device: torch.device | None = None, person_level: bool = False, decoys: str = "person",
) -> dict:
    """:func:`evaluate` for each level table (``levels``: table name → its levels), on the same photos, merged.

    The baseline (level off) is measured once, with the first table.
    """
    merged: dict | None = None
    galleries = clean_descriptors(data, evaluators)
    for i, (table, lvs) in enumerate(levels.items()):
        engine = Engine(config, cache, device=device, levels=level_table(table))
        engine.warm_up()
        result = evaluate(engine, data, evaluators, lvs, probes, crops=crops, table=table, identities=identities,
                          person_level=person_level, decoys=decoys,
                          baseline=i == 0, log=log, galleries=galleries)
        if merged is None:
            merged = result
        else:
            merged["cells"] += result["cells"]
            merged["quality"].update(result["quality"])
    assert merged is not None, "no level table given"
    merged["tables"] = {t: [lv.value for lv in lvs] for t, lvs in levels.items()}
    return merged


def quick_probes(probes: list[LabelledPhoto]) -> list[LabelledPhoto]:
    """A small fixed subset for development: QUICK_CHIPS face chips and QUICK_PHOTOS photos of ≤ 5 faces."""
    chips = [p for p in probes if p.kind == "chip"][:QUICK_CHIPS]
    photos = [p for p in probes if p.kind == "photo" and len(p.faces) <= 5][:QUICK_PHOTOS]
    return chips + photos


def run_eval_faces(args: argparse.Namespace) -> int:
    config: Config = config_for(args)
    cache = default_cache()
    requested = [Level.parse(v) for v in args.levels.split(",") if v]
    tables = [t for t in args.tables.split(",") if t]
    levels = {t: [lv for lv in requested if lv in level_table(t)] for t in tables}
    data = load_eval_set(cache)
    identities = data.split(args.split)
    per_identity = 1 if args.quick else (None if args.per_identity == 0 else args.per_identity)
    probes = data.probes(per_identity, identities)
    if args.quick:
        probes = quick_probes(probes)
    if getattr(args, "chips_only", False):
        probes = [p for p in probes if p.kind == "chip"]
    evaluators = load_evaluators(cache, args.evaluators.split(","))
    counted = sum(1 for p in probes for f in p.faces if f.identity in identities)
    print(f"split {args.split}{' (quick)' if args.quick else ''}: {len(probes)} probe photos "
          f"({sum(p.kind == 'chip' for p in probes)} face chips), {counted} counted faces of "
          f"{len(identities)} people; tables: {', '.join(tables)}; evaluators: {', '.join(e.name for e in evaluators)}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = evaluate_tables(config, cache, data, evaluators, levels, probes, crops=args.out / "crops",
                             identities=identities, person_level=getattr(args, "person_level", False),
                             decoys=getattr(args, "decoys", "person"))
    result["settings"] = {"levels": [lv.value for lv in requested], "per_identity": per_identity,
                          "split": args.split, "identities": sorted(identities), "quick": args.quick,
                          "surrogates": list(config.surrogates),
                          "person_level": getattr(args, "person_level", False), "decoys": getattr(args, "decoys", "person"),
                          "chips_only": getattr(args, "chips_only", False)}
    (args.out / "faces.json").write_text(json.dumps(result, indent=2, default=str))
    text = write_report(result, args.out)
    print(text)
    print(f"written: {args.out / 'faces.json'}, faces.md, faces.png, curve.md, curve.png, crops/")
    return 0
