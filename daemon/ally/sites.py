"""Site profiles: what each social site serves of an uploaded photo (size, JPEG quality, format).

The one table is ``sites.json`` beside this module; the extension builds the same file into its code
(``extension/build.mjs``). It is parsed and validated here, and only here: a bad file is a :class:`SiteError`
that says which entry and which field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SITES_PATH = Path(__file__).with_name("sites.json")
FORMATS = ("jpeg",)  # what sites serve photos as; PNG/WebP could follow
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_FIELDS = {"label", "hosts", "long_edge", "max_width", "max_pixels", "jpeg_quality", "format", "source"}
MIN_EDGE = 64  # no site serves photos smaller than this; a smaller figure in the table is a typo


class SiteError(ValueError):
    """The site table is malformed, or a site name is unknown."""


@dataclass(frozen=True)
class SiteProfile:
    """What one site serves of an upload."""

    name: str  # the id used on the wire and on the command line, e.g. "instagram"
    label: str  # for people, e.g. "X (Twitter)"
    hosts: tuple[str, ...]  # host names whose pages (and subdomains) belong to the site
    long_edge: int | None  # the longest side served, px; None: the site serves the uploaded size
    max_width: int | None  # a cap on the width alone (Instagram: 1080), or None
    max_pixels: int | None  # a cap on width x height (Mastodon: 8.3 MP), or None
    jpeg_quality: int  # the quality the site re-encodes at
    format: str  # what the site serves: "jpeg"
    source: str  # where the figures come from

    def served_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the site serves a ``width`` x ``height`` upload at: every cap applied, never larger."""
        return scaled_size(width, height, self.scale_for(width, height))

    def scale_for(self, width: int, height: int) -> float:
        """The factor (≤ 1) that brings ``width`` x ``height`` within this site's caps."""
        scale = 1.0
        if self.long_edge is not None:
            scale = min(scale, self.long_edge / max(width, height))
        if self.max_width is not None:
            scale = min(scale, self.max_width / width)
        if self.max_pixels is not None:
            scale = min(scale, math.sqrt(self.max_pixels / (width * height)))
        return scale


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``width`` x ``height`` times ``scale`` (≤ 1), rounded down so that no cap is exceeded, at least 1 px."""
    if scale >= 1.0:
        return width, height
    return max(1, math.floor(width * scale + 1e-9)), max(1, math.floor(height * scale + 1e-9))


def _int(entry: dict[str, Any], key: str, where: str, low: int, high: int, *, optional: bool) -> int | None:
    value = entry.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SiteError(f"{where}: {key} must be a whole number from {low} to {high}"
                        f"{' or null' if optional else ''}, not {value!r}")
    return value


def parse_sites(raw: Any, origin: str = "sites.json") -> dict[str, SiteProfile]:
    """Validate the table's JSON (already decoded) into profiles by name; :class:`SiteError` says what is wrong."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sites"), dict) or not raw["sites"]:
        raise SiteError(f"{origin}: expected an object with a non-empty \"sites\" object")
    if raw.get("version") != 1:
        raise SiteError(f"{origin}: version must be 1, not {raw.get('version')!r}")
    profiles: dict[str, SiteProfile] = {}
    owner: dict[str, str] = {}
    for name, entry in raw["sites"].items():
        where = f"{origin}: site {name!r}"
        if not _NAME_RE.match(name):
            raise SiteError(f"{where}: a site name is lower-case letters, digits, '.', '_' or '-'")
        if not isinstance(entry, dict):
            raise SiteError(f"{where}: expected an object")
        unknown, missing = set(entry) - _FIELDS, _FIELDS - set(entry)
        if unknown:
            raise SiteError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if missing:
            raise SiteError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
        for key in ("label", "source"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise SiteError(f"{where}: {key} must be a non-empty string")
        hosts = entry["hosts"]
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and _HOST_RE.match(h)
                                                                for h in hosts):
            raise SiteError(f"{where}: hosts must be a non-empty list of lower-case host names, e.g. [\"x.com\"]")
        for host in hosts:
            if host in owner:
                raise SiteError(f"{where}: host {host!r} already belongs to site {owner[host]!r}")
            owner[host] = name
        if entry["format"] not in FORMATS:
            raise SiteError(f"{where}: format must be one of {', '.join(FORMATS)}, not {entry['format']!r}")
        profiles[name] = SiteProfile(
            name=name, label=entry["label"], hosts=tuple(hosts),
            long_edge=_int(entry, "long_edge", where, MIN_EDGE, 65535, optional=True),
            max_width=_int(entry, "max_width", where, MIN_EDGE, 65535, optional=True),
            max_pixels=_int(entry, "max_pixels", where, MIN_EDGE * MIN_EDGE, 1_000_000_000, optional=True),
            jpeg_quality=_int(entry, "jpeg_quality", where, 1, 100, optional=False),  # type: ignore[arg-type]
            format=entry["format"], source=entry["source"],
        )
    return profiles


def load_sites(path: Path | None = None) -> dict[str, SiteProfile]:
    """The site table by name (the shipped ``sites.json`` unless ``path``); :class:`SiteError` if it is bad."""
    if path is None:
        return dict(_shipped())
    return _load(path)


def _load(path: Path) -> dict[str, SiteProfile]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SiteError(f"{path}: cannot read the site table: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SiteError(f"{path}: not valid JSON: {e}") from None
    return parse_sites(raw, str(path))


@cache
def _shipped() -> dict[str, SiteProfile]:
    return _load(SITES_PATH)


def site_names() -> tuple[str, ...]:
    """The shipped sites' names, in the table's order."""
    return tuple(_shipped())


def profile(name: str) -> SiteProfile:
    """The shipped profile called ``name``; :class:`SiteError` naming the known ones otherwise."""
    found = _shipped().get(name)
    if found is None:
        raise SiteError(f"unknown site {name!r}; known sites: {', '.join(_shipped())}")
    return found


def site_for_host(host: str, sites: dict[str, SiteProfile] | None = None) -> SiteProfile | None:
    """The site a host name belongs to (the host itself or a subdomain of one of its hosts), or None."""
    host = host.strip().lower().rstrip(".")
    for site in (sites if sites is not None else _shipped()).values():
        if any(host == h or host.endswith("." + h) for h in site.hosts):
            return site
    return None
