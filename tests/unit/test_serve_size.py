"""Serve-size protection (issue 17): the photo is brought to the size the site serves, never up, upright, and
written as the site serves it; the site table is parsed and validated in one place."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.imaging.io import load_image
from ally.imaging.serve import SERVE_JPEG_QUALITY, encode_served, fit_long_edge, prepare, resize_to
from ally.sites import SITES_PATH, SiteError, load_sites, parse_sites, profile, site_for_host


def _jpeg(rgb: np.ndarray, orientation: int = 1, quality: int = 90) -> bytes:
    image = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def _png(width: int, height: int, alpha: bool = False) -> bytes:
    """A smooth gradient with a little noise (pure noise is no photo: incompressible even as JPEG)."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(0, 200, width), np.linspace(0, 200, height))
    planes = [x, y, (x + y) / 2] + ([np.full_like(x, 255.0)] if alpha else [])
    rgb = np.clip(np.stack(planes, axis=2) + rng.normal(0, 3, (height, width, len(planes))), 0, 255).astype(np.uint8)
    if alpha:
        rgb[: height // 4, :, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGBA" if alpha else "RGB").save(buf, "PNG")
    return buf.getvalue()


# -- the resize -----------------------------------------------------------------------------------------------


def test_never_upscales() -> None:
    image = load_image(_png(300, 200))
    assert fit_long_edge(image, 300) is image
    assert fit_long_edge(image, 4096) is image
    assert fit_long_edge(image, 150).rgb.shape == (100, 150, 3)
    with pytest.raises(ValueError, match="upscale"):
        resize_to(image, 600, 400)


def test_exif_rotated_photo_stays_upright() -> None:
    # Stored 400 wide x 200 high, with EXIF orientation 6 (rotate 90° clockwise to view): upright 200 x 400.
    # The stored pixels' left half is red: once upright, the TOP half is red.
    stored = np.zeros((200, 400, 3), np.uint8)
    stored[:, :200] = (220, 20, 20)
    stored[:, 200:] = (20, 20, 220)
    image = load_image(_jpeg(stored, orientation=6))
    assert (image.width, image.height) == (200, 400)
    small = fit_long_edge(image, 100)
    assert (small.width, small.height) == (50, 100)
    assert small.rgb[10, 25, 0] > 150 and small.rgb[10, 25, 2] < 100  # top: red
    assert small.rgb[90, 25, 2] > 150 and small.rgb[90, 25, 0] < 100  # bottom: blue
    assert small.orientation == 1 and small.source_bytes is None  # nothing can hand out the full-size original
    written = encode_served(small.rgb, prepare(image, max_edge=100), keep_metadata=False)
    again = Image.open(io.BytesIO(written.data))
    assert again.size == (50, 100) and again.getexif().get(0x0112) in (None, 1)  # upright pixels, no rotation tag


def test_transparency_is_resized_with_the_colours() -> None:
    image = load_image(_png(400, 300, alpha=True))
    small = fit_long_edge(image, 200)
    assert small.alpha is not None and small.alpha.shape == (150, 200)


# -- prepare: size, format and quality for a site ----------------------------------------------------------------


@pytest.mark.parametrize("site,size,served", [
    ("instagram", (4000, 3000), (1080, 810)),  # landscape: 1080 wide
    ("instagram", (3000, 3750), (1080, 1350)),  # 4:5 portrait: 1080 x 1350
    ("facebook", (4032, 3024), (2048, 1536)),
    ("x", (4032, 3024), (4032, 3024)),  # within 4096: untouched
    ("mastodon", (6000, 4000), (3527, 2351)),  # 8.3 MP whatever the shape
    ("reddit", (6000, 4000), (6000, 4000)),  # served as uploaded
])
def test_served_size_of_each_site(site: str, size: tuple[int, int], served: tuple[int, int]) -> None:
    got = profile(site).served_size(*size)
    assert got == served
    p = profile(site)
    w, h = got
    assert (p.long_edge is None or max(w, h) <= p.long_edge) and (p.max_width is None or w <= p.max_width)
    assert p.max_pixels is None or w * h <= p.max_pixels


def test_prepare_for_a_site_resizes_and_writes_jpeg_at_or_above_the_site_quality() -> None:
    image = load_image(_png(2000, 1500))
    served = prepare(image, site=profile("instagram"))
    assert served.resized and served.size == (1080, 810)
    written = encode_served(served.image.rgb, served, keep_metadata=False)
    assert written.format == "JPEG" and written.mime == "image/jpeg"
    assert written.quality == max(profile("instagram").jpeg_quality, SERVE_JPEG_QUALITY)
    out = load_image(written.data)
    assert (out.width, out.height) == (1080, 810) and out.jpeg_quality is not None
    assert out.jpeg_quality >= profile("instagram").jpeg_quality


def test_full_size_keeps_the_size_but_follows_the_site_format() -> None:
    image = load_image(_png(2000, 1500))
    served = prepare(image, site=profile("instagram"), full_size=True)
    assert not served.resized and served.size == (2000, 1500) and served.full_size
    assert encode_served(image.rgb, served, keep_metadata=False).format == "JPEG"


def test_transparent_photo_for_a_site_stays_png() -> None:
    served = prepare(load_image(_png(2000, 1500, alpha=True)), site=profile("instagram"))
    written = encode_served(served.image.rgb, served, keep_metadata=False)
    assert written.format == "PNG" and written.quality is None
    assert Image.open(io.BytesIO(written.data)).mode == "RGBA"


def test_unchanged_photo_within_the_size_is_not_reencoded() -> None:
    data = _jpeg(np.full((300, 400, 3), 128, np.uint8), quality=85)
    image = load_image(data)
    served = prepare(image, site=profile("instagram"))
    assert not served.resized
    written = encode_served(image.rgb, served, keep_metadata=False)
    assert not written.reencoded and written.quality == image.jpeg_quality


def test_resized_photo_without_a_face_is_still_written_at_the_served_size() -> None:
    """No face, so the engine leaves the pixels alone: the file handed out is still the small one, never the
    full-size original."""
    data = _jpeg(np.full((1500, 2000, 3), 128, np.uint8))
    served = prepare(load_image(data), site=profile("instagram"))
    written = encode_served(served.image.rgb, served, keep_metadata=False)
    assert Image.open(io.BytesIO(written.data)).size == (1080, 810)


# -- the site table: parsed and validated in one place ---------------------------------------------------------


def test_shipped_table_has_the_sites_and_their_hosts() -> None:
    sites = load_sites()
    assert {"instagram", "facebook", "x", "mastodon", "bluesky", "reddit", "linkedin", "threads"} <= set(sites)
    assert site_for_host("www.instagram.com").name == "instagram"
    assert site_for_host("mobile.twitter.com").name == "x"
    assert site_for_host("BSKY.APP").name == "bluesky"
    assert site_for_host("x.com.evil.example") is None and site_for_host("notx.com") is None
    with pytest.raises(SiteError, match="unknown site 'myspace'; known sites: instagram"):
        profile("myspace")


def _table(**changes: object) -> dict[str, object]:
    raw = json.loads(SITES_PATH.read_text())
    entry = raw["sites"]["instagram"]
    for key, value in changes.items():
        if value is ...:
            del entry[key]
        else:
            entry[key] = value
    return raw


@pytest.mark.parametrize("changes,message", [
    ({"jpeg_quality": 101}, "site 'instagram': jpeg_quality must be a whole number from 1 to 100"),
    ({"jpeg_quality": "80"}, "jpeg_quality must be a whole number"),
    ({"long_edge": 10}, "long_edge must be a whole number from 64"),
    ({"format": "gif"}, "format must be one of jpeg"),
    ({"hosts": []}, "hosts must be a non-empty list"),
    ({"hosts": ["Instagram.com"]}, "hosts must be a non-empty list of lower-case host names"),
    ({"hosts": ["x.com"]}, "host 'x.com' already belongs to site 'instagram'"),
    ({"label": ""}, "label must be a non-empty string"),
    ({"source": ...}, "missing field(s) source"),
    ({"colour": "blue"}, "unknown field(s) colour"),
])
def test_bad_entries_are_refused_with_what_is_wrong(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SiteError) as info:
        parse_sites(_table(**changes))
    assert message in str(info.value)


def test_bad_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "sites.json"
    bad.write_text("{not json")
    with pytest.raises(SiteError, match="sites.json: not valid JSON"):
        load_sites(bad)
    bad.write_text(json.dumps({"version": 1, "sites": {}}))
    with pytest.raises(SiteError, match="non-empty \"sites\" object"):
        load_sites(bad)
    bad.write_text(json.dumps({"version": 2, "sites": {"a": {}}}))
    with pytest.raises(SiteError, match="version must be 1"):
        load_sites(bad)
    with pytest.raises(SiteError, match="cannot read"):
        load_sites(tmp_path / "missing.json")


def test_resized_pixels_are_writable_like_loaded_ones() -> None:
    image = load_image(_png(400, 300))
    assert image.rgb.flags.writeable
    assert fit_long_edge(image, 200).rgb.flags.writeable and fit_long_edge(image, 200).rgb.flags.c_contiguous
