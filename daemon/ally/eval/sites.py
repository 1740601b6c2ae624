"""What a social site does to an upload, with real codecs (PIL), for measuring protection after it."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SiteCondition:
    name: str
    jpeg_quality: int | None  # None: the file as Ally wrote it
    long_edge: int | None  # resize so the long edge is at most this (sites never upscale)

    def apply(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The photo as the site serves it, and the scale applied to its coordinates."""
        image = Image.fromarray(rgb)
        scale = 1.0
        if self.long_edge and max(image.size) > self.long_edge:
            scale = self.long_edge / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        if self.jpeg_quality is not None:
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=self.jpeg_quality, subsampling="4:2:0")
            image = Image.open(io.BytesIO(buf.getvalue()))
        return np.asarray(image.convert("RGB")), scale


AS_UPLOADED = SiteCondition("as uploaded", None, None)
CONDITIONS = (AS_UPLOADED, SiteCondition("JPEG 75 + 1080 px", 75, 1080), SiteCondition("JPEG 75 + 2048 px", 75, 2048))
