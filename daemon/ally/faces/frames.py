"""How other systems crop a face, expressed as points a recognizer can be aligned to.

A recognizer in the attack ensemble aligns a face by fitting a similarity from the five landmarks to its own
template. Other systems cut the face differently: dlib's 150 px chips (their own 5-point model, padding 0.25,
forehead in and chin nearly out), the tight ArcFace 112 px template, or no alignment at all (a square box
around a detector's box, with its own margin), and their landmarks are off by a few degrees. A cloak that only
works on our crop does not carry over (Croft et al. 2025: the detector choice alone changed attack success by up
to 78 %).

Every such crop is a similarity ``M`` from the image to the unit square. Any ``M`` can be fed to a recognizer
that aligns by its own template ``T``: give it the points ``M⁻¹(T)``, whose exact fit to ``T`` is ``M``. So the
cloak can show every surrogate every kind of crop without changing the surrogates.
"""

from __future__ import annotations

import math

import numpy as np

from .align import ARCFACE_TEMPLATE, similarity_transform

# MTCNN's five points (eyes, nose, mouth corners) in dlib's own aligned chips (``get_face_chip``, 150 px,
# padding 0.25), normalised: the mean over 63 faces of the eval set's tune split (std ≤ 0.033). Geometry only:
# no dlib model is used by the cloak.
DLIB_CHIP_TEMPLATE = np.array([[0.3090, 0.3010], [0.6766, 0.3012], [0.4933, 0.5159], [0.3308, 0.6833],
                               [0.6634, 0.6820]])
DLIB_CHIP_TEMPLATE.setflags(write=False)

KINDS = ("own", "arcface", "dlib-chip", "box")
BOX_MARGIN = (0.0, 0.4)  # box crops: the square around the detector's box grown by this fraction per side
MAX_ROTATION_DEG = 10.0  # other landmark models disagree on the roll by a few degrees


def _inverse(m: np.ndarray) -> np.ndarray:
    inv = np.empty((2, 3))
    inv[:, :2] = np.linalg.inv(m[:, :2])
    inv[:, 2] = -inv[:, :2] @ m[:, 2]
    return inv


def _rotated(m: np.ndarray, degrees: float) -> np.ndarray:
    """``m`` followed by a rotation of the unit square about its centre."""
    if not degrees:
        return m
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out = np.empty((2, 3))
    out[:, :2] = r @ m[:, :2]
    out[:, 2] = r @ (m[:, 2] - 0.5) + 0.5
    return out


def frame(kind: str, landmarks: np.ndarray, box: np.ndarray, template: np.ndarray, margin: float = 0.2,
          degrees: float = 0.0) -> np.ndarray:
    """The similarity [2,3] from image pixels to the unit square of one face's crop of ``kind``.

    ``own``: the recognizer's own ``template``; ``arcface``: the tight ArcFace template; ``dlib-chip``: dlib's
    chip; ``box``: the square around ``box`` (x1, y1, x2, y2) grown by ``margin`` per side, unaligned."""
    if kind == "own":
        m = similarity_transform(landmarks, template)
    elif kind == "arcface":
        m = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    elif kind == "dlib-chip":
        m = similarity_transform(landmarks, DLIB_CHIP_TEMPLATE)
    elif kind == "box":
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        m = np.array([[1 / side, 0, 0.5 - cx / side], [0, 1 / side, 0.5 - cy / side]])
    else:
        raise ValueError(f"unknown crop kind {kind!r}; choose from {', '.join(KINDS)}")
    return _rotated(m, degrees)


def points_for(kind: str, landmarks: np.ndarray, boxes: np.ndarray, template: np.ndarray, margin: float = 0.2,
               degrees: np.ndarray | None = None) -> np.ndarray:
    """[F,5,2] points that make a recognizer aligning to ``template`` crop each face as ``kind`` does.

    ``landmarks`` [F,5,2] and ``boxes`` [F,4] in image pixels; ``degrees`` [F] rolls (default none)."""
    out = np.empty_like(np.asarray(landmarks, dtype=np.float64))
    tpl = np.asarray(template, dtype=np.float64)
    for f in range(len(out)):
        m = frame(kind, landmarks[f], boxes[f], tpl, margin, 0.0 if degrees is None else float(degrees[f]))
        inv = _inverse(m)
        out[f] = tpl @ inv[:, :2].T + inv[:, 2]
    return out
