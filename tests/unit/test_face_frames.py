"""Crops as other systems cut them (ally.faces.frames): any crop frame, fed to a recognizer as points."""

from __future__ import annotations

import numpy as np
import pytest

from ally.faces import frames
from ally.faces.align import ARCFACE_TEMPLATE, face_template, similarity_transform

LANDMARKS = np.array([[[110.0, 130.0], [170.0, 128.0], [141.0, 165.0], [118.0, 195.0], [164.0, 194.0]]])
BOXES = np.array([[85.0, 85.0, 195.0, 225.0]])


@pytest.mark.parametrize("kind", frames.KINDS)
@pytest.mark.parametrize("degrees", [0.0, 7.0])
def test_a_recognizer_aligning_the_points_to_its_template_crops_the_frame(kind: str, degrees: float):
    template = face_template(0.1)  # a recognizer with a looser crop than ArcFace's
    points = frames.points_for(kind, LANDMARKS, BOXES, template, margin=0.3, degrees=np.array([degrees]))[0]
    fitted = similarity_transform(points, template)  # what the recognizer's own alignment computes
    wanted = frames.frame(kind, LANDMARKS[0], BOXES[0], template, margin=0.3, degrees=degrees)
    assert np.allclose(fitted, wanted, atol=1e-9)


def test_the_kinds_cut_different_crops():
    centres, sides = [], []
    for kind in frames.KINDS:
        m = frames.frame(kind, LANDMARKS[0], BOXES[0], ARCFACE_TEMPLATE, margin=0.2)
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        centres.append(inv[:2] @ [0.5, 0.5, 1])
        sides.append(abs(np.linalg.det(inv[:2, :2])) ** 0.5)
    # dlib's chip is centred on the nose, ArcFace's just under the eyes (more forehead, less chin); dlib's is tighter.
    arc, dlib = frames.KINDS.index("arcface"), frames.KINDS.index("dlib-chip")
    assert centres[dlib][1] > centres[arc][1] + 15
    assert sides[dlib] < sides[arc]
    box = frames.KINDS.index("box")
    assert sides[box] == pytest.approx(140 * 1.4)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown crop kind"):
        frames.frame("mystery", LANDMARKS[0], BOXES[0], ARCFACE_TEMPLATE)
