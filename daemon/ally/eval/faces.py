"""``ally eval faces``: do held-out recognizers still match protected photos to other photos of the person?

For each level, every probe photo is protected by the engine, written the way ``ally protect`` writes it,
then put through each site condition (as uploaded; JPEG 75 + resize to 1080 / 2048). Each held-out evaluator
finds the faces with its own detector and compares each labelled face with the *clean* photos of the same
person elsewhere in the set (the attacker's gallery). A face counts as identified when it matches at least one
gallery photo at the evaluator's standard threshold; a face the evaluator no longer detects counts as not
identified, and is reported separately. Level ``off`` (no protection) is the baseline.
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
from ..config import Config
from ..engine import Engine
from ..imaging.io import load_image, save_image
from ..levels import Level
from .dataset import EvalSet, LabelledFace, LabelledPhoto, load_eval_set
from . import visibility
from .evaluators import Evaluator, load_evaluators
from .report import write_report
from .sites import AS_UPLOADED, CONDITIONS, SiteCondition

MIN_IOU = 0.3  # a detection is the labelled face when their boxes overlap this much


@dataclass
class Cell:
    """Counts for one (level, condition, evaluator)."""

    faces: int = 0
    identified: int = 0
    not_detected: int = 0
    pairs: int = 0
    pairs_matched: int = 0

    @property
    def match_rate(self) -> float:
        return self.identified / self.faces if self.faces else float("nan")


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


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _find(face: LabelledFace, boxes: list, descriptors: np.ndarray, scale: float) -> np.ndarray | None:
    target = tuple(v * scale for v in face.box)
    best = max(range(len(boxes)), key=lambda i: _iou(boxes[i], target), default=None)
    if best is None or _iou(boxes[best], target) < MIN_IOU:
        return None
    return descriptors[best]


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


def evaluate(
    engine: Engine, data: EvalSet, evaluators: list[Evaluator], levels: list[Level],
    probes: list[LabelledPhoto], conditions: tuple[SiteCondition, ...] = CONDITIONS, log=print,
    crops: Path | None = None,
) -> dict:
    """Match rates per (level, condition, evaluator) and visibility per level; 1:1 crops under ``crops``."""
    galleries = {ev.name: _gallery_descriptors(ev, data) for ev in evaluators}
    cells: dict[tuple[str, str, str], Cell] = {}
    quality: dict[str, LevelQuality] = {}
    for level in [Level.OFF, *[lv for lv in levels if lv is not Level.OFF]]:
        q = quality.setdefault(level.value, LevelQuality())
        for n, photo in enumerate(probes, 1):
            image = load_image(photo.path)
            start = time.perf_counter()
            protected = engine.protect(image, level).rgb if level is not Level.OFF else image.rgb
            q.seconds.append(time.perf_counter() - start)
            written = _as_written(protected, photo.path)
            if level is not Level.OFF:
                a, b = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (written, image.rgb))
                q.psnr.append(float(psnr(a, b)))
                q.ssim.append(float(ssim(a, b)))
                q.add_visibility(visibility.measure(image.rgb, written, [f.box for f in photo.faces]))
                if crops is not None:
                    _write_crop(crops / level.value, photo, image.rgb, written)
            for cond in conditions:
                rgb, scale = cond.apply(written)
                for ev in evaluators:
                    boxes, descriptors = ev.faces(rgb)
                    gallery_all = galleries[ev.name]
                    for face in photo.faces:
                        gallery = [gallery_all[g.key] for g in data.gallery(face) if g.key in gallery_all]
                        if not gallery or face.key not in gallery_all:
                            continue  # the evaluator cannot even use this face when clean: not a fair probe
                        cell = cells.setdefault((level.value, cond.name, ev.name), Cell())
                        cell.faces += 1
                        probe = _find(face, boxes, descriptors, scale)
                        if probe is None:
                            cell.not_detected += 1
                            continue
                        hits = ev.matches(probe, np.stack(gallery))
                        cell.identified += int(hits.any())
                        cell.pairs += len(hits)
                        cell.pairs_matched += int(hits.sum())
            log(f"[{level.value}] {n}/{len(probes)} {photo.id}: {q.seconds[-1]:.1f} s")
    return {
        "evaluators": [{"name": ev.name, "family": ev.family, "threshold": ev.threshold} for ev in evaluators],
        "probes": [p.id for p in probes],
        "probe_faces": sum(len(p.faces) for p in probes),
        "cells": [{"level": k[0], "condition": k[1], "evaluator": k[2], **asdict(c), "match_rate": c.match_rate}
                  for k, c in cells.items()],
        "quality": {lv: v.summary() for lv, v in quality.items()},
        "conditions": [c.name for c in conditions],
        "device": str(engine.device),
    }


def run_eval_faces(args: argparse.Namespace) -> int:
    from ..cli import config_for

    config: Config = config_for(args)
    cache = default_cache()
    engine = Engine(config, cache)
    engine.warm_up()
    levels = [Level.parse(v) for v in args.levels.split(",") if v]
    data = load_eval_set(cache)
    probes = data.probes(None if args.per_identity == 0 else args.per_identity)
    evaluators = load_evaluators(cache, args.evaluators.split(","))
    print(f"{len(probes)} probe photos ({sum(len(p.faces) for p in probes)} labelled faces), "
          f"{len(data.identities)} identities; evaluators: {', '.join(e.name for e in evaluators)}")
    result = evaluate(engine, data, evaluators, levels, probes, crops=args.out / "crops")
    result["settings"] = {"levels": [lv.value for lv in levels], "per_identity": args.per_identity,
                          "surrogates": list(config.surrogates)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faces.json").write_text(json.dumps(result, indent=2))
    table = write_report(result, args.out)
    print(table)
    print(f"written: {args.out / 'faces.json'}, {args.out / 'faces.md'}, {args.out / 'faces.png'}")
    return 0
