"""The emotion receipt's logic: both photos as the site serves them, each face found again, top class compared."""

from __future__ import annotations

import numpy as np

from ally.faces.detect import Face
from ally.protect.receipt import ExpressionReceipt, check_expressions
from ally.eval.sites import SiteCondition

AS_IS = SiteCondition("as is", None, None)


class BrightnessReader:
    """Reads 'happy' on a bright face and 'sad' on a dark one (a stand-in with a readable rule)."""

    model_id = "stand-in"

    def read(self, rgb: np.ndarray, boxes) -> np.ndarray:
        out = []
        for x1, y1, x2, y2 in boxes:
            bright = rgb[int(y1):int(y2), int(x1):int(x2)].mean() / 255
            p = np.full(7, 0.01, np.float32)
            p[1 if bright > 0.5 else 2] = 0.94
            out.append(p)
        return np.array(out).reshape(-1, 7)


def _face(x1: float, y1: float, x2: float, y2: float) -> Face:
    return Face((x1, y1, x2, y2), 0.99, np.zeros((5, 2)))


def test_a_face_whose_top_class_changes_is_hidden_and_one_that_keeps_it_is_still_read():
    original = np.full((60, 120, 3), 220, np.uint8)
    protected = original.copy()
    protected[10:50, 70:110] = 40  # the second face darkened: its reading changes
    faces = [_face(10, 10, 50, 50), _face(70, 10, 110, 50)]
    receipts = check_expressions(BrightnessReader(), lambda rgb: faces, original, protected, faces, AS_IS)
    kept, hidden = receipts
    assert (kept.found, kept.clean, kept.after, kept.changed) == (True, "happy", "happy", False)
    assert (hidden.found, hidden.clean, hidden.after, hidden.changed) == (True, "happy", "sad", True)
    assert hidden.after_confidence == np.float32(0.01) and hidden.clean_confidence > 0.9
    assert "no longer reads happy" in hidden.line() and "STILL READS happy" in kept.line()


def test_a_face_not_found_again_is_reported_as_not_found_not_as_hidden():
    rgb = np.full((60, 60, 3), 220, np.uint8)
    face = _face(10, 10, 50, 50)
    # the detector finds the face in the bright original only: in the protected photo it is gone
    receipts = check_expressions(BrightnessReader(), lambda img: [face] if img.mean() > 128 else [], rgb,
                                 np.full_like(rgb, 30), [face], AS_IS)
    (r,) = receipts
    assert not r.found and not r.changed and r.after is None and r.clean == "happy"
    assert "cannot find this face" in r.line()
    assert ExpressionReceipt(**{**r.__dict__}).as_dict()["after_confidence"] is None
