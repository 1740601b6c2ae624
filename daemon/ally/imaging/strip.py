"""Remove identifying metadata from an encoded image without decoding it: the pixels stay bit-exact.

Used when a photo's pixels are not changed (no face found, or level ``off``): re-encoding a JPEG would cost a
generation of loss and usually grow the file, for nothing. Works on the container only — JPEG segments, PNG
chunks, WebP RIFF chunks — by keeping what describes the pixels (quantisation and Huffman tables, frame and
scan headers, the entropy-coded data, the ICC profile, Adobe's colour transform) and dropping everything else
(EXIF, XMP, IPTC, comments, maker segments, MPF's extra images and trailers after the end of the image).

Written here rather than with a library: Pillow has no lossless path, and jpegtran/exiftool are not Python
packages; the segment grammar is small (ITU T.81 B.1) and the scanner below follows it strictly.
"""

from __future__ import annotations

import struct

__all__ = ["StripError", "orientation_exif", "strip_jpeg", "strip_png", "strip_webp"]

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_TEM = 0x01
_APP0, _APP2, _APP14, _COM = 0xE0, 0xE2, 0xEE, 0xFE
# Segments that describe the pixels. APPn/COM (and anything unknown) are dropped; JPG/JPGn/reserved are refused.
_KEEP = {
    0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF,  # SOFn
    0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDE, 0xDF,  # DHT, DAC, DQT, DRI, DNL, DHP, EXP
}  # fmt: skip
# PNG chunks kept: critical ones and those that say how to show the pixels. Text, eXIf, tIME, unknown: dropped.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"bKGD",
             b"pHYs", b"cICP", b"mDCV", b"cLLI"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# WebP: VP8X flag bits for EXIF and XMP (RFC 9649 §2.7: Rsv Rsv I L E X A R).
_WEBP_KEEP = {b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ICCP"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


class StripError(ValueError):
    """The container is not what it claims (the caller then re-encodes from the decoded pixels)."""


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def orientation_exif(orientation: int) -> bytes:
    """An APP1 Exif payload holding only the Orientation tag (big-endian TIFF, one IFD, one entry)."""
    if not 1 <= orientation <= 8:
        raise ValueError(f"orientation {orientation} is not 1-8")
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    return b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd


def _keep_app(marker: int, payload: bytes) -> bool:
    if marker == _APP0:  # JFIF without a thumbnail (JFXX extensions carry thumbnails)
        return payload.startswith(b"JFIF\x00") and len(payload) >= 14 and payload[12] == 0 and payload[13] == 0
    if marker == _APP2:
        return payload.startswith(b"ICC_PROFILE\x00")
    return marker == _APP14 and payload.startswith(b"Adobe")  # colour transform: decoders need it


def strip_jpeg(data: bytes, orientation: int = 1) -> bytes:
    """The same JPEG with only the segments that describe its pixels; the entropy-coded data is copied as is.

    ``orientation`` other than 1 is kept as a one-tag Exif segment, so that viewers still show the photo
    upright. Everything after the first image's EOI (MPF's extra images, maker trailers) is dropped.
    """
    if data[:2] != b"\xff\xd8":
        raise StripError("not a JPEG (no SOI)")
    out = [b"\xff\xd8"]
    exif_done = orientation == 1
    i, n = 2, len(data)
    in_scan = False
    while True:
        if i >= n:
            raise StripError("no end of image (EOI)")
        if in_scan:
            # Entropy-coded data runs to the next marker that is not a stuffed 0x00 nor a restart marker.
            start = i
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    raise StripError("scan data runs past the end of the file")
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    i = j + 2
                    continue
                if nxt == 0xFF:  # fill bytes before a marker
                    i = j + 1
                    continue
                break
            out.append(data[start:j])
            i = j
            in_scan = False
        if data[i] != 0xFF:
            raise StripError(f"expected a marker at byte {i}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            raise StripError("file ends inside a marker")
        marker = data[i]
        i += 1
        if marker == _EOI:
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in (_SOI, _TEM) or 0xD0 <= marker <= 0xD7:
            raise StripError(f"unexpected marker 0xFF{marker:02X} at byte {i - 1}")
        if i + 2 > n:
            raise StripError("file ends inside a segment length")
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            raise StripError(f"segment 0xFF{marker:02X} has a bad length")
        payload = data[i + 2:i + length]
        i += length
        is_app = 0xE0 <= marker <= 0xEF or marker == _COM
        if not exif_done and not (marker == _APP0 and _keep_app(marker, payload)):
            out.append(_segment(0xE1, orientation_exif(orientation)))  # after JFIF, before the tables
            exif_done = True
        if marker == _SOS:
            out.append(_segment(marker, payload))
            in_scan = True
        elif marker in _KEEP or (is_app and _keep_app(marker, payload)):
            out.append(_segment(marker, payload))
        elif not is_app:
            raise StripError(f"unknown segment 0xFF{marker:02X}")


def strip_png(data: bytes) -> bytes:
    """The same PNG without text, eXIf, tIME or unknown chunks (their CRCs are copied, not recomputed)."""
    if data[:8] != _PNG_SIGNATURE:
        raise StripError("not a PNG")
    out, i = [_PNG_SIGNATURE], 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > len(data):
            raise StripError(f"chunk {kind!r} runs past the end of the file")
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        i = end
        if kind == b"IEND":
            return b"".join(out)
    raise StripError("no IEND chunk")


def strip_webp(data: bytes) -> bytes:
    """The same WebP without EXIF, XMP or unknown chunks; the VP8X flags and the RIFF size are updated."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise StripError("not a WebP")
    chunks, i = [], 12
    while i + 8 <= len(data):
        fourcc = data[i:i + 4]
        length = int.from_bytes(data[i + 4:i + 8], "little")
        end = i + 8 + length + (length & 1)
        if i + 8 + length > len(data):
            raise StripError(f"chunk {fourcc!r} runs past the end of the file")
        chunk = data[i:min(end, len(data))]
        if fourcc in (b"ANIM", b"ANMF"):
            raise StripError("animated WebP")
        if fourcc == b"VP8X":
            flags = chunk[8] & ~(_VP8X_EXIF | _VP8X_XMP)
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        if fourcc in _WEBP_KEEP:
            chunks.append(chunk + (b"\x00" if len(chunk) & 1 else b""))
        i = end
    if not any(c[:4] in (b"VP8 ", b"VP8L") for c in chunks):
        raise StripError("no image data in the WebP")
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
