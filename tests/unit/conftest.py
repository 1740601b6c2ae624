"""Shared fixtures for unit tests: locate external test assets (weights, photos)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

ASSETS_ENV = "ALLY_TEST_ASSETS_DIR"
_DEFAULT_ASSETS = "/tmp/src"
_FACENET_WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"
_SAMPLES = Path("vladmandic-face-api-1.7.15/package/demo")


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """Directory with external test assets (env ALLY_TEST_ASSETS_DIR, default /tmp/src)."""
    path = Path(os.environ.get(ASSETS_ENV, _DEFAULT_ASSETS))
    if not path.is_dir():
        pytest.skip(f"test assets not found: {path} does not exist (set {ASSETS_ENV})")
    return path


@pytest.fixture(scope="session")
def mtcnn_weights(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(pnet, rnet, onet) state_dict paths.

    Uses ``<assets>/mtcnn/{pnet,rnet,onet}.pt`` if present, else extracts them
    from the facenet-pytorch 2.6.0 wheel in the assets directory.
    """
    names = ("pnet.pt", "rnet.pt", "onet.pt")
    direct = [assets_dir / "mtcnn" / name for name in names]
    if all(p.is_file() for p in direct):
        return direct[0], direct[1], direct[2]
    wheel = assets_dir / _FACENET_WHEEL
    if not wheel.is_file():
        pytest.skip(f"MTCNN weights not found: need {assets_dir / 'mtcnn'}/*.pt or {wheel} (set {ASSETS_ENV})")
    out = tmp_path_factory.mktemp("mtcnn")
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            (out / name).write_bytes(archive.read(f"facenet_pytorch/data/{name}"))
    return out / names[0], out / names[1], out / names[2]


@pytest.fixture(scope="session")
def sample_photo(assets_dir: Path):
    """Function returning the path of face-api demo photo ``sample{i}.jpg`` (group photos, 1920 px)."""

    def get(index: int) -> Path:
        path = assets_dir / _SAMPLES / f"sample{index}.jpg"
        if not path.is_file():
            pytest.skip(f"sample photo not found: {path} (set {ASSETS_ENV})")
        return path

    return get
