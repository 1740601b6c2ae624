"""Lossless scrubbing (``ally.imaging.strip`` through ``scrubbed_bytes``): metadata goes, pixels stay bit-exact."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from ally.imaging.io import load_image, scrubbed_bytes
from ally.imaging.metadata import metadata_report
from ally.imaging.strip import StripError, orientation_exif, strip_jpeg

RNG = np.random.default_rng(7)
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _photo(width: int = 64, height: int = 48) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "ACME"
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}
    return exif


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("params", [
    {"quality": 80, "subsampling": 2},
    {"quality": 92, "subsampling": 0, "progressive": True},
    {"quality": 70, "subsampling": 1, "restart_marker_blocks": 1},
])
def test_jpeg_scrub_keeps_the_scan_bit_exact(params: dict) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(_photo(), "JPEG", exif=_exif(), icc_profile=icc, comment=b"my house", xmp=XMP, **params)
    before = metadata_report(data)
    assert {"exif", "gps", "xmp", "comments"} <= set(before["identifying"])
    out, mime = scrubbed_bytes(load_image(data))
    assert mime == "image/jpeg"
    after = metadata_report(out)
    assert after["identifying"] == [] and after["icc_profile"], after
    assert np.array_equal(_decoded(out), _decoded(data))  # no re-encode: the same coefficients
    assert len(out) < len(data)
    again = load_image(out)
    assert (again.jpeg_quality, again.jpeg_subsampling) == (load_image(data).jpeg_quality,
                                                             load_image(data).jpeg_subsampling)


def test_jpeg_scrub_keeps_orientation_only() -> None:
    stored = _photo(40, 20)
    data = _encode(stored, "JPEG", quality=90, exif=_exif(orientation=6))
    like = load_image(data)
    out, _ = scrubbed_bytes(like)
    report = metadata_report(out)
    assert report["exif"] == {"Orientation": 6} and report["gps"] == {} and report["identifying"] == []
    assert np.array_equal(load_image(out).rgb, like.rgb)  # still shown upright, same pixels


def test_jpeg_trailer_and_extra_images_after_eoi_are_dropped() -> None:
    data = _encode(_photo(), "JPEG", quality=85) + b"SAMSUNG-TRAILER" + _encode(_photo(8, 8), "JPEG")
    out = strip_jpeg(data)
    assert out.endswith(b"\xff\xd9") and b"SAMSUNG" not in out
    assert np.array_equal(_decoded(out), _decoded(data))


def test_damaged_jpeg_is_refused_not_guessed() -> None:
    data = _encode(_photo(), "JPEG", quality=85)
    with pytest.raises(StripError):
        strip_jpeg(data[: len(data) // 2])
    with pytest.raises(StripError):
        strip_jpeg(b"not a jpeg")


def test_png_and_webp_scrub_in_the_container() -> None:
    png = _encode(_photo(), "PNG", exif=_exif(), pnginfo=_pnginfo())
    out, mime = scrubbed_bytes(load_image(png))
    assert mime == "image/png" and metadata_report(out)["identifying"] == []
    assert np.array_equal(_decoded(out), _decoded(png))
    webp = _encode(_photo(), "WEBP", quality=70, exif=_exif(), xmp=XMP)
    assert metadata_report(webp)["identifying"]
    out, mime = scrubbed_bytes(load_image(webp))
    assert mime == "image/webp" and metadata_report(out)["identifying"] == []
    assert np.array_equal(_decoded(out), _decoded(webp))  # lossy WebP not re-encoded


def _pnginfo():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("Location", "12 Acacia Avenue")
    return info


def test_orientation_exif_is_a_valid_one_tag_exif() -> None:
    exif = Image.Exif()
    exif.load(orientation_exif(3)[6:])
    assert dict(exif) == {0x0112: 3}
