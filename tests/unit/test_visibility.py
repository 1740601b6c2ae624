"""The visibility figures: SSIMULACRA2 and Butteraugli behave like the published tools on real-looking images."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from ally.eval import visibility


def _photo(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth gradient with texture and an edge: JPEG damages it measurably, as it does a photo."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 64], axis=2)
    base[h // 3:2 * h // 3, w // 4:w // 2] = (230, 40, 60)
    noise = rng.normal(0, 40, (h, w, 3)).astype(np.float32)
    texture = gaussian_filter(noise, sigma=(1.5, 1.5, 0))  # photo-like grain, not per-pixel noise
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_identical_images_score_100():
    a = _photo()
    assert visibility.ssimulacra2(a, a) == pytest.approx(100.0)


def test_jpeg_q30_scores_worse_than_q95():
    a = _photo()
    q95, q30 = visibility.ssimulacra2(a, _jpeg(a, 95)), visibility.ssimulacra2(a, _jpeg(a, 30))
    assert q30 < q95 - 10
    assert q95 < 100


def test_matches_the_package_public_call(tmp_path):
    from ssimulacra2 import compute_ssimulacra2

    a, b = _photo(), _jpeg(_photo(), 40)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    assert visibility.ssimulacra2(a, b) == pytest.approx(compute_ssimulacra2(tmp_path / "a.png", tmp_path / "b.png"))


def test_mismatched_or_tiny_images_are_refused():
    a = _photo()
    with pytest.raises(visibility.VisibilityError, match="same"):
        visibility.ssimulacra2(a, a[:50])
    with pytest.raises(visibility.VisibilityError, match="at least"):
        visibility.ssimulacra2(a[:4, :4], a[:4, :4])


@pytest.mark.skipif(shutil.which("butteraugli") is None, reason="Debian butteraugli not installed")
def test_butteraugli_zero_for_identical_and_orders_jpeg_qualities():
    a = _photo()
    assert visibility.butteraugli(a, a) == pytest.approx(0.0, abs=1e-6)
    assert visibility.butteraugli(a, _jpeg(a, 30)) > visibility.butteraugli(a, _jpeg(a, 95))


def test_missing_butteraugli_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(visibility, "BUTTERAUGLI", "no-such-butteraugli-binary")
    a = _photo()
    assert visibility.butteraugli(a, a) is None
    assert "not installed" in visibility.butteraugli_unavailable
    vis = visibility.measure(a, _jpeg(a, 50), [(20, 20, 60, 60)])
    assert vis.whole.butteraugli is None and vis.faces[0].butteraugli is None
    assert "not installed" in vis.butteraugli_note
    assert vis.whole.ssimulacra2 < 100


def test_face_regions_only_see_their_own_pixels():
    a = _photo()
    b = a.copy()
    b[70:90, 100:120] = 0  # damage outside the face region
    vis = visibility.measure(a, b, [(10, 10, 40, 40)], with_butteraugli=False)
    assert vis.faces[0].ssimulacra2 == pytest.approx(100.0)
    assert vis.whole.ssimulacra2 < 100
    assert vis.regions == [(2, 2, 48, 48)]


def test_side_by_side_is_one_to_one():
    a = _photo()
    b = a.copy()
    b[20, 20] = np.clip(b[20, 20].astype(int) + 3, 0, 255)
    strip = visibility.side_by_side(a, b, (10, 10, 40, 40), gap=8)
    x1, y1, x2, y2 = visibility.face_region((10, 10, 40, 40), a.shape)
    w, h = x2 - x1, y2 - y1
    assert strip.shape == (h, 3 * w + 16, 3)
    assert np.array_equal(strip[:, :w], a[y1:y2, x1:x2])
    assert np.array_equal(strip[:, w + 8:2 * w + 8], b[y1:y2, x1:x2])
    diff = strip[:, 2 * w + 16:].astype(int)
    assert (diff == 128).sum() > diff.size - 6  # unchanged pixels are mid-grey
    assert (diff[20 - y1, 20 - x1] > 128).any()  # the changed one shows, amplified
