"""The promise itself, with real models on a real photo: after protection at the default level and a JPEG 75
recompression, dlib's recognizer — held out: not in the ensemble, not of a surrogate's family — no longer
matches the protected face to the original photo at its standard threshold (0.6)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.config import Config
from ally.engine import Engine
from ally.eval.evaluators import DlibEvaluator
from ally.imaging.io import load_image
from ally.levels import Level
from ally_models.dlib_runtime import DlibFaceRecognizer

pytest.importorskip("dlib")
pytestmark = pytest.mark.real_models

PHOTO = "fr-biden.jpg"  # face_recognition 1.3.0's test photo: one face, 970 x 2204 px


def _jpeg75(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=75, subsampling="4:2:0")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_held_out_recognizer_no_longer_matches_after_jpeg75(real_model: Callable[[str], dict[str, Path]]) -> None:
    for model in ("mtcnn", "faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet"):
        real_model(model)
    files = real_model("dlib-resnet")
    dlib = DlibEvaluator(DlibFaceRecognizer(files["recognizer.dat"], files["shape5.dat"]))
    image = load_image(real_model("faces-eval")[PHOTO])

    engine = Engine(Config(decoy=False))
    assert not set(engine.config.surrogates) & {"dlib-resnet", "faceapi-resnet"}
    result = engine.protect(image, Level.MEDIUM)
    assert len(result.faces) == 1 and result.cloaked

    boxes, clean = dlib.faces(_jpeg75(image.rgb))
    assert len(boxes) == 1
    assert dlib.matches(clean[0], clean)[0]  # sanity: the evaluator matches the clean face to itself
    boxes_p, protected = dlib.faces(_jpeg75(result.rgb))
    if len(boxes_p):  # not even detected would be protected too; if found, it must not match
        distance = float(np.linalg.norm(protected[0] - clean[0]))
        assert not dlib.matches(protected[0], clean).any(), f"still matches: distance {distance:.3f} ≤ 0.6"
    # and it still looks like the same photo
    diff = np.abs(result.rgb.astype(int) - image.rgb.astype(int))
    assert diff.max() <= 12 and diff.mean() < 2.0
