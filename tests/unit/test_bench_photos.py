"""`ally bench` builds its cases from real photos: each case must hold the faces it is named after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ally.bench import CASES, make_case_photo
from ally.config import Config
from ally.engine import Engine

pytestmark = pytest.mark.real_models


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("1MP")])
def test_bench_case_photos_have_their_faces(case: str, real_model: Callable[[str], dict[str, Path]]) -> None:
    real_model("mtcnn"), real_model("faceapi-samples")
    megapixels, faces = CASES[case]
    rgb = make_case_photo(megapixels, faces)
    assert abs(rgb.shape[0] * rgb.shape[1] / 1e6 - megapixels) < 0.05
    assert len(Engine(Config()).detector.detect(rgb)) >= faces
