"""metadata_report finds identifying metadata, and load+save removes all of it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from ally.imaging.errors import NotAnImageError
from ally.imaging.io import load_image, save_image
from ally.imaging.metadata import metadata_report
from PIL import Image, ImageCms, PngImagePlugin

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pixels() -> Image.Image:
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, (16, 24, 3), dtype=np.uint8))


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "ACME"  # Make
    exif[0x0110] = "Spy Camera 3000"  # Model
    exif[0x0132] = "2024:05:01 12:34:56"  # DateTime
    exif[0x8769] = {0xA431: "SN-123456", 0x9003: "2024:05:01 12:34:56"}  # serial, DateTimeOriginal
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return exif


def _insert_after_soi(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def _iptc_app13() -> bytes:
    record = b"\x1c\x02\x50" + struct.pack(">H", 5) + b"Alice"  # IPTC 2:80 By-line
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(record)) + record
    return b"Photoshop 3.0\x00" + resource


def _png_time_chunk(png: bytes) -> bytes:
    data = struct.pack(">HBBBBB", 2024, 5, 1, 12, 34, 56)
    chunk = struct.pack(">I", len(data)) + b"tIME" + data + struct.pack(">I", zlib.crc32(b"tIME" + data))
    return png[:33] + chunk + png[33:]  # right after the 8-byte signature and 25-byte IHDR


def _rich_jpeg() -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "JPEG", exif=_exif(), xmp=XMP, comment=b"shot by Alice", icc_profile=ICC)
    data = _insert_after_soi(buffer.getvalue(), 0xED, _iptc_app13())
    return _insert_after_soi(data, 0xEC, b"Ducky\x00\x01\x00\x04\x00\x00\x00\x50")


def _rich_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Alice Example")
    info.add_text("Comment", "home address in here", zip=True)
    info.add_itxt("Description", "Ünïcode description", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG", pnginfo=info, exif=_exif(), icc_profile=ICC)
    return _png_time_chunk(buffer.getvalue())


def _rich_webp() -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "WEBP", exif=_exif(), xmp=XMP, icc_profile=ICC, quality=90)
    return buffer.getvalue()


def _protect(data: bytes) -> bytes:
    loaded = load_image(data)
    out = io.BytesIO()
    save_image(loaded.rgb, loaded, out)
    return out.getvalue()


def test_jpeg_report_lists_everything() -> None:
    report = metadata_report(_rich_jpeg())
    assert report["format"] == "JPEG"
    assert report["exif"]["Make"] == "ACME" and report["exif"]["Model"] == "Spy Camera 3000"
    assert report["exif"]["BodySerialNumber"] == "SN-123456"
    assert report["gps"]["GPSLatitudeRef"] == "N" and report["gps"]["GPSLatitude"] == [48.0, 51.0, 29.0]
    assert report["xmp"] and report["iptc"]
    assert report["comments"] == ["shot by Alice"]
    assert any(item.startswith("APP12:Ducky") for item in report["other"])
    assert report["icc_profile"]
    assert set(report["identifying"]) == {"exif", "gps", "xmp", "iptc", "comments", "other"}


def test_png_report_lists_everything() -> None:
    report = metadata_report(_rich_png())
    assert report["format"] == "PNG"
    assert report["text"]["Author"] == "Alice Example"
    assert report["text"]["Comment"] == "home address in here"
    assert report["text"]["Description"] == "Ünïcode description"
    assert report["xmp"] and report["gps"] and report["exif"]["Make"] == "ACME"
    assert "tIME (modification time)" in report["other"]
    assert set(report["identifying"]) == {"exif", "gps", "xmp", "text", "other"}


def test_webp_report_lists_everything() -> None:
    report = metadata_report(_rich_webp())
    assert report["format"] == "WEBP"
    assert report["xmp"] and report["gps"] and report["exif"]["Model"] == "Spy Camera 3000"


@pytest.mark.parametrize("make", [_rich_jpeg, _rich_png, _rich_webp], ids=["jpeg", "png", "webp"])
def test_load_and_save_scrubs_all_but_icc(make) -> None:
    report = metadata_report(_protect(make()))
    assert report["identifying"] == [], report
    assert report["exif"] == {} and report["gps"] == {} and report["text"] == {} and report["comments"] == []
    assert not report["xmp"] and not report["iptc"]
    assert report["icc_profile"]  # kept on purpose, for colour fidelity


@pytest.mark.parametrize("fmt", ["TIFF", "BMP"])
def test_other_formats_saved_clean(fmt: str) -> None:
    buffer = io.BytesIO()
    params = {"tiffinfo": {0x010F: "ACME", 0x013B: "Alice Example"}} if fmt == "TIFF" else {}
    _pixels().save(buffer, fmt, **params)
    if fmt == "TIFF":
        assert metadata_report(buffer.getvalue())["exif"] == {"Make": "ACME", "Artist": "Alice Example"}
    assert metadata_report(_protect(buffer.getvalue()))["identifying"] == []


def test_clean_image_reports_nothing() -> None:
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG")
    report = metadata_report(buffer.getvalue())
    assert report["identifying"] == [] and not report["icc_profile"]


def test_report_reads_paths(tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(_rich_jpeg())
    assert metadata_report(path)["gps"]


def test_report_rejects_non_images() -> None:
    with pytest.raises(NotAnImageError):
        metadata_report(b"definitely not an image")


def test_compressed_text_bomb_is_capped() -> None:
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9)  # 64 MB of text in ~64 kB
    chunk = struct.pack(">I", len(payload)) + b"zTXt" + payload + struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG")
    png = buffer.getvalue()
    report = metadata_report(png[:33] + chunk + png[33:])
    assert "Comment" in report["text"] and len(report["text"]["Comment"]) < 2 << 20
