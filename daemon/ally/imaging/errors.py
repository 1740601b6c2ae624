"""Typed errors for image loading and saving.

Every error carries a stable machine-readable ``code`` (for the CLI, the
daemon API and the extension) and a human message. Catch :class:`ImageError`
to handle them all.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AnimatedImageError",
    "CorruptImageError",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageUnreadableError",
    "ImageWriteError",
    "NotAnImageError",
    "TruncatedImageError",
    "UnsupportedFormatError",
    "UnsupportedModeError",
    "WouldOverwriteSourceError",
]


class ImageError(Exception):
    """Base class: something is wrong with an image we were asked to read or write."""

    code: str = "image_error"

    def __init__(self, message: str, *, source: str | Path | None = None) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        super().__init__(f"{self.source}: {message}" if self.source else message)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-friendly form: ``{"code", "message", "source"}``."""
        return {"code": self.code, "message": self.message, "source": self.source}


class ImageNotFoundError(ImageError):
    """The path does not exist."""

    code = "not_found"


class ImageUnreadableError(ImageError):
    """The path exists but cannot be read (permissions, a directory, I/O error)."""

    code = "unreadable"


class NotAnImageError(ImageError):
    """The data is not an image in any format we recognise."""

    code = "not_an_image"


class UnsupportedFormatError(ImageError):
    """A recognised image format we cannot read or write (e.g. HEIC)."""

    code = "unsupported_format"


class TruncatedImageError(ImageError):
    """The file ends before the image data does."""

    code = "truncated"


class CorruptImageError(ImageError):
    """The image data is damaged and cannot be decoded."""

    code = "corrupt"


class ImageTooLargeError(ImageError):
    """Too many pixels: refused before decoding (decompression-bomb guard)."""

    code = "too_large"


class AnimatedImageError(ImageError):
    """More than one frame (animation or multi-page); we only protect still images."""

    code = "animated"


class UnsupportedModeError(ImageError):
    """A pixel format (e.g. floating-point, LAB) we cannot convert to RGB faithfully."""

    code = "unsupported_mode"


class ImageWriteError(ImageError):
    """Writing the output failed; no partial file was left behind."""

    code = "write_failed"


class WouldOverwriteSourceError(ImageError):
    """Refused to replace the original photo without an explicit request."""

    code = "would_overwrite_source"
