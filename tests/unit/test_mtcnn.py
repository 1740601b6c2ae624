"""MTCNN detector: NMS, real photos, edge cases (blank, rotated, small, 12 MP, grey)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from ally.faces.detect import Face, FaceDetector
from ally.faces.mtcnn import MTCNN, nms
from ally.imaging.io import load_image
from PIL import Image

# Faces in face-api's demo photos with score >= 0.95, verified by drawing the
# boxes. A few extra low-score detections (downward-looking faces, hair) are
# tolerated on top.
CLEAR_FACES = {1: 3, 2: 1, 3: 3, 4: 4, 5: 5, 6: 4}
MAX_EXTRA = 2


@pytest.fixture(scope="module")
def detector(mtcnn_weights: tuple[Path, Path, Path]) -> FaceDetector:
    return FaceDetector(*mtcnn_weights)


@pytest.fixture(scope="module")
def sample1(sample_photo) -> Image.Image:
    with Image.open(sample_photo(1)) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def sample1_faces(detector: FaceDetector, sample1: Image.Image) -> list[Face]:
    return detector.detect(sample1)


def _centres(faces: list[Face]) -> np.ndarray:
    return np.array([[(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2] for f in faces])


def _assert_same_faces(found: list[Face], expected: list[Face], scale: float = 1.0, tol: float = 0.1) -> None:
    """Same number of faces, centres within ``tol`` x face size after scaling ``expected``."""
    assert len(found) == len(expected)
    for face in expected:
        centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2]) * scale
        size = (face.box[2] - face.box[0]) * scale
        distance = np.linalg.norm(_centres(found) - centre, axis=1).min()
        assert distance < tol * size, f"no face near {centre} (closest {distance:.1f} px)"


# -- NMS (no weights needed) --------------------------------------------------------


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.8, 0.9, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]


def test_nms_min_mode_drops_nested_box() -> None:
    boxes = torch.tensor([[0, 0, 100, 100], [10, 10, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.7, mode="union").tolist() == [0, 1]  # IoU is only 0.04
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [0]


def test_nms_empty() -> None:
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0


def test_rejects_too_small_min_face(mtcnn_weights: tuple[Path, Path, Path]) -> None:
    with pytest.raises(ValueError):
        MTCNN(*mtcnn_weights, min_face_size=8)


# -- real photos ------------------------------------------------------------------------


@pytest.mark.parametrize("index", sorted(CLEAR_FACES))
def test_group_photos(detector: FaceDetector, sample_photo, index: int) -> None:
    with Image.open(sample_photo(index)) as image:
        faces = detector.detect(image)
        width, height = image.size
    clear = [f for f in faces if f.score >= 0.95]
    assert len(clear) == CLEAR_FACES[index]
    assert len(faces) <= CLEAR_FACES[index] + MAX_EXTRA
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    for face in clear:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        left_eye, right_eye, _nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < min(mouth_left[1], mouth_right[1])
        assert np.all((face.landmarks >= [x1, y1]) & (face.landmarks <= [x2, y2]))


def test_no_faces_on_blank_or_noise(detector: FaceDetector) -> None:
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_tiny_image_has_no_pyramid(detector: FaceDetector) -> None:
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []


def test_exif_rotated_photo_finds_same_faces(
    detector: FaceDetector, sample1: Image.Image, sample1_faces: list[Face]
) -> None:
    # Orientation 6 = "rotate 90 deg clockwise to display": store the pixels turned the other way.
    stored = sample1.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[274] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    loaded = load_image(buffer.getvalue())
    assert loaded.orientation == 6 and loaded.rgb.shape == (sample1.height, sample1.width, 3)
    _assert_same_faces(detector.detect(loaded.rgb), sample1_faces)


def test_small_faces(detector: FaceDetector, sample1: Image.Image, sample1_faces: list[Face]) -> None:
    # The ~190 px faces become ~25 px.
    small = sample1.resize((sample1.width * 2 // 15, sample1.height * 2 // 15), Image.Resampling.LANCZOS)
    faces = detector.detect(small)
    assert len(faces) == 3
    assert all(18 <= f.box[2] - f.box[0] <= 34 for f in faces)
    _assert_same_faces(faces, sample1_faces, scale=small.width / sample1.width, tol=0.25)


def test_twelve_megapixel_photo(detector: FaceDetector, sample1: Image.Image, sample1_faces: list[Face]) -> None:
    scale = 4242 / sample1.width  # 4242 x 2828 = 12 MP
    big = sample1.resize((4242, 2828), Image.Resampling.BICUBIC)
    faces = detector.detect(big)
    _assert_same_faces(faces, sample1_faces, scale=scale)
    assert detector.mtcnn.smallest_face(4242, 2828) == pytest.approx(12 * 4242 / 1600)


def test_small_face_in_huge_photo(detector: FaceDetector, sample1: Image.Image, sample1_faces: list[Face]) -> None:
    face = sample1_faces[0]
    crop = sample1.crop(tuple(round(v) for v in face.box))
    canvas = Image.new("RGB", (4000, 3000), (120, 120, 120))
    canvas.paste(crop.resize((40, 40), Image.Resampling.LANCZOS), (2500, 700))
    faces = detector.detect(canvas)
    assert len(faces) == 1
    x1, y1, x2, _ = faces[0].box
    assert abs(x1 - 2500) < 8 and abs(y1 - 700) < 8 and 30 < x2 - x1 < 50


def test_face_touching_the_border(detector: FaceDetector, sample1: Image.Image, sample1_faces: list[Face]) -> None:
    face = sample1_faces[0]
    x1, y1, x2, y2 = (round(v) for v in face.box)
    cut = sample1.crop((x1 + (x2 - x1) // 5, y1 - 100, x2 + 300, y2 + 300))  # left fifth cut off
    assert len(detector.detect(cut)) >= 1


def test_grey_photo(detector: FaceDetector, sample1: Image.Image) -> None:
    grey = sample1.reduce(2).convert("L")  # half size keeps the test quick
    faces = detector.detect(grey)
    assert len([f for f in faces if f.score >= 0.95]) == 3
    assert len(detector.detect(np.asarray(grey))) == len(faces)


def test_rgba_array_accepted(detector: FaceDetector, sample1: Image.Image) -> None:
    half = sample1.reduce(2)
    assert len(detector.detect(np.asarray(half.convert("RGBA")))) == len(detector.detect(half)) >= 3
