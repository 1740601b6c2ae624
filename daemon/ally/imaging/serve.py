"""Serve-size protection: bring a photo to the size a site will serve it at, before it is cloaked.

A site shrinks an upload to its own size (Instagram: 1080 px wide); a cloak computed at full size is then
averaged away by that downscale. So the photo is resized first, the cloak is computed at the served size, and
the file is written as the site serves it (JPEG at or above the site's quality). One path for the CLI
(``ally protect --site``) and the daemon (``protect.image`` with ``site``): :func:`prepare`, then
:func:`encode_served` / :func:`save_served`.

Choices:
- never upscaled; the loaded image is already upright (EXIF orientation applied in ``load_image``), so the
  resize keeps what the viewer sees, and the written file carries no orientation tag;
- Lanczos (Pillow's, with a box pre-reduction for large factors): sharp and alias-free;
- JPEG at ``max(site quality, SERVE_JPEG_QUALITY)``: the site's own re-encode is then the only loss of note;
- a photo with transparency stays PNG (a JPEG would need a background colour Ally would have to guess; the site
  flattens it as it always does); a photo resized without a site (``--max-edge``) keeps its format.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..sites import SiteProfile, scaled_size
from .errors import WouldOverwriteSourceError
from .io import (
    _MIME_TYPES,
    DEFAULT_JPEG_QUALITY,
    MIN_JPEG_QUALITY,
    LoadedImage,
    _atomic_write,
    _same_file,
    encode_image,
    load_image,
    unchanged_bytes,
)

SERVE_JPEG_QUALITY = 92  # at least this when written for a site: above every site's own quality
_SITE_FORMATS = {"jpeg": "JPEG"}


@dataclass(frozen=True)
class Served:
    """A photo prepared for a site: what to cloak, and how to write it."""

    image: LoadedImage  # what to cloak: resized (or the original, when it is small enough or kept full size)
    original: LoadedImage  # as loaded
    site: SiteProfile | None
    format: str | None  # Pillow format to write ("JPEG", "PNG"), or None: the source's (GIF: PNG)
    quality: int | None  # JPEG quality to write, or None: save_image's rule (the source's, at least 75)
    full_size: bool = False  # the user kept the full size for this site

    @property
    def resized(self) -> bool:
        return self.image is not self.original

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) that is cloaked and written."""
        return self.image.width, self.image.height

    def as_dict(self) -> dict[str, object]:
        """What the result reports: the site, the size cloaked, whether it was resized (the quality: ``Written``)."""
        return {"site": self.site.name if self.site else None, "width": self.image.width,
                "height": self.image.height, "original_width": self.original.width,
                "original_height": self.original.height, "resized": self.resized, "full_size": self.full_size}


def resize_to(image: LoadedImage, width: int, height: int) -> LoadedImage:
    """``image`` at ``width`` x ``height`` (a downscale: Lanczos), alpha alike; the same object if unchanged."""
    if (width, height) == (image.width, image.height):
        return image
    if width > image.width or height > image.height:
        raise ValueError(f"refusing to upscale {image.width}x{image.height} to {width}x{height}")
    pixels = Image.fromarray(image.rgb)
    if image.alpha is not None:  # resized together, so that transparent pixels do not bleed into the edges
        pixels.putalpha(Image.fromarray(image.alpha))
    small = pixels.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    array = np.array(small)  # a writable copy, as load_image gives (np.asarray of an image is read-only)
    rgb = np.ascontiguousarray(array[..., :3])
    alpha = np.ascontiguousarray(array[..., 3]) if image.alpha is not None else None
    # Stored upright now (orientation 1). No source bytes: nothing may hand out the full-size original as "this".
    return replace(image, rgb=rgb, alpha=alpha, size=(width, height), orientation=1, source_bytes=None)


def fit_long_edge(image: LoadedImage, long_edge: int) -> LoadedImage:
    """``image`` with its longest side at most ``long_edge`` px (never upscaled; the same object if it fits)."""
    if long_edge < 1:
        raise ValueError(f"long edge must be at least 1 px, not {long_edge}")
    scale = long_edge / max(image.width, image.height)
    return resize_to(image, *scaled_size(image.width, image.height, scale))


def fit_site(image: LoadedImage, site: SiteProfile) -> LoadedImage:
    """``image`` at the size ``site`` serves it (every cap of the profile; never upscaled)."""
    return resize_to(image, *site.served_size(image.width, image.height))


def prepare(image: LoadedImage, *, site: SiteProfile | None = None, max_edge: int | None = None,
            full_size: bool = False, format: str | None = None) -> Served:
    """Resize ``image`` for ``site`` (unless ``full_size``) and to ``max_edge``, and choose the output format and
    quality. ``format``: a format the caller asked for explicitly ("JPEG", "PNG", "WEBP"), which wins."""
    resized = image
    if site is not None and not full_size:
        resized = fit_site(resized, site)
    if max_edge is not None:
        resized = fit_long_edge(resized, max_edge)
    out = format
    if out is None and site is not None:
        out = "PNG" if image.alpha is not None else _SITE_FORMATS[site.format]
    quality = None
    if site is not None and (out or image.format) == "JPEG":
        quality = max(site.jpeg_quality, SERVE_JPEG_QUALITY)
    return Served(resized, image, site, out, quality, full_size and site is not None)


def output_format(served: Served) -> str:
    """The Pillow format :func:`encode_served` writes."""
    if served.format is not None:
        return served.format
    return "PNG" if served.original.format == "GIF" else served.original.format


@dataclass(frozen=True)
class Written:
    """The file handed out, and what it is."""

    data: bytes
    mime: str
    format: str  # "JPEG", "PNG", ...
    quality: int | None  # the JPEG quality written (the source's estimate when not re-encoded); None: not JPEG
    reencoded: bool


def encode_served(rgb: np.ndarray, served: Served, *, keep_metadata: bool) -> Written:
    """The file to hand out. Pixels unchanged, not resized, same format: the original (scrubbed, or as read with
    ``keep_metadata``), not re-encoded; else ``rgb`` encoded as :func:`prepare` chose (with ``keep_metadata``,
    the original's metadata carried over)."""
    fmt = output_format(served)
    unchanged = rgb is served.image.rgb or np.array_equal(rgb, served.image.rgb)
    if unchanged and not served.resized and fmt == served.original.format:
        data, mime = unchanged_bytes(served.original, keep_metadata=keep_metadata)
        written = next(f for f, m in _MIME_TYPES.items() if m == mime)
        quality = served.original.jpeg_quality if written == "JPEG" else None
        return Written(data, mime, written, quality, False)
    like = replace(served.image, source_bytes=served.original.source_bytes) if keep_metadata else served.image
    data, mime = encode_image(rgb, like, format=fmt, quality=served.quality, keep_metadata=keep_metadata)
    quality = None
    if fmt == "JPEG":
        source = served.original.jpeg_quality if served.original.format == "JPEG" else None
        quality = served.quality or max(source or DEFAULT_JPEG_QUALITY, MIN_JPEG_QUALITY)  # save_image's rule
    return Written(data, mime, fmt, quality, True)


def save_served(rgb: np.ndarray, served: Served, destination: str | os.PathLike[str], *,
                keep_metadata: bool) -> Written:
    """:func:`encode_served` written to ``destination`` (atomically; never over the original)."""
    path = Path(destination)
    source = served.original.source_path
    if source is not None and _same_file(path, source):
        raise WouldOverwriteSourceError("refusing to overwrite the original photo; choose another output path",
                                        source=path)
    written = encode_served(rgb, served, keep_metadata=keep_metadata)
    _atomic_write(path, lambda fp: fp.write(written.data))
    return written


SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}


def round_trip(served: Served) -> Callable[[np.ndarray], np.ndarray]:
    """What a cloaked photo's pixels become in the file :func:`encode_served` writes for ``served`` (encoded as it
    will be, decoded again): the cloak's visibility floor is checked on these."""
    fmt = output_format(served)

    def written(rgb: np.ndarray) -> np.ndarray:
        data, _ = encode_image(rgb, served.image, format=fmt, quality=served.quality)
        return load_image(data).rgb

    return written
