""""Protect me" (issue 17): the reference store keeps nothing but embeddings, lists and forgets them, and a
damaged file is a clear error; ``Engine.enrol`` embeds the largest face with every surrogate (tiny random-weight
recognizers and a stub detector: plumbing, not recognition)."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ally.config import Config, ConfigError, load_config
from ally.engine import Engine
from ally.enrol import NoFaceError
from ally.faces.align import face_template
from ally.faces.detect import Face
from ally.imaging.io import load_image
from ally.me import MAX_REFERENCES, MeStore, MeStoreError
from ally.surrogates import AlignedRecognizer
from ally_models.recognizers import FaceRecognizer


def _unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return v / np.linalg.norm(v)


def test_add_list_references_forget(tmp_path: Path) -> None:
    store = MeStore(tmp_path / "me.npz")
    assert store.list() == [] and store.references(["a"]) == {}
    first = store.add({"a": _unit(1) * 3, "b": _unit(2, 4)}, faces=2, note="2 faces; the largest was used")
    second = store.add({"a": _unit(3)})
    assert [r.id for r in store.list()] == [first.id, second.id]
    assert store.list()[0].faces == 2 and store.list()[0].models == ("a", "b")
    refs = store.references(["a", "b", "c"])
    assert set(refs) == {"a", "b"} and refs["a"].shape == (2, 8) and refs["b"].shape == (1, 4)
    assert refs["a"].dtype == np.float32 and np.allclose(np.linalg.norm(refs["a"], axis=1), 1.0, atol=1e-6)
    assert np.allclose(refs["a"][0], _unit(1), atol=1e-6)  # normalised on the way in
    assert store.forget(first.id).id == first.id
    assert [r.id for r in store.list()] == [second.id] and set(store.references(["a", "b"])) == {"a"}
    with pytest.raises(MeStoreError, match=f"no reference 'deadbeef' \\(references: {second.id}\\)"):
        store.forget("deadbeef")
    assert store.forget_all() == 1 and store.list() == [] and not store.path.exists()


def test_the_file_holds_only_embeddings_and_their_index_and_is_private(tmp_path: Path) -> None:
    store = MeStore(tmp_path / "cfg" / "me.npz")
    ref = store.add({"faceres": _unit(1), "mobileface": _unit(2)}, faces=1, note="one face")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    with zipfile.ZipFile(store.path) as z:
        assert sorted(z.namelist()) == sorted([f"{ref.id}/faceres.npy", f"{ref.id}/mobileface.npy", "index.npy"])
    with np.load(store.path, allow_pickle=False) as archive:
        index = json.loads(archive["index"].tobytes())
        for name in archive.files:
            if name != "index":
                assert archive[name].shape == (8,) and archive[name].dtype == np.float32  # a vector, no pixels
    assert index == [{"id": ref.id, "added": ref.added, "faces": 1, "note": "one face",
                      "models": ["faceres", "mobileface"]}]
    assert list(tmp_path.glob("cfg/.*tmp")) == []  # no temporary file left behind


@pytest.mark.parametrize("damage,why", [
    (lambda p: p.write_bytes(b"not a zip"), "not a readable archive"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable archive"),
    (lambda p: _rewrite(p, index=b"[{]"), "the index is not JSON"),
    (lambda p: _rewrite(p, index=json.dumps([{"id": "x"}]).encode()), "an index entry is malformed"),
    (lambda p: _rewrite(p, extra=np.zeros((4, 4, 3), np.uint8)), "holds data that no index entry names"),
    (lambda p: _rewrite(p, scale=2.0), "has no valid"),
])
def test_a_damaged_file_is_a_clear_error_and_forget_all_recovers(tmp_path: Path, damage, why: str) -> None:
    store = MeStore(tmp_path / "me.npz")
    store.add({"a": _unit(1)})
    damage(store.path)
    with pytest.raises(MeStoreError) as info:
        store.list()
    assert why in str(info.value) and "ally me forget --all" in str(info.value)
    with pytest.raises(MeStoreError):
        store.add({"a": _unit(2)})  # never silently reset
    store.forget_all()
    assert store.list() == []


def _rewrite(path: Path, *, index: bytes | None = None, extra: np.ndarray | None = None, scale: float = 1.0) -> None:
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    if index is not None:
        members["index"] = np.frombuffer(index, np.uint8)
    if extra is not None:
        members["photo"] = extra
    for name in members:
        if name != "index":
            members[name] = (members[name] * scale).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, **members)
    path.write_bytes(buf.getvalue())


def test_bad_embeddings_and_a_full_store_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MeStore(tmp_path / "me.npz")
    for bad in ({}, {"a": np.zeros(8)}, {"a": np.full(8, np.nan)}, {"../evil": _unit(1)}):
        with pytest.raises(MeStoreError):
            store.add(bad)
    monkeypatch.setattr("ally.me.MAX_REFERENCES", 2)
    store.add({"a": _unit(1)})
    store.add({"a": _unit(2)})
    with pytest.raises(MeStoreError, match="at most 2 reference photos"):
        store.add({"a": _unit(3)})
    assert MAX_REFERENCES >= 10


def test_only_me_goes_through_the_one_config_loader(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_config(path).only_me is False
    path.write_text("only_me = true\n")
    assert load_config(path).only_me is True
    path.write_text('only_me = "yes"\n')
    with pytest.raises(ConfigError, match="only_me must be true or false"):
        load_config(path)


# -- Engine.enrol ---------------------------------------------------------------------------------------------


def _recognizer(seed: int) -> AlignedRecognizer:
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(16))
    backbone(torch.zeros(1, 3, 32, 32))
    rec = FaceRecognizer(backbone, model_id=f"toy{seed}", family="toy", input_size=32, embedding_dim=16,
                         threshold=None).eval()
    return AlignedRecognizer(rec, face_template(0.0))


def _face(cx: float, cy: float, side: float) -> Face:
    e = side * 0.2
    landmarks = np.array([[cx - e, cy - e], [cx + e, cy - e], [cx, cy], [cx - e * 0.8, cy + e * 1.2],
                          [cx + e * 0.8, cy + e * 1.2]])
    return Face((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), 0.99, landmarks)


def _engine(faces: list[Face]) -> Engine:
    engine = Engine(Config(surrogates=("toy1", "toy2")), cache=SimpleNamespace(), device=torch.device("cpu"))
    engine.__dict__["detector"] = SimpleNamespace(detect=lambda rgb: faces)  # cached_property: set the instance's
    engine.__dict__["surrogates"] = [_recognizer(1), _recognizer(2)]
    return engine


def _photo() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_enrol_embeds_the_largest_face_with_every_surrogate() -> None:
    image = load_image(_photo())
    small, large = _face(40, 40, 30), _face(110, 60, 60)
    enrolment = _engine([small, large]).enrol(image)
    assert enrolment.faces == 2 and enrolment.note == "2 faces; the largest was used"
    assert set(enrolment.embeddings) == {"toy1", "toy2"}
    for model, vector in enrolment.embeddings.items():
        assert vector.shape == (16,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    alone = _engine([large]).enrol(image)  # the same face alone gives the same vectors: the largest was used
    assert alone.note == "one face"
    for model in alone.embeddings:
        assert np.allclose(alone.embeddings[model], enrolment.embeddings[model], atol=1e-5)
    other = _engine([small]).enrol(image)
    assert not np.allclose(other.embeddings["toy1"], enrolment.embeddings["toy1"], atol=1e-3)


def test_enrol_refuses_a_photo_without_a_face() -> None:
    with pytest.raises(NoFaceError, match="no face found"):
        _engine([]).enrol(load_image(_photo()))
