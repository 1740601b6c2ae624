"""How well each differentiable recognizer tells people apart on ``faces-eval``, with Ally's own alignment.

Every labelled face is found by Ally's MTCNN (the detection overlapping its label box by IoU >= 0.3), cropped
by ``AlignedRecognizer`` exactly as the attack crops it (the model's CROP_MARGIN template) and embedded. Pairs
follow the label file's rules: genuine = same identity, different photos, no near-duplicate shots; impostor =
different identities in different groups, in an exhaustive group, or in the same photo. Prints genuine and
impostor cosine, the equal error rate, the best balanced-accuracy threshold, and the error rates at the
model's documented threshold where it has one; and the CPU cost of one crop (forward, forward + backward).

    .venv/bin/python tests/bench/recognizer_verification.py mobilefacenet mobileface faceres

The best threshold is chosen on these same photos: it describes them, it is not a held-out calibration.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from PIL import Image

from ally.eval.dataset import EvalSet, LabelledFace, load_eval_set
from ally.eval.evaluators import MIN_IOU, box_iou
from ally.faces.detect import FaceDetector
from ally.surrogates import AlignedRecognizer, load_aligned
from ally_models.cache import default_cache
from ally_models.registry import load_dataset_labels


def embed_faces(data: EvalSet, detector: FaceDetector, recs: dict[str, AlignedRecognizer]
                ) -> tuple[list[LabelledFace], dict[str, np.ndarray], int]:
    """The labelled faces MTCNN finds, their embeddings per model, and how many labelled faces it missed."""
    faces: list[LabelledFace] = []
    emb: dict[str, list[np.ndarray]] = {m: [] for m in recs}
    missed = 0
    for photo in data.photos.values():
        rgb = np.array(Image.open(photo.path).convert("RGB"))
        found = detector.detect(rgb)
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        for face in photo.faces:
            best = max(found, key=lambda d: box_iou(d.box, face.box), default=None)
            if best is None or box_iou(best.box, face.box) < MIN_IOU:
                missed += 1
                continue
            faces.append(face)
            landmarks = torch.from_numpy(np.asarray(best.landmarks, dtype=np.float64))[None]
            with torch.no_grad():
                for m, rec in recs.items():
                    emb[m].append(rec.embed(image, landmarks)[0].numpy())
    return faces, {m: np.stack(v) for m, v in emb.items()}, missed


def pairs(data: EvalSet, faces: list[LabelledFace]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(genuine, impostor) index pairs into ``faces`` by the label file's pair rules."""
    groups = load_dataset_labels("faces-eval")["groups"]
    group_of = {k: v["group"] for k, v in data.identities.items()}
    near = {(p.id, p.near_duplicate_of) for p in data.photos.values() if p.near_duplicate_of}
    near |= {(b, a) for a, b in near}
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(faces)), 2):
        a, b = faces[i], faces[j]
        if a.identity == b.identity:
            if a.photo != b.photo and (a.photo, b.photo) not in near:
                genuine.append((i, j))
        elif group_of[a.identity] != group_of[b.identity] or groups[group_of[a.identity]]["exhaustive"] \
                or a.photo == b.photo:
            impostor.append((i, j))
    return genuine, impostor


def report(model_id: str, emb: np.ndarray, genuine: list, impostor: list, threshold: float | None) -> str:
    cos = emb @ emb.T
    g = np.array([cos[i, j] for i, j in genuine])
    d = np.array([cos[i, j] for i, j in impostor])
    ts = np.linspace(-0.2, 1.0, 1201)
    frr = np.array([(g < t).mean() for t in ts])
    far = np.array([(d >= t).mean() for t in ts])
    bal = 1 - (frr + far) / 2
    k, e = int(bal.argmax()), int(np.abs(frr - far).argmin())
    line = (f"{model_id}: genuine cos {g.mean():.3f} ± {g.std():.3f} (min {g.min():.3f}), impostor {d.mean():.3f} "
            f"± {d.std():.3f} (max {d.max():.3f}); EER {(frr[e] + far[e]) / 2:.3f}; best balanced accuracy "
            f"{bal[k]:.3f} at cos {ts[k]:.3f} (FRR {frr[k]:.3f}, FAR {far[k]:.3f})")
    if threshold is not None:
        t = 1 - threshold
        line += f"; at the documented cos {t:.3f}: FRR {(g < t).mean():.3f}, FAR {(d >= t).mean():.3f}"
    return line


def crop_cost_ms(rec: AlignedRecognizer, batch: int, repeats: int = 10) -> tuple[float, float]:
    """CPU milliseconds per crop: forward, and forward + backward to the input (what one attack step needs)."""
    s = rec.recognizer.input_size
    x = torch.rand(batch, 3, s, s)
    with torch.no_grad():
        for _ in range(2):
            rec.recognizer(x)
        t = time.perf_counter()
        for _ in range(repeats):
            rec.recognizer(x)
        forward = (time.perf_counter() - t) / repeats / batch * 1000
    xg = x.clone().requires_grad_(True)
    for _ in range(2):
        rec.recognizer(xg).sum().backward()
    t = time.perf_counter()
    for _ in range(repeats):
        rec.recognizer(xg).sum().backward()
    return forward, (time.perf_counter() - t) / repeats / batch * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mobilefacenet"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the timings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = default_cache()
    data = load_eval_set(cache)
    files = cache.files("mtcnn", pull=True)
    detector = FaceDetector(files["pnet.pt"], files["rnet.pt"], files["onet.pt"])
    recs = {m: load_aligned(m, cache, torch.device("cpu")) for m in args.models}
    faces, emb, missed = embed_faces(data, detector, recs)
    genuine, impostor = pairs(data, faces)
    print(f"{len(faces)} faces embedded ({missed} labelled faces not found by MTCNN); "
          f"{len(genuine)} genuine pairs, {len(impostor)} impostor pairs")
    for m, rec in recs.items():
        print(report(m, emb[m], genuine, impostor, rec.recognizer.threshold))
    for m, rec in recs.items():
        for batch in (1, 8):
            fw, fb = crop_cost_ms(rec, batch)
            print(f"{m} {rec.recognizer.input_size} px, batch {batch}, {args.threads} thread(s): "
                  f"forward {fw:.1f} ms/crop, forward + backward {fb:.1f} ms/crop")


if __name__ == "__main__":
    main()
