"""Fixtures for the model tests: the real pretrained weight files, from the model cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# model_id -> (graph JSON or weights manifest, binary shard): the cache's file names for each model.
_FILES: dict[str, tuple[str, str]] = {
    "faceres": ("model.json", "model.bin"),
    "faceres-deep": ("model.json", "model.bin"),
    "mobileface": ("model.json", "model.bin"),
    "mobilefacenet": ("model.json", "model.bin"),
    "faceapi-resnet": ("manifest.json", "model.bin"),
}


@pytest.fixture(scope="session")
def model_files(real_model: Callable[[str], dict[str, Path]]) -> Callable[[str], tuple[Path, Path]]:
    """``model_files(model_id) -> (json_or_manifest, bin)``."""

    def lookup(model_id: str) -> tuple[Path, Path]:
        files = real_model(model_id)
        first, second = _FILES[model_id]
        return files[first], files[second]

    return lookup
