"""How visible a protection is, in the terms people trust: SSIMULACRA2 and Butteraugli, whole photo and per face.

* **SSIMULACRA2** comes from PyPI ``ssimulacra2`` (a numpy/scipy port of libjxl's tool; Debian's libjxl-tools
  0.7 ships no ``ssimulacra2`` binary). Its public call takes file paths, so :func:`ssimulacra2` runs the same
  steps on arrays (no PNG round trip), with the package's own functions; a unit test pins it to the public call.
  ~90 visually lossless, ~80 high quality, ~70 good, ~50 medium, ≤ 30 low.
* **Butteraugli** is Debian's ``butteraugli`` binary (the max-norm distance, lower is better: < 1 not visible,
  JPEG q75 of a photo ≈ 3.6). When it is not installed the figure is reported as unavailable (``None`` with the
  reason in :data:`butteraugli_unavailable`), never a crash and never a made-up number.

Both are computed at native resolution, on the pixels as written, against the original.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..faces.head import HEAD_PAD, head_box

BUTTERAUGLI = "butteraugli"  # Debian package `butteraugli`
BUTTERAUGLI_TIMEOUT_S = 600
FACE_PAD = HEAD_PAD  # a face region is the head: its box grown by this fraction of its size on each side
MIN_SIDE = 8  # SSIMULACRA2 needs at least 8×8 pixels
AMPLIFY = 8  # the difference panel shows |protected − original| × this (on mid-grey), so faint changes show

Box = tuple[float, float, float, float]


class VisibilityError(ValueError):
    pass


def _check(ref: np.ndarray, test: np.ndarray) -> None:
    if ref.shape != test.shape or ref.ndim != 3 or ref.shape[2] != 3:
        raise VisibilityError(f"images must be the same H×W×3 size, got {ref.shape} and {test.shape}")
    if min(ref.shape[:2]) < MIN_SIDE:
        raise VisibilityError(f"images must be at least {MIN_SIDE} px on each side, got {ref.shape[:2]}")


def ssimulacra2(ref: np.ndarray, test: np.ndarray) -> float:
    """SSIMULACRA2 of ``test`` against ``ref`` (uint8 RGB, same size): 100 identical, lower is worse.

    The body of ``ssimulacra2.compute_ssimulacra2`` (0.3.0) without the file loading and alpha handling.
    """
    from ssimulacra2 import ssimulacra2 as s2

    _check(ref, test)
    lin1 = s2.srgb_to_linear(ref.astype(np.float64))
    lin2 = s2.srgb_to_linear(test.astype(np.float64))
    msssim = s2.Msssim()
    for scale in range(s2.kNumScales):
        if min(lin1.shape[:2]) < 8:
            break
        img1 = s2.make_positive_xyb(s2.linear_rgb_to_xyb(lin1))
        img2 = s2.make_positive_xyb(s2.linear_rgb_to_xyb(lin2))
        sigma1_sq, sigma2_sq, sigma12 = (s2.blur_image(a * b) for a, b in ((img1, img1), (img2, img2), (img1, img2)))
        mu1, mu2 = s2.blur_image(img1), s2.blur_image(img2)
        data = s2.MsssimScale()
        data.avg_ssim = s2.ssim_map(mu1, mu2, sigma1_sq, sigma2_sq, sigma12)
        data.avg_edgediff = s2.edge_diff_map(img1, mu1, img2, mu2)
        msssim.scales.append(data)
        del img1, img2, sigma1_sq, sigma2_sq, sigma12, mu1, mu2
        if scale < s2.kNumScales - 1:
            lin1, lin2 = s2.downsample(lin1, 2, 2), s2.downsample(lin2, 2, 2)
    return float(msssim.score())


butteraugli_unavailable: str | None = None  # why the last butteraugli() returned None


def butteraugli(ref: np.ndarray, test: np.ndarray) -> float | None:
    """Butteraugli distance of ``test`` to ``ref`` (0 identical), or None when the binary is unavailable."""
    global butteraugli_unavailable
    _check(ref, test)
    exe = shutil.which(BUTTERAUGLI)
    if exe is None:
        butteraugli_unavailable = f"`{BUTTERAUGLI}` is not installed (Debian: apt-get install butteraugli)"
        return None
    with tempfile.TemporaryDirectory(prefix="ally-ba-") as tmp:
        a, b = Path(tmp, "ref.png"), Path(tmp, "test.png")
        Image.fromarray(ref).save(a, compress_level=1)
        Image.fromarray(test).save(b, compress_level=1)
        proc = subprocess.run([exe, str(a), str(b)], capture_output=True, text=True, timeout=BUTTERAUGLI_TIMEOUT_S)
    try:
        if proc.returncode != 0:
            raise ValueError(proc.stderr.strip() or f"exit status {proc.returncode}")
        value = float(proc.stdout.split()[0])
    except (ValueError, IndexError) as e:
        butteraugli_unavailable = f"`{BUTTERAUGLI}` failed: {e}"
        return None
    butteraugli_unavailable = None
    return value


def face_region(box: Box, shape: tuple[int, ...], pad: float = FACE_PAD) -> tuple[int, int, int, int]:
    """Integer crop (x1, y1, x2, y2) of a face box grown by ``pad`` of its size (the head), clipped to the image."""
    return head_box(box, shape, pad)


@dataclass
class Score:
    ssimulacra2: float
    butteraugli: float | None  # None: binary unavailable


@dataclass
class Visibility:
    """Scores of a protected photo against its original: the whole photo and each face region."""

    whole: Score
    faces: list[Score] = field(default_factory=list)
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    butteraugli_note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def score(ref: np.ndarray, test: np.ndarray, with_butteraugli: bool = True) -> Score:
    return Score(ssimulacra2(ref, test), butteraugli(ref, test) if with_butteraugli else None)


def measure(original: np.ndarray, protected: np.ndarray, boxes: list[Box], with_butteraugli: bool = True,
            pad: float = FACE_PAD) -> Visibility:
    """SSIMULACRA2 and Butteraugli of ``protected`` against ``original``, whole and per face box (native res)."""
    _check(original, protected)
    whole = score(original, protected, with_butteraugli)
    note = butteraugli_unavailable if with_butteraugli and whole.butteraugli is None else None
    faces, regions = [], []
    for box in boxes:
        x1, y1, x2, y2 = r = face_region(box, original.shape, pad)
        if min(x2 - x1, y2 - y1) < MIN_SIDE:
            continue
        faces.append(score(original[y1:y2, x1:x2], protected[y1:y2, x1:x2], with_butteraugli))
        regions.append(r)
    return Visibility(whole, faces, regions, note)


def side_by_side(original: np.ndarray, protected: np.ndarray, box: Box, pad: float = FACE_PAD,
                 amplify: float = AMPLIFY, gap: int = 8) -> np.ndarray:
    """A 1:1 strip: original crop | protected crop | amplified difference (mid-grey is no change)."""
    _check(original, protected)
    x1, y1, x2, y2 = face_region(box, original.shape, pad)
    a = original[y1:y2, x1:x2].astype(np.int16)
    b = protected[y1:y2, x1:x2].astype(np.int16)
    diff = np.clip(128 + amplify * (b - a), 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    out = np.full((h, 3 * w + 2 * gap, 3), 255, np.uint8)
    out[:, :w] = a
    out[:, w + gap:2 * w + gap] = b
    out[:, 2 * w + 2 * gap:] = diff
    return out
