"""dlib's original face recognition runtime, used as a held-out black-box evaluator.

This is the pipeline of the ``face_recognition`` package (and of dlib's own
``dnn_face_recognition_ex``), run by dlib's C++ code through its Python bindings, not by torch:

1. detect faces on its own: dlib's HOG frontal face detector (``get_frontal_face_detector``,
   upsampled once), or optionally the CNN MMOD detector (``mmod_human_face_detector.dat``);
2. five-point landmarks with ``shape_predictor_5_face_landmarks.dat``;
3. ``face_recognition_model_v1.compute_face_descriptor`` (dlib ResNet, 128-d, 150x150 aligned
   chips; ``num_jitters`` 0 and 1 both mean no jitter, jittering starts at 2);
4. two faces are the same person when the euclidean distance of their descriptors is at most
   ``THRESHOLD = 0.6`` (``face_recognition.compare_faces``' default tolerance; dlib's documented
   threshold, 99.38% on LFW).

On a CPU the HOG detector takes about 0.2-1.5 s for a 1-3 MP photo; the CNN detector is far slower
(15-140 s per such photo on 2 cores), so it is opt-in.

The detector is independent of Ally's MTCNN, so a protected photo is judged the way a real-world
recognizer would see it: a face that is no longer found counts as protected, too.

Weights: ``face_recognition_models==0.3.0`` (PyPI sdist) carries all ``.dat`` files;
the manifest's ``dlib-resnet`` model points at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels (x2/y2 exclusive, dlib's right/bottom + 1)

RECOGNIZER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE5_FILE = "shape_predictor_5_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"

THRESHOLD = 0.6


def _dlib() -> Any:
    try:
        import dlib  # noqa: PLC0415 - optional dependency (the "eval"/"test" extras)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("dlib is not installed: pip install 'ally[eval]' (dlib-bin)") from exc
    return dlib


def _as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(rgb)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and float(image.max()) <= 1.0:
            image = image * 255.0
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class DlibWeights:
    """Paths of the ``.dat`` files (``cnn_detector`` is optional)."""

    recognizer: Path
    shape5: Path
    cnn_detector: Path | None = None

    @classmethod
    def from_dir(cls, directory: str | Path) -> "DlibWeights":
        """Find the files by their upstream names anywhere below ``directory``."""
        root = Path(directory)

        def find(name: str) -> Path | None:
            direct = root / name
            if direct.is_file():
                return direct
            return next((p for p in sorted(root.rglob(name)) if p.is_file()), None)

        recognizer, shape5 = find(RECOGNIZER_FILE), find(SHAPE5_FILE)
        if recognizer is None or shape5 is None:
            raise FileNotFoundError(f"{RECOGNIZER_FILE} and {SHAPE5_FILE} not found under {root}")
        return cls(recognizer, shape5, find(CNN_DETECTOR_FILE))


class DlibFaceRecognizer:
    """dlib's HOG (or CNN) detector + 5-point shape predictor + ResNet descriptor, as a black box.

    ``detect`` and ``descriptors`` take RGB ``uint8`` arrays (HxWx3). Boxes are
    ``(x1, y1, x2, y2)`` integer pixels. Descriptors are ``float32 [F, 128]``.
    """

    THRESHOLD = THRESHOLD

    def __init__(
        self,
        recognizer_path: str | Path,
        shape5_path: str | Path,
        cnn_detector_path: str | Path | None = None,
        *,
        use_cnn: bool = False,
        upsample: int = 1,
        num_jitters: int = 0,
    ) -> None:
        dlib = _dlib()
        for path in (recognizer_path, shape5_path, cnn_detector_path):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(str(path))
        if use_cnn and cnn_detector_path is None:
            raise ValueError("use_cnn=True needs cnn_detector_path (mmod_human_face_detector.dat)")
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector()
        self._cnn = dlib.cnn_face_detection_model_v1(str(cnn_detector_path)) if cnn_detector_path else None
        self._shape5 = dlib.shape_predictor(str(shape5_path))
        self._net = dlib.face_recognition_model_v1(str(recognizer_path))
        self.use_cnn = use_cnn
        self.upsample = upsample
        self.num_jitters = num_jitters

    @classmethod
    def from_weights(cls, weights: DlibWeights, **kwargs: Any) -> "DlibFaceRecognizer":
        return cls(weights.recognizer, weights.shape5, weights.cnn_detector, **kwargs)

    @classmethod
    def from_dir(cls, directory: str | Path, **kwargs: Any) -> "DlibFaceRecognizer":
        return cls.from_weights(DlibWeights.from_dir(directory), **kwargs)

    # -- detection -------------------------------------------------------------------------------

    def _rects(self, image: np.ndarray, use_cnn: bool, upsample: int) -> list[Any]:
        if use_cnn:
            if self._cnn is None:
                raise ValueError("no CNN detector loaded (pass cnn_detector_path)")
            return [d.rect for d in self._cnn(image, upsample)]
        return list(self._hog(image, upsample))

    def detect(self, rgb: np.ndarray, *, use_cnn: bool | None = None, upsample: int | None = None) -> list[Box]:
        """Face boxes found by dlib's own detector (HOG by default), clipped to the image."""
        image = _as_rgb_uint8(rgb)
        rects = self._rects(image, self.use_cnn if use_cnn is None else use_cnn,
                            self.upsample if upsample is None else upsample)
        h, w = image.shape[:2]
        boxes: list[Box] = []
        for r in rects:
            x1, y1 = max(0, r.left()), max(0, r.top())
            x2, y2 = min(w, r.right() + 1), min(h, r.bottom() + 1)
            if x2 > x1 and y2 > y1:
                boxes.append((int(x1), int(y1), int(x2), int(y2)))
        return boxes

    # -- descriptors -----------------------------------------------------------------------------

    def shapes(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[Any]:
        """dlib ``full_object_detection`` (5 landmarks) for each box."""
        image = _as_rgb_uint8(rgb)
        out = []
        for box in boxes:
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            out.append(self._shape5(image, self._dlib.rectangle(x1, y1, x2 - 1, y2 - 1)))
        return out

    def descriptors(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Sequence[float]] | None = None,
        *,
        num_jitters: int | None = None,
    ) -> np.ndarray:
        """128-d descriptors ``[F, 128]`` for ``boxes`` (default: the faces ``detect`` finds)."""
        image = _as_rgb_uint8(rgb)
        if boxes is None:
            boxes = self.detect(image)
        if len(boxes) == 0:
            return np.zeros((0, 128), dtype=np.float32)
        jitters = self.num_jitters if num_jitters is None else num_jitters
        shapes = self._dlib.full_object_detections()
        for shape in self.shapes(image, boxes):
            shapes.append(shape)
        vectors = self._net.compute_face_descriptor(image, shapes, jitters)
        return np.asarray([np.asarray(v, dtype=np.float32) for v in vectors], dtype=np.float32).reshape(-1, 128)

    def chips(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]], size: int = 150, padding: float = 0.25) -> np.ndarray:
        """dlib's aligned face chips ``[F, size, size, 3]`` uint8 — the exact input of dlib's ResNet."""
        image = _as_rgb_uint8(rgb)
        shapes = self.shapes(image, boxes)
        return np.asarray([self._dlib.get_face_chip(image, s, size=size, padding=padding) for s in shapes],
                          dtype=np.uint8).reshape(-1, size, size, 3)

    def faces(self, rgb: np.ndarray) -> tuple[list[Box], np.ndarray]:
        """Detect, then describe: ``(boxes, descriptors)``."""
        image = _as_rgb_uint8(rgb)
        boxes = self.detect(image)
        return boxes, self.descriptors(image, boxes)

    # -- comparison ------------------------------------------------------------------------------

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Euclidean distance; broadcasts ``[128]`` / ``[N,128]`` against ``[128]`` / ``[M,128]``."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.ndim == 1 and b.ndim == 1:
            return float(np.linalg.norm(a - b))
        return np.linalg.norm(np.atleast_2d(a)[:, None, :] - np.atleast_2d(b)[None, :, :], axis=-1)

    def match(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Same person by the face_recognition rule: distance <= 0.6."""
        return bool(self.distance(np.ravel(a), np.ravel(b)) <= self.THRESHOLD)
