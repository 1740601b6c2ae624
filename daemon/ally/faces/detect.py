"""Face detection API: :class:`Face` records from a PIL image or array."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ally.faces.mtcnn import MTCNN

__all__ = ["Face", "FaceDetector", "to_rgb_array"]


# eq=False: field-wise == on numpy arrays is ambiguous; faces compare by identity.
@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in continuous pixel coordinates of the detected image.

    The centre of pixel ``(col i, row j)`` is ``(i + 0.5, j + 0.5)``; ``box``
    is ``(x1, y1, x2, y2)`` and may extend past the image edges.
    ``landmarks`` is [5,2]: left eye, right eye, nose, mouth left, mouth right
    (left/right as seen in the image).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Return a uint8 [H,W,3] RGB view/copy of a PIL image or array.

    Arrays may be [H,W] grey, [H,W,3] RGB or [H,W,4] RGBA (alpha ignored).
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[:, :, :3]
    raise ValueError(f"expected an [H,W], [H,W,3] or [H,W,4] array, got shape {array.shape}")


class FaceDetector:
    """Finds faces with MTCNN.

    Args:
        pnet_path, rnet_path, onet_path: MTCNN state_dict files.
        min_score: drop faces whose final score is below this.
        **mtcnn_options: forwarded to :class:`~ally.faces.mtcnn.MTCNN`
            (``min_face_size``, ``thresholds``, ``factor``, ``max_side``).
    """

    def __init__(
        self,
        pnet_path: str | Path,
        rnet_path: str | Path,
        onet_path: str | Path,
        *,
        min_score: float = 0.0,
        **mtcnn_options: object,
    ) -> None:
        self.mtcnn = MTCNN(pnet_path, rnet_path, onet_path, **mtcnn_options)  # type: ignore[arg-type]
        self.min_score = min_score

    def detect(self, image: Image.Image | np.ndarray) -> list[Face]:
        """Detect faces; largest box first."""
        found = self.mtcnn.detect(to_rgb_array(image))
        faces = [
            Face(box=tuple(float(v) for v in box), score=float(score), landmarks=landmarks.copy())  # type: ignore[arg-type]
            for box, score, landmarks in zip(found.boxes, found.scores, found.landmarks, strict=True)
            if score >= self.min_score
        ]
        for face in faces:
            face.landmarks.setflags(write=False)
        return sorted(faces, key=lambda f: f.area, reverse=True)
