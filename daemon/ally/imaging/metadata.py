"""List the identifying metadata in an image file.

Walks the container (JPEG segments, PNG chunks, WebP RIFF chunks) directly
rather than trusting a decoder, and reads EXIF tags with Pillow. Used by tests
and the CLI to prove that a saved image was scrubbed.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin, UnidentifiedImageError

from ally.imaging.errors import CorruptImageError, ImageError, ImageTooLargeError, NotAnImageError
from ally.imaging.io import TIFF_LAYOUT_TAGS, Source, read_source

__all__ = ["IDENTIFYING_KEYS", "metadata_report"]

# Report keys whose non-empty value means identifying metadata is present.
IDENTIFYING_KEYS = ("exif", "gps", "xmp", "iptc", "comments", "text", "other")

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005
_XMP_TIFF_TAG = 700
_IPTC_TIFF_TAG = 33723
_PHOTOSHOP_TIFF_TAG = 34377
_ICC_TIFF_TAG = 34675
_TIFF_STRUCTURAL = TIFF_LAYOUT_TAGS | {_ICC_TIFF_TAG}
# Cap on decompressed PNG text we render: a zTXt chunk can be a zip bomb.
_MAX_TEXT = 1 << 20
_XMP_JPEG_IDS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")


def metadata_report(source: Source) -> dict[str, Any]:
    """Describe the metadata in an image.

    Returns a dict with ``format``; ``exif`` (tag name -> value, IFD0 and Exif
    IFD, orientation included); ``gps`` (GPS tags); ``xmp`` and ``iptc``
    (bool); ``comments`` (JPEG COM); ``text`` (PNG text chunks); ``other``
    (other metadata-bearing segments, e.g. ``"APP12:Ducky"``, ``"tIME"``);
    ``icc_profile`` (bool, kept on purpose); and ``identifying``: the keys of
    :data:`IDENTIFYING_KEYS` that are non-empty (an EXIF holding only the
    Orientation tag, which a losslessly scrubbed JPEG keeps, does not count).
    """
    data, path = read_source(source)
    container = _container(data)
    report: dict[str, Any] = {
        "format": container,
        "exif": {},
        "gps": {},
        "xmp": False,
        "iptc": False,
        "comments": [],
        "text": {},
        "other": [],
        "icc_profile": False,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # huge dims/corrupt EXIF still get a report
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        if container is None:
            raise _open_error(exc, path) from exc
        # The container walk below still reports what is there (e.g. a zTXt bomb Pillow refuses).
        report["other"].append(f"unparseable by Pillow ({exc})")
    else:
        with image:
            report["format"] = image.format
            report["icc_profile"] = bool(image.info.get("icc_profile"))
            _read_exif(image, report)
    if container == "JPEG":
        _scan_jpeg(data, report)
    elif container == "PNG":
        _scan_png(data, report)
    elif container == "WEBP":
        _scan_webp(data, report)
    report["identifying"] = [key for key in IDENTIFYING_KEYS if _identifying(key, report[key])]
    return report


# EXIF tags that say how to show the pixels, not who, where or when: a scrubbed JPEG may keep them.
_DISPLAY_EXIF = {"Orientation"}


def _identifying(key: str, value: Any) -> bool:
    if key == "exif":
        return bool(set(value) - _DISPLAY_EXIF)
    return bool(value)


def _container(data: bytes) -> str | None:
    if data[:2] == b"\xff\xd8":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open_error(exc: BaseException, path: Path | None) -> ImageError:
    if isinstance(exc, UnidentifiedImageError):
        return NotAnImageError("not an image", source=path)
    if isinstance(exc, Image.DecompressionBombError):
        return ImageTooLargeError(f"refusing to parse ({exc})", source=path)
    return CorruptImageError(f"cannot parse image header ({exc})", source=path)


def _printable(value: Any) -> Any:
    """JSON-friendly rendering of an EXIF value."""
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        if len(text) <= 64 and all(32 <= b < 127 for b in text):
            return text.decode("ascii")
        return f"<{len(value)} bytes>"
    if isinstance(value, TiffImagePlugin.IFDRational):
        return float(value) if value.denominator else None
    if isinstance(value, tuple):
        return [_printable(v) for v in value]
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return str(value)


def _read_exif(image: Image.Image, report: dict[str, Any]) -> None:
    try:
        exif = image.getexif()
        exif_ifd = dict(exif.get_ifd(_EXIF_IFD))
        gps_ifd = dict(exif.get_ifd(_GPS_IFD))
    except (OSError, SyntaxError, ValueError) as exc:
        report["other"].append(f"unparseable EXIF ({exc})")
        return
    is_tiff = image.format == "TIFF"
    tags: dict[str, Any] = {}
    for tag, value in [*exif.items(), *exif_ifd.items()]:
        if tag in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD) or (is_tiff and tag in _TIFF_STRUCTURAL):
            continue
        if is_tiff and tag == _XMP_TIFF_TAG:
            report["xmp"] = True
            continue
        if is_tiff and tag in (_IPTC_TIFF_TAG, _PHOTOSHOP_TIFF_TAG):
            report["iptc"] = True
            continue
        tags[ExifTags.TAGS.get(tag, f"0x{tag:04x}")] = _printable(value)
    report["exif"].update(tags)
    if gps_ifd or _GPS_IFD in exif:
        report["gps"].update({ExifTags.GPSTAGS.get(t, f"0x{t:04x}"): _printable(v) for t, v in gps_ifd.items()})
        report["gps"].setdefault("GPSInfo", "present")


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) for each header segment up to the first scan."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: metadata is before
            return
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        yield marker, data[i + 4 : i + 2 + length]
        i += 2 + length


def _scan_jpeg(data: bytes, report: dict[str, Any]) -> None:
    for marker, payload in _jpeg_segments(data):
        if marker == 0xFE:
            report["comments"].append(payload.decode("utf-8", "replace"))
        elif marker == 0xE1:
            if payload.startswith(b"Exif\x00"):
                if not report["exif"]:
                    report["exif"]["(APP1 Exif segment)"] = f"<{len(payload)} bytes>"
            elif payload.startswith(_XMP_JPEG_IDS):
                report["xmp"] = True
            else:
                report["other"].append(f"APP1:{_segment_id(payload)}")
        elif marker == 0xED:
            report["iptc"] = True  # Photoshop IRB: IPTC-NAA and friends
        elif marker == 0xE2:
            if payload.startswith(b"MPF\x00"):
                report["other"].append("APP2:MPF (extra embedded images with their own metadata)")
            elif payload.startswith(b"ICC_PROFILE\x00"):
                report["icc_profile"] = True
            else:
                report["other"].append(f"APP2:{_segment_id(payload)}")
        elif 0xE3 <= marker <= 0xEF and marker != 0xEE:  # APP14 (Adobe) is colour transform only
            report["other"].append(f"APP{marker - 0xE0}:{_segment_id(payload)}")


def _segment_id(payload: bytes) -> str:
    return payload.split(b"\x00", 1)[0][:32].decode("latin-1")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    i = 8
    while i + 8 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        yield kind, data[i + 8 : i + 8 + length]
        if kind == b"IEND":
            return
        i += 12 + length


def _scan_png(data: bytes, report: dict[str, Any]) -> None:
    for kind, payload in _png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, text = _png_text(kind, payload)
            report["text"][key] = text
            if key == "XML:com.adobe.xmp" or key.lower() == "raw profile type xmp":
                report["xmp"] = True
            elif key.lower() in ("raw profile type iptc", "raw profile type 8bim"):
                report["iptc"] = True
            elif key.lower() == "raw profile type exif" and not report["exif"]:
                report["exif"]["(text-chunk EXIF)"] = f"<{len(payload)} bytes>"
        elif kind == b"eXIf" and not report["exif"]:
            report["exif"]["(eXIf chunk)"] = f"<{len(payload)} bytes>"
        elif kind == b"iCCP":
            report["icc_profile"] = True
        elif kind == b"tIME":
            report["other"].append("tIME (modification time)")


def _png_text(kind: bytes, payload: bytes) -> tuple[str, str]:
    key, _, rest = payload.partition(b"\x00")
    name = key.decode("latin-1")
    try:
        if kind == b"tEXt":
            return name, rest.decode("latin-1")
        if kind == b"zTXt":
            return name, _inflate(rest[1:]).decode("latin-1")
        compressed, rest = rest[0], rest[2:]
        _lang, _, rest = rest.partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        return name, (_inflate(text) if compressed else text).decode("utf-8", "replace")
    except (zlib.error, IndexError) as exc:
        return name, f"<undecodable {kind.decode()} chunk: {exc}>"


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, _MAX_TEXT)
    return text + b"...(truncated)" if inflater.unconsumed_tail else text


def _scan_webp(data: bytes, report: dict[str, Any]) -> None:
    i = 12
    while i + 8 <= len(data):
        fourcc = data[i : i + 4]
        length = int.from_bytes(data[i + 4 : i + 8], "little")
        if fourcc == b"EXIF" and not report["exif"]:
            report["exif"]["(EXIF chunk)"] = f"<{length} bytes>"
        elif fourcc == b"XMP ":
            report["xmp"] = True
        elif fourcc == b"ICCP":
            report["icc_profile"] = True
        i += 8 + length + (length & 1)
