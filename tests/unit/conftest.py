"""Fixtures for unit tests that need real weights or photos: MTCNN and the face-api sample photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mtcnn_weights(real_model: Callable[[str], dict[str, Path]]) -> tuple[Path, Path, Path]:
    """(pnet, rnet, onet) state_dict paths."""
    files = real_model("mtcnn")
    return files["pnet.pt"], files["rnet.pt"], files["onet.pt"]


@pytest.fixture(scope="session")
def sample_photo(real_model: Callable[[str], dict[str, Path]]) -> Callable[[int], Path]:
    """Function returning the path of face-api demo photo ``sample{i}.jpg`` (group photos, 1920 px)."""
    files = real_model("faceapi-samples")
    return lambda index: files[f"sample{index}.jpg"]
