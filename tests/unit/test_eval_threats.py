"""Threat-model bookkeeping of `ally eval faces` with tiny fake descriptors (no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ally.eval.dataset import EvalSet, LabelledFace, LabelledPhoto
from ally.eval.threats import count_gallery_threat, count_probe_threat


def _face(photo: str, identity: str, index: int = 0) -> LabelledFace:
    return LabelledFace(photo, index, (0.0, 0.0, 10.0, 10.0), identity)


def _set() -> tuple[EvalSet, dict[str, str]]:
    """Alice in three photos (a1 a chip, a2 a photo, a3 a near-duplicate of a2), Bob in two chips."""
    faces = {"a1": [_face("a1", "alice")], "a2": [_face("a2", "alice")], "a3": [_face("a3", "alice")],
             "b1": [_face("b1", "bob")], "b2": [_face("b2", "bob")]}
    size = {"a1": (150, 150), "a2": (800, 600), "a3": (800, 600), "b1": (150, 150), "b2": (150, 150)}
    photos = {k: LabelledPhoto(k, Path(k), tuple(v), "a2" if k == "a3" else None, size[k]) for k, v in faces.items()}
    return EvalSet(photos, {"alice": {}, "bob": {}}), {k: p.kind for k, p in photos.items()}


def _matches(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    return np.linalg.norm(gallery - probe[None], axis=1) <= 0.5


ALICE, BOB, DECOY = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([-1.0, -1.0])


def _clean(data: EvalSet) -> dict[str, np.ndarray]:
    return {f.key: ALICE if f.identity == "alice" else BOB for p in data.photos.values() for f in p.faces}


def test_kind_separates_dlib_chips_from_photos():
    _, kind = _set()
    assert kind == {"a1": "chip", "a2": "photo", "a3": "photo", "b1": "chip", "b2": "chip"}


def test_probe_threat_counts_identified_missed_and_undetected():
    data, kind = _set()
    clean = _clean(data)
    uploads = [data.photos["a1"].faces[0], data.photos["a2"].faces[0], data.photos["b1"].faces[0]]
    # a1 still looks like alice, a2 was pushed to the decoy, b1 is no longer detected
    protected = {"a1#0": ALICE, "a2#0": DECOY, "b1#0": None}
    cells = count_probe_threat(uploads, kind, protected, clean, data.gallery, _matches)
    assert (cells["all"].faces, cells["all"].identified, cells["all"].not_detected) == (3, 1, 1)
    assert (cells["chip"].faces, cells["chip"].identified, cells["chip"].not_detected) == (2, 1, 1)
    assert (cells["photo"].faces, cells["photo"].identified) == (1, 0)
    # a2's gallery is a1 only (a3 is its near-duplicate): one pair, not matched
    assert cells["photo"].pairs == 1 and cells["photo"].pairs_matched == 0
    assert cells["all"].match_rate == 1 / 3


def test_probe_threat_skips_faces_the_evaluator_cannot_use_clean():
    data, kind = _set()
    clean = _clean(data)
    del clean["b2#0"]  # bob's only other photo is unusable: b1 has no gallery
    cells = count_probe_threat([data.photos["b1"].faces[0]], kind, {"b1#0": BOB}, clean, data.gallery, _matches)
    assert cells["all"].faces == 0


def test_gallery_threat_uses_protected_uploads_as_the_gallery():
    data, kind = _set()
    clean = _clean(data)
    everyone = [f for p in data.photos.values() for f in p.faces]
    uploads = [data.photos["a2"].faces[0], data.photos["b1"].faces[0]]
    # alice's upload a2 is cloaked toward her decoy; bob's upload b1 still looks like bob
    protected = {"a2#0": DECOY, "b1#0": BOB}
    cells = count_gallery_threat(uploads, kind, protected, clean, everyone, data.gallery, _matches)
    # clean probes: a1 (gallery a2, missed), b2 (gallery b1, identified); a3 is a2's near-duplicate and a2/b1
    # are never their own probes
    assert (cells["all"].faces, cells["all"].identified) == (2, 1)
    assert (cells["chip"].faces, cells["chip"].identified) == (2, 1)
    assert cells["photo"].faces == 0


def test_gallery_threat_undetected_uploads_leave_the_person_out_of_the_gallery():
    data, kind = _set()
    clean = _clean(data)
    everyone = [f for p in data.photos.values() for f in p.faces]
    uploads = [data.photos["a1"].faces[0], data.photos["a2"].faces[0]]
    cells = count_gallery_threat(uploads, kind, {"a1#0": None, "a2#0": None}, clean, everyone, data.gallery,
                                 _matches)
    # probes: a1 (gallery a2), a2 (gallery a1), a3 (gallery a1; a2 is its near-duplicate) — none found
    assert (cells["all"].faces, cells["all"].identified, cells["all"].not_detected) == (3, 0, 3)


def test_gallery_threat_unprotected_baseline_identifies_everyone():
    data, kind = _set()
    clean = _clean(data)
    everyone = [f for p in data.photos.values() for f in p.faces]
    cells = count_gallery_threat(everyone, kind, clean, clean, everyone, data.gallery, _matches)
    assert cells["all"].faces == 5 and cells["all"].identified == 5


def test_split_halves_are_disjoint_and_cover_everyone_measurable():
    data, _ = _set()
    tune, report = data.split("tune"), data.split("report")
    assert tune | report == data.split("all") == {"alice", "bob"}
    assert not tune & report
    assert {p.id for p in data.probes(None, tune)}.isdisjoint({p.id for p in data.probes(None, report)})


class _FakeEngine:
    """Protects by brightening the photo: enough to move the fake evaluator's descriptor at level high."""

    class config:  # noqa: N801 - stands in for Config
        decoy = False

    device = "cpu"

    def protect(self, image, level):
        from types import SimpleNamespace

        shift = {"low": 5, "medium": 20, "high": 90}[level.value]
        return SimpleNamespace(rgb=np.clip(image.rgb.astype(int) + shift, 0, 255).astype(np.uint8))


class _FakeEvaluator:
    """One face filling the photo; its descriptor is the identity colour, shifted by the photo's brightness."""

    name, family, threshold = "fake", "fake", "euclidean ≤ 0.3"

    def faces(self, rgb):
        d = rgb.reshape(-1, 3).mean(0) / 255.0
        return [(0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0]))], d[None]

    def matches(self, probe, gallery):
        return np.linalg.norm(gallery - probe[None], axis=1) <= 0.3


def test_evaluate_and_report_end_to_end_with_fakes(tmp_path):
    from PIL import Image

    from ally.eval.faces import evaluate
    from ally.eval.report import write_report
    from ally.eval.sites import AS_UPLOADED
    from ally.levels import Level

    rng = np.random.default_rng(1)
    colours = {"alice": (200, 60, 60), "bob": (60, 60, 200)}
    photos = {}
    for pid, who, size in (("a1", "alice", (150, 150)), ("a2", "alice", (200, 160)), ("b1", "bob", (150, 150)),
                           ("b2", "bob", (150, 150))):
        w, h = size
        rgb = np.clip(np.array(colours[who]) + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(tmp_path / f"{pid}.png")
        face = LabelledFace(pid, 0, (0.0, 0.0, float(w), float(h)), who)
        photos[pid] = LabelledPhoto(pid, tmp_path / f"{pid}.png", (face,), None, size)
    data = EvalSet(photos, {"alice": {}, "bob": {}})
    probes = [photos["a2"], photos["b1"]]
    result = evaluate(_FakeEngine(), data, [_FakeEvaluator()], [Level.LOW, Level.HIGH], probes,
                      conditions=(AS_UPLOADED,), log=lambda *_: None, crops=tmp_path / "crops", table="v1")
    cell = {(c["level"], c["threat"], c["probe"]): c for c in result["cells"]}
    assert cell[("off", "probe", "all")]["identified"] == 2
    assert cell[("v1 low", "probe", "all")]["identified"] == 2  # a small shift still matches
    assert cell[("v1 high", "probe", "all")]["identified"] == 0  # a large one does not
    assert cell[("v1 high", "probe", "photo")]["faces"] == 1 and cell[("v1 high", "probe", "chip")]["faces"] == 1
    # gallery threat: clean a1 and b2 against the protected a2 and b1
    assert cell[("off", "gallery", "all")]["identified"] == 2
    assert cell[("v1 high", "gallery", "all")]["faces"] == 2
    assert cell[("v1 high", "gallery", "all")]["identified"] == 0
    q = result["quality"]
    assert q["v1 low"]["ssimulacra2_mean"] > q["v1 high"]["ssimulacra2_mean"]
    assert q["off"]["ssimulacra2_mean"] is None
    assert sorted(p.name for p in (tmp_path / "crops" / "v1-high").iterdir()) == ["a2.png", "b1.png"]
    text = write_report(result, tmp_path)
    assert "v1 high" in text and (tmp_path / "curve.png").exists() and (tmp_path / "faces.png").exists()
    assert "v1" in (tmp_path / "curve.md").read_text()
