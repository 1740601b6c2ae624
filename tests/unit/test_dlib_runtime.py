"""dlib's original runtime (the held-out evaluator) on real, labelled photos.

Labels come from ``ally_models/datasets/faces_eval.toml``; weights (``dlib-resnet``) and photos
(``faces-eval``) from the model cache, which the test command fills with ``ally models pull``.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally_models.dlib_runtime import RECOGNIZER_FILE, SHAPE5_FILE, DlibFaceRecognizer
from ally_models.registry import load_dataset_labels

pytest.importorskip("dlib", reason="dlib-bin is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.real_models


@pytest.fixture(scope="module")
def recognizer(real_model: Callable[[str], dict[str, Path]]) -> DlibFaceRecognizer:
    files = real_model("dlib-resnet")
    return DlibFaceRecognizer(files["recognizer.dat"], files["shape5.dat"])


@pytest.fixture(scope="module")
def labels() -> dict:
    return load_dataset_labels("faces-eval")


@pytest.fixture(scope="module")
def photos(real_model: Callable[[str], dict[str, Path]]) -> dict[str, Path]:
    return real_model("faces-eval")


def _photo(labels: dict, photo_id: str) -> dict:
    return next(p for p in labels["photos"] if p["id"] == photo_id)


@pytest.fixture(scope="module")
def load_photo(photos: dict[str, Path]) -> Callable[[dict, str], np.ndarray]:
    """RGB array of a labelled photo (the cache verified its sha256)."""

    def load(labels: dict, photo_id: str) -> np.ndarray:
        photo = _photo(labels, photo_id)
        path = photos[photo_id + Path(photo["path"]).suffix.lower()]
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            return np.asarray(image.convert("RGB"))

    return load


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _labelled_descriptors(rec: DlibFaceRecognizer, rgb: np.ndarray, photo: dict) -> list[tuple[str, np.ndarray]]:
    """(identity, descriptor) per labelled HOG face, each found by dlib's own detector."""
    detections = rec.detect(rgb)
    out = []
    for face in photo["faces"]:
        if face["detector"] != "dlib-hog":
            continue
        hits = [d for d in detections if _iou(d, face["box"]) > 0.3]
        assert hits, f"{photo['id']}: dlib did not find the labelled face {face['box']} (found {detections})"
        out.append((face["identity"], rec.descriptors(rgb, hits[:1])[0]))
    return out


# -- the label file itself (no weights needed) ---------------------------------------------------------

def test_label_file_is_consistent(labels: dict) -> None:
    ids, groups, packages = labels["identities"], labels["groups"], labels["packages"]
    photo_ids = [p["id"] for p in labels["photos"]]
    assert len(photo_ids) == len(set(photo_ids))
    photos_of: dict[str, set[str]] = {}
    for photo in labels["photos"]:
        assert photo["package"] in packages
        assert len(photo["sha256"]) == 64 and int(photo["sha256"], 16) >= 0
        width, height = photo["size"]
        assert photo["faces"], photo["id"]
        for face in photo["faces"]:
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (photo["id"], face["box"])
            assert face["identity"] in ids, (photo["id"], face["identity"])
            if photo.get("near_duplicate_of") is None:
                photos_of.setdefault(face["identity"], set()).add(f"{photo['id']}#{face['box']}")
        if "near_duplicate_of" in photo:
            assert photo["near_duplicate_of"] in photo_ids
    for key, ident in ids.items():
        assert ident["group"] in groups, key
        assert ident["confidence"] in {"high", "medium", "photo-only"}, key
        assert ("name" in ident) == ("name_method" in ident), key
    # Enough real repeats to evaluate recognition: identities with >= 3 distinct photos, from >= 3 sources.
    repeated = [k for k, v in photos_of.items() if len(v) >= 3 and ids[k]["confidence"] == "high"]
    assert len(repeated) >= 10
    assert len({ids[k]["group"] for k in repeated}) >= 3


# -- dlib's runtime ------------------------------------------------------------------------------------

def test_finds_the_labelled_faces_of_a_real_photo(recognizer: DlibFaceRecognizer, labels: dict, load_photo) -> None:
    rgb = load_photo(labels, "vm-sample1")
    boxes = recognizer.detect(rgb)
    photo = _photo(labels, "vm-sample1")
    assert len(boxes) >= len(photo["faces"])
    for face in photo["faces"]:
        assert max(_iou(b, face["box"]) for b in boxes) > 0.5, face
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= rgb.shape[1] and 0 <= y1 < y2 <= rgb.shape[0]


def test_mirror_matches_and_different_people_do_not(recognizer: DlibFaceRecognizer, labels: dict, load_photo) -> None:
    photo = _photo(labels, "vm-sample1")
    rgb = load_photo(labels, "vm-sample1")
    faces = _labelled_descriptors(recognizer, rgb, photo)
    assert len({identity for identity, _ in faces}) >= 3

    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    mirror_faces = _labelled_descriptors(recognizer, mirrored, {**photo, "faces": [
        {**f, "box": [rgb.shape[1] - f["box"][2], f["box"][1], rgb.shape[1] - f["box"][0], f["box"][3]]}
        for f in photo["faces"]]})
    for (identity, original), (_, flipped) in zip(faces, mirror_faces):
        distance = recognizer.distance(original, flipped)
        assert recognizer.match(original, flipped), f"{identity}: mirror at distance {distance:.3f}"
        assert distance < 0.4

    # Different people of one photo (faces_eval.toml: distinct identities) must not match.
    for (id_a, a), (id_b, b) in itertools.combinations(faces, 2):
        assert id_a != id_b
        assert not recognizer.match(a, b), f"{id_a} vs {id_b}: distance {recognizer.distance(a, b):.3f}"


def test_same_person_across_photos(recognizer: DlibFaceRecognizer, labels: dict, load_photo) -> None:
    """face_recognition's own test photos: three photos of p10 match each other, p11 matches none."""
    found = {pid: _labelled_descriptors(recognizer, load_photo(labels, pid), _photo(labels, pid))[0]
             for pid in ("fr-obama", "fr-obama2", "fr-obama3", "fr-biden")}
    for (pa, (ia, a)), (pb, (ib, b)) in itertools.combinations(found.items(), 2):
        same = ia == ib
        assert recognizer.match(a, b) == same, f"{pa} vs {pb}: distance {recognizer.distance(a, b):.3f}, same={same}"


def test_johns_folder_labels(recognizer: DlibFaceRecognizer, labels: dict, load_photo) -> None:
    """dlib's examples/johns (labels = folder names): every chip matches its own John and no other at 0.6."""
    chips = [(p["faces"][0]["identity"], p) for p in labels["photos"] if p["id"].startswith("johns-")]
    assert len(chips) == 55
    found = [(identity, _labelled_descriptors(recognizer, load_photo(labels, p["id"]), p)[0][1], p) for identity, p in chips]
    near = {p["id"]: p.get("near_duplicate_of") for _, p in chips}
    same, diff = [], []
    for (ia, a, pa), (ib, b, pb) in itertools.combinations(found, 2):
        if near[pa["id"]] == pb["id"] or near[pb["id"]] == pa["id"]:
            continue
        (same if ia == ib else diff).append(recognizer.distance(a, b))
    assert len(same) == 271 and len(diff) == 1210
    assert max(same) <= DlibFaceRecognizer.THRESHOLD < min(diff)
    assert np.mean(same) < 0.4 and np.mean(diff) > 0.8


def test_descriptor_api(recognizer: DlibFaceRecognizer, labels: dict, load_photo) -> None:
    rgb = load_photo(labels, "vm-sample1")
    boxes = recognizer.detect(rgb)
    d = recognizer.descriptors(rgb, boxes)
    assert d.shape == (len(boxes), 128) and d.dtype == np.float32
    assert np.all(np.abs(np.linalg.norm(d, axis=1) - 1.0) < 0.5)  # dlib descriptors have norm close to 1
    assert recognizer.descriptors(rgb, []).shape == (0, 128)
    # The same pixels as floats in 0..1 give the same descriptors; jitters 0 and 1 are the same (no jitter).
    np.testing.assert_allclose(recognizer.descriptors(rgb.astype(np.float32) / 255.0, boxes[:1]), d[:1], atol=1e-4)
    np.testing.assert_allclose(recognizer.descriptors(rgb, boxes[:1], num_jitters=1), d[:1], atol=1e-6)
    assert recognizer.distance(d, d).shape == (len(boxes), len(boxes))
    assert recognizer.descriptors(np.zeros((64, 64, 3), np.uint8)).shape == (0, 128)
    assert DlibFaceRecognizer.THRESHOLD == 0.6


def test_missing_weights_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DlibFaceRecognizer(tmp_path / RECOGNIZER_FILE, tmp_path / SHAPE5_FILE)
    with pytest.raises(FileNotFoundError):
        DlibFaceRecognizer.from_dir(tmp_path)
