"""Safe image loading and metadata-free saving.

``load_image`` turns any supported still photo into upright 8-bit RGB (+ alpha)
and remembers what is needed to write it back in kind; ``save_image`` writes
pixels in the source's format with no metadata except the ICC profile, or,
with ``keep_metadata`` (the user did not choose metadata removal), with the
source's EXIF (GPS included), XMP, comment and PNG text carried over where
Pillow can write them. ``unchanged_bytes`` is the one place that decides what
a photo whose pixels did not change becomes: scrubbed, or the original file.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

from ally.imaging.errors import (
    AnimatedImageError,
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageUnreadableError,
    ImageWriteError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
    UnsupportedModeError,
    WouldOverwriteSourceError,
)

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "LoadedImage",
    "Source",
    "encode_image",
    "scrubbed_bytes",
    "save_unchanged",
    "unchanged_bytes",
    "estimate_jpeg_quality",
    "image_size",
    "load_image",
    "read_source",
    "save_image",
    "save_scrubbed",
]

logger = logging.getLogger(__name__)

# 50 MP covers every current phone and nearly all cameras (48-50 MP sensors)
# while bounding memory: decoded RGB is 150 MB, and the protection pipeline
# keeps several float32 copies (600 MB each). Bigger inputs are almost always
# panoramas/scans or decompression bombs. Checked from the header, before any
# pixel is decoded.
MAX_PIXELS = 50_000_000
# Generous for a 50 MP PNG; stops us reading arbitrarily large files into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
# For JPEGs whose quality cannot be estimated (and non-JPEG sources saved as JPEG).
# A JPEG source is written back at about its own quality and chroma subsampling:
# the cloak is optimised through JPEG 65-90 with 4:2:0 chroma, so it survives
# that, and matching the source keeps the file about the source's size.
DEFAULT_JPEG_QUALITY = 95
# Never below this, whatever the source: each generation of loss erodes the perturbation.
MIN_JPEG_QUALITY = 75

# Formats we decode. Restricting Pillow's plugins also keeps exotic decoders
# (a classic attack surface) away from untrusted files.
# (Multi-picture JPEGs, MPO, come through the JPEG plugin.)
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
# Formats we write. GIF is read-only: its 256-colour palette would erase the perturbation.
_WRITE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
_SUBSAMPLING_CODES = {v: k for k, v in _SUBSAMPLING_NAMES.items()}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ORIENTATION_TAG = 0x0112
# TIFF tags that describe the pixel layout, not the photo or its author (a TIFF's EXIF IFD0 is its own IFD).
TIFF_LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 280, 281,
    282, 283, 284, 290, 291, 296, 317, 318, 319, 320, 322, 323, 324, 325, 338,
    339, 340, 341, 529, 530, 531, 532, 34675,
})  # fmt: skip
_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp"}

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded still image plus what is needed to save it back in kind."""

    rgb: np.ndarray  # [H,W,3] uint8, EXIF orientation applied (upright)
    alpha: np.ndarray | None  # [H,W] uint8 or None; re-attached on save
    format: str  # "JPEG", "PNG", "WEBP", "TIFF", "BMP" or "GIF" (MPO reads as JPEG)
    mode: str  # Pillow mode of the source, e.g. "RGB", "CMYK", "I;16", "P", "LA"
    size: tuple[int, int]  # (width, height) as stored, before orientation
    orientation: int  # EXIF orientation that was baked into the pixels (1 = none)
    grey: bool  # source had no colour; saved back as greyscale
    bits_per_channel: int  # 8 or 16 (16-bit sources are reduced to 8)
    icc_profile: bytes | None
    jpeg_quality: int | None  # estimated from quantisation tables
    jpeg_subsampling: str | None  # "4:4:4", "4:2:2", "4:2:0"
    webp_lossless: bool | None
    source_path: Path | None
    source_bytes: bytes | None = field(default=None, repr=False)  # the file as read, for lossless scrubbing

    @property
    def width(self) -> int:
        """Upright width in pixels."""
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        """Upright height in pixels."""
        return int(self.rgb.shape[0])


# -- loading ----------------------------------------------------------------------


def load_image(source: Source) -> LoadedImage:
    """Decode a still image from a path or bytes.

    Raises a subclass of :class:`~ally.imaging.errors.ImageError` for anything
    that is not a complete, supported, single-frame image of at most
    :data:`MAX_PIXELS` pixels.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A global some library may flip; with it set, truncated files decode
        # silently with grey bands and we would "protect" a broken photo.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; Ally requires it to be False")
    data, path = read_source(source)
    label = str(path) if path is not None else None
    image = _open(data, label)
    with image:
        _check_pixels(image.size, label)
        fmt = "JPEG" if image.format == "MPO" else str(image.format)
        if image.format != "MPO":  # MPO's extra frames are previews/depth maps, not animation
            _check_single_frame(image, fmt, label)
        _decode(image, data, fmt, label)
        orientation = _orientation(image, label)
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        icc = image.info.get("icc_profile") or None
        rgb, alpha, grey, icc = _to_rgb(upright, icc, label)
        return LoadedImage(
            rgb=rgb,
            alpha=alpha,
            format=fmt,
            mode=image.mode,
            size=image.size,
            orientation=orientation,
            grey=grey,
            bits_per_channel=_bits_per_channel(image, data),
            icc_profile=icc,
            jpeg_quality=estimate_jpeg_quality(image) if fmt == "JPEG" else None,
            jpeg_subsampling=_jpeg_subsampling(image) if fmt == "JPEG" else None,
            webp_lossless=_webp_lossless(data) if fmt == "WEBP" else None,
            source_path=path,
            source_bytes=data,
        )


def read_source(source: Source) -> tuple[bytes, Path | None]:
    """Read a path (or accept bytes) with size limits and typed errors; returns (data, path)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{len(data)} bytes is more than the {MAX_FILE_BYTES}-byte limit")
        return data, None
    path = Path(source)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ImageUnreadableError("is a directory, not an image file", source=path)
        if size > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"file is {size} bytes, more than the {MAX_FILE_BYTES}-byte limit", source=path)
        return path.read_bytes(), path
    except FileNotFoundError as exc:
        raise ImageNotFoundError("no such file", source=path) from exc
    except PermissionError as exc:
        raise ImageUnreadableError("permission denied", source=path) from exc
    except OSError as exc:
        raise ImageUnreadableError(f"cannot read file: {exc.strerror or exc}", source=path) from exc


def _open(data: bytes, label: str | None) -> ImageFile.ImageFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=_READ_FORMATS)  # type: ignore[return-value]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, label) from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(data, label) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # The header was recognised but is damaged.
        raise _decode_error(exc, data, label) from exc


def _bomb(exc: BaseException, label: str | None) -> ImageTooLargeError:
    return ImageTooLargeError(f"far more than the {MAX_PIXELS / 1e6:.0f}-megapixel limit (Pillow: {exc})", source=label)


def _unidentified(data: bytes, label: str | None) -> ImageError:
    """Best error for data no allowed plugin recognised."""
    if len(data) == 0:
        return NotAnImageError("the file is empty", source=label)
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return UnsupportedFormatError(
                "HEIC/HEIF photos are not supported; export the photo as JPEG "
                "(iPhone: Settings > Camera > Formats > Most Compatible)",
                source=label,
            )
        if brand in _AVIF_BRANDS:
            return UnsupportedFormatError("AVIF images are not supported; convert to JPEG or PNG", source=label)
    if data.startswith(b"8BPS"):
        return UnsupportedFormatError("Photoshop (PSD) files are not supported; export as JPEG or PNG", source=label)
    return NotAnImageError("not a supported image (JPEG, PNG, WebP, TIFF, BMP or GIF)", source=label)


def _decode_error(exc: BaseException, data: bytes, label: str | None) -> ImageError:
    if "truncated" in str(exc).lower() or _riff_truncated(data):
        return TruncatedImageError("the file is incomplete (truncated); try downloading it again", source=label)
    return CorruptImageError(f"the image data is damaged ({exc})", source=label)


def _riff_truncated(data: bytes) -> bool:
    """WebP's decoder does not say "truncated"; the RIFF length does."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    return int.from_bytes(data[4:8], "little") + 8 > len(data)


def _check_pixels(size: tuple[int, int], label: str | None) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"{width}x{height} is {width * height / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}",
            source=label,
        )
    if width < 1 or height < 1:
        raise CorruptImageError(f"invalid image size {width}x{height}", source=label)


def _check_single_frame(image: ImageFile.ImageFile, fmt: str, label: str | None) -> None:
    try:
        frames = getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc, b"", label) from exc
    if frames > 1:
        kind = "multi-page TIFF" if fmt == "TIFF" else f"animated {fmt}"
        raise AnimatedImageError(f"{kind} with {frames} frames: only still images can be protected", source=label)


def _decode(image: ImageFile.ImageFile, data: bytes, fmt: str, label: str | None) -> None:
    """Force a full decode so truncation and corruption surface now."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, label) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc, data, label) from exc


def _orientation(image: Image.Image, label: str | None) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError) as exc:
        # Unparseable EXIF should not stop protection: keep the stored pixel order.
        logger.warning("%s: ignoring unreadable EXIF (%s)", label or "image", exc)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(
    image: Image.Image, icc: bytes | None, label: str | None
) -> tuple[np.ndarray, np.ndarray | None, bool, bytes | None]:
    """Return (rgb, alpha, grey, icc profile to save with) for any supported mode."""
    mode = image.mode
    if mode in ("1", "L"):
        return _grey_to_rgb(np.asarray(image.convert("L"))), None, True, icc
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"))
        return _grey_to_rgb(la[:, :, 0]), la[:, :, 1].copy(), True, icc
    if mode.startswith("I;16") or mode == "I":
        return _grey_to_rgb(_sixteen_to_eight(image, label)), None, True, icc
    if mode in ("P", "PA"):
        has_alpha = (
            mode == "PA"
            or "transparency" in image.info
            or (image.palette is not None and image.palette.mode == "RGBA")
        )
        if has_alpha:
            rgba = np.asarray(image.convert("RGBA"))
            return np.ascontiguousarray(rgba[:, :, :3]), rgba[:, :, 3].copy(), False, icc
        return np.asarray(image.convert("RGB")).copy(), None, False, icc
    if mode in ("RGB", "RGBX", "YCbCr"):
        return np.asarray(image.convert("RGB")).copy(), None, False, icc
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, :3]), rgba[:, :, 3].copy(), False, icc
    if mode == "CMYK":
        rgb_image, icc = _cmyk_to_rgb(image, icc, label)
        return np.asarray(rgb_image).copy(), None, False, icc
    raise UnsupportedModeError(f"pixel format {mode!r} is not supported", source=label)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _sixteen_to_eight(image: Image.Image, label: str | None) -> np.ndarray:
    values = np.asarray(image).astype(np.int64)
    if values.min() < 0 or values.max() > 65535:
        raise UnsupportedModeError(f"{image.mode!r} pixels outside the 16-bit range", source=label)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)  # rounded 65535 -> 255


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None, label: str | None) -> tuple[Image.Image, bytes | None]:
    """Convert CMYK to RGB, colour-managed when the file has a CMYK profile.

    The CMYK profile must not travel with RGB pixels: we return an sRGB
    profile after a managed conversion, none after the naive one.
    """
    if icc:
        try:
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB"
            )
            if converted is not None:
                return converted, srgb.tobytes()
        except (ImageCms.PyCMSError, OSError) as exc:  # OSError: not a parseable profile
            logger.warning("%s: CMYK profile unusable (%s); converting without it", label or "image", exc)
    return image.convert("RGB"), None


def _bits_per_channel(image: Image.Image, data: bytes) -> int:
    if image.mode.startswith("I;16") or image.mode == "I":
        return 16
    if image.format == "PNG" and data[12:16] == b"IHDR":
        return 16 if data[24] == 16 else 8  # Pillow reads 48/64-bit PNG as 8-bit RGB(A)
    return 8


# libjpeg's standard luminance table (natural order), quality 50.
_STD_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip


def _scaled_tables() -> np.ndarray:
    qualities = np.arange(1, 101, dtype=np.float64)[:, None]
    scale = np.where(qualities < 50, 5000 / qualities, 200 - 2 * qualities)
    return np.clip(np.floor((_STD_LUMINANCE * scale + 50) / 100), 1, 255)


_QUALITY_TABLES = _scaled_tables()


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """libjpeg-equivalent quality (1-100) from the luminance quantisation table.

    Exact for libjpeg-family encoders; the closest match for others.
    """
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    luminance = np.asarray(tables[0], dtype=np.float64)
    errors = np.abs(_QUALITY_TABLES - luminance).sum(axis=1)
    return int(np.argmin(errors)) + 1


def _jpeg_subsampling(image: Image.Image) -> str | None:
    return _SUBSAMPLING_NAMES.get(JpegImagePlugin.get_sampling(image))


def _webp_lossless(data: bytes) -> bool:
    """True when the WebP bitstream is VP8L (lossless) rather than VP8 (lossy)."""
    offset = 12
    while offset + 8 <= len(data):
        fourcc = data[offset : offset + 4]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + length + (length & 1)  # chunks are padded to even length
    return False


# -- saving -----------------------------------------------------------------------


def save_image(
    rgb: np.ndarray,
    like: LoadedImage,
    destination: str | os.PathLike[str] | BinaryIO,
    *,
    quality: int | None = None,
    format: str | None = None,
    overwrite_source: bool = False,
    keep_metadata: bool = False,
) -> None:
    """Write ``rgb`` the way ``like`` was stored, without identifying metadata (unless ``keep_metadata``).

    Same format (unless ``format`` is given), same upright pixel size, alpha
    re-attached, grey saved as grey; only the ICC profile is kept (no EXIF,
    XMP, IPTC, comments or text chunks). JPEG cannot hold alpha, so a
    transparent source saved as JPEG loses it. A JPEG source is written at
    ``quality``, default its own estimated quality (at least
    :data:`MIN_JPEG_QUALITY`), and with its own chroma subsampling; other
    sources as JPEG at :data:`DEFAULT_JPEG_QUALITY`, 4:4:4. Pixels that did not
    change are better written with :func:`save_unchanged` (no re-encode). A path is written atomically and never
    replaces ``like``'s own file unless ``overwrite_source`` is True. ``keep_metadata``: the source's own
    metadata is written too (:func:`_kept_metadata`; its EXIF orientation is reset, the pixels being upright).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape != (like.height, like.width, 3):
        raise ValueError(f"expected uint8 pixels of shape {(like.height, like.width, 3)}, got {rgb.dtype} {rgb.shape}")
    fmt = (format or like.format).upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in _WRITE_FORMATS:
        reason = " (its 256-colour palette would erase the protection)" if fmt == "GIF" else ""
        raise UnsupportedFormatError(f"cannot write {fmt}{reason}; save as PNG or JPEG instead")
    image = _compose(rgb, like, fmt)
    params = _save_params(like, fmt, quality)
    if keep_metadata:
        params.update(_kept_metadata(like, fmt))

    def write(fp: BinaryIO) -> None:
        image.save(fp, format=fmt, **params)

    if isinstance(destination, (str, os.PathLike)):
        path = Path(destination)
        if not overwrite_source and like.source_path is not None and _same_file(path, like.source_path):
            raise WouldOverwriteSourceError(
                "refusing to overwrite the original photo; choose another output path", source=path
            )
        _atomic_write(path, write)
    else:
        write(destination)


def encode_image(
    rgb: np.ndarray, like: LoadedImage, *, quality: int | None = None, format: str | None = None,
    keep_metadata: bool = False,
) -> tuple[bytes, str]:
    """``save_image`` into memory: (encoded bytes, MIME type). Same formats, parameters and errors."""
    fmt = (format or like.format).upper()
    fmt = "JPEG" if fmt == "JPG" else fmt
    buffer = io.BytesIO()
    save_image(rgb, like, buffer, quality=quality, format=fmt, keep_metadata=keep_metadata)
    return buffer.getvalue(), _MIME_TYPES[fmt]


def unchanged_bytes(like: LoadedImage, *, keep_metadata: bool) -> tuple[bytes, str]:
    """What a photo whose pixels were not changed becomes: (bytes, MIME type).

    Without ``keep_metadata``: :func:`scrubbed_bytes`. With it: the original file as read, byte for byte (a GIF,
    which is not written, becomes a PNG carrying what of its metadata Pillow can write).
    """
    if not keep_metadata:
        return scrubbed_bytes(like)
    if like.source_bytes is not None and like.format in _WRITE_FORMATS:
        return like.source_bytes, _MIME_TYPES[like.format]
    fmt = like.format if like.format in _WRITE_FORMATS else "PNG"
    return encode_image(like.rgb, like, format=fmt, keep_metadata=True)


def save_unchanged(like: LoadedImage, destination: str | os.PathLike[str], *, keep_metadata: bool,
                   overwrite_source: bool = False) -> str:
    """Write :func:`unchanged_bytes` to a path, atomically; returns the format written ("JPEG", "PNG", ...)."""
    data, mime = unchanged_bytes(like, keep_metadata=keep_metadata)
    path = Path(destination)
    if not overwrite_source and like.source_path is not None and _same_file(path, like.source_path):
        raise WouldOverwriteSourceError("refusing to overwrite the original photo; choose another output path",
                                        source=path)
    _atomic_write(path, lambda fp: fp.write(data))
    return next(f for f, m in _MIME_TYPES.items() if m == mime)


def scrubbed_bytes(like: LoadedImage) -> tuple[bytes, str]:
    """The source file without identifying metadata, pixels bit-exact: (bytes, MIME type).

    JPEG, PNG and WebP are scrubbed in their container (no decode, no re-encode; a JPEG's EXIF orientation is
    kept as its only tag, so the photo still shows upright). Other formats, PNG/WebP with a rotation in EXIF,
    and containers the scrubber does not trust are re-encoded from the decoded pixels as :func:`save_image`
    does (lossless for PNG, TIFF and BMP).
    """
    from ally.imaging import strip

    data = like.source_bytes
    if data is not None:
        try:
            if like.format == "JPEG":
                return strip.strip_jpeg(data, like.orientation), _MIME_TYPES["JPEG"]
            if like.format == "PNG" and like.orientation == 1:
                return strip.strip_png(data), _MIME_TYPES["PNG"]
            if like.format == "WEBP" and like.orientation == 1:
                return strip.strip_webp(data), _MIME_TYPES["WEBP"]
        except strip.StripError as exc:
            logger.warning("%s: cannot scrub the container (%s); re-encoding", like.source_path or "image", exc)
    if like.format not in _WRITE_FORMATS:  # GIF: written as PNG, losslessly
        return encode_image(like.rgb, like, format="PNG")
    return encode_image(like.rgb, like)


def save_scrubbed(like: LoadedImage, destination: str | os.PathLike[str], *, overwrite_source: bool = False) -> str:
    """Write :func:`scrubbed_bytes` to a path, atomically; returns the format written ("JPEG", "PNG", ...)."""
    return save_unchanged(like, destination, keep_metadata=False, overwrite_source=overwrite_source)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as stored, read from the header only: nothing is decoded (a cheap bomb check).

    Raises the same :class:`ImageError` subclasses as :func:`load_image` for data it cannot identify.
    """
    with _open(bytes(data), None) as image:
        return image.size


def _compose(rgb: np.ndarray, like: LoadedImage, fmt: str) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if like.grey:
        image = image.convert("L")
    if like.alpha is not None and fmt != "JPEG":
        image.putalpha(Image.fromarray(like.alpha))
    return image


def _save_params(like: LoadedImage, fmt: str, quality: int | None) -> dict[str, object]:
    params: dict[str, object] = {}
    if like.icc_profile and fmt != "BMP" and _icc_colour_space(like.icc_profile) == ("GRAY" if like.grey else "RGB"):
        params["icc_profile"] = like.icc_profile
    if fmt == "JPEG":
        source_quality = like.jpeg_quality if like.format == "JPEG" else None
        params["quality"] = quality or max(source_quality or DEFAULT_JPEG_QUALITY, MIN_JPEG_QUALITY)
        # The source's chroma subsampling; 4:4:4 for other sources (and grey, where it does not apply).
        subsampling = like.jpeg_subsampling if like.format == "JPEG" else None
        params["subsampling"] = _SUBSAMPLING_CODES.get(subsampling or "4:4:4", 0)
        params["optimize"] = True
    elif fmt == "WEBP":
        if like.webp_lossless and quality is None:
            params["lossless"] = True
        else:
            params["quality"] = quality or DEFAULT_JPEG_QUALITY
        params["exact"] = True  # keep RGB under fully transparent pixels
    elif fmt == "TIFF":
        params["compression"] = "tiff_lzw"
    return params


_PNG_XMP_KEY = "XML:com.adobe.xmp"
_XMP_TIFF_TAG = 700


def _kept_metadata(like: LoadedImage, fmt: str) -> dict[str, object]:
    """Save parameters that carry the source's own metadata into ``fmt``: EXIF (GPS included; no Orientation, the
    pixels being upright already), XMP, the JPEG comment and PNG text chunks; the ICC profile is kept by
    :func:`_save_params` anyway. What Pillow cannot write (IPTC, maker segments; anything in a BMP) is dropped."""
    if like.source_bytes is None:
        return {}
    params: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(like.source_bytes)) as source:
            exif = source.getexif()
            info = dict(source.info)
    if fmt == "BMP":
        return params
    for tag in TIFF_LAYOUT_TAGS & set(exif):  # Orientation too: the pixels are upright already
        del exif[tag]
    xmp = info.get("xmp") or info.get(_PNG_XMP_KEY)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if fmt == "TIFF" and xmp:
        exif[_XMP_TIFF_TAG] = xmp  # a TIFF holds XMP as a tag of its IFD (which is its EXIF IFD0)
    if len(exif):
        exif.get_ifd(0x8825)  # load the GPS and Exif IFDs so that tobytes() writes them
        exif.get_ifd(0x8769)
        params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        if xmp:
            params["xmp"] = xmp
        if info.get("comment"):
            params["comment"] = info["comment"]
    elif fmt == "WEBP":
        if xmp:
            params["xmp"] = xmp
    elif fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        text = PngInfo()
        for key, value in info.items():
            if isinstance(value, str) and key not in ("xmp", _PNG_XMP_KEY) and like.format == "PNG":
                text.add_text(key, value)
        if xmp:
            text.add_itxt(_PNG_XMP_KEY, xmp.decode("utf-8", "replace"))
        if text.chunks:
            params["pnginfo"] = text
    elif fmt == "TIFF":
        if "exif" in params:
            params["compression"] = "raw"  # libtiff's compressed writer refuses the EXIF/GPS IFD pointers
    return params


def _icc_colour_space(icc: bytes) -> str:
    """The profile's data colour space ("RGB", "GRAY", "CMYK", ...) from its header.

    A profile is only written with pixels of its own colour space: an RGB
    profile on grey pixels (or the reverse) makes viewers misrender or ignore it.
    """
    return icc[16:20].decode("latin-1").strip() if len(icc) >= 20 else ""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except FileNotFoundError:
        return a.resolve() == b.resolve()


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write via a temp file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # 0o666 lets the process umask pick the final permissions, like open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ImageWriteError(f"cannot create output file: {exc.strerror or exc}", source=path) from exc
    try:
        with os.fdopen(fd, "wb") as fp:
            write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ImageWriteError(f"cannot write output file: {exc.strerror or exc}", source=path) from exc
        raise
