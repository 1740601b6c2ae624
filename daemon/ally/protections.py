"""What a photo protection does: the user's selection among faces, emotion and metadata.

- ``faces``: the face cloak against face recognition (identity);
- ``emotion``: the same perturbation also hides the facial expression from emotion recognition;
- ``metadata``: EXIF/XMP/IPTC/GPS and other identifying metadata removed.

The selection is one value everywhere (CLI ``--protect``, the daemon's ``protect`` field, the config, the
extension's settings) and is parsed here only.
"""

from __future__ import annotations

from collections.abc import Iterable

FACES, EMOTION, METADATA = "faces", "emotion", "metadata"
PROTECTIONS: tuple[str, ...] = (FACES, EMOTION, METADATA)
DEFAULT_PROTECTIONS: frozenset[str] = frozenset({FACES, METADATA})

# How the expression term pushes: away from the face's own clean expression (untargeted), or toward "neutral".
EXPRESSION_TARGETS: tuple[str, ...] = ("away", "neutral")


class ProtectionsError(ValueError):
    pass


def parse_protections(value: str | Iterable[str]) -> frozenset[str]:
    """``"faces,emotion,metadata"`` (or a list of names) → the selection; an unknown or empty one is an error."""
    names = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    if not names:
        raise ProtectionsError(f"choose at least one protection: {', '.join(PROTECTIONS)}")
    unknown = sorted(set(names) - set(PROTECTIONS))
    if unknown:
        raise ProtectionsError(f"unknown protection {', '.join(map(repr, unknown))}; choose from: {', '.join(PROTECTIONS)}")
    return frozenset(names)


def format_protections(selection: Iterable[str]) -> str:
    """The canonical spelling, in the order of ``PROTECTIONS``: ``faces,emotion,metadata``."""
    chosen = set(selection)
    return ",".join(p for p in PROTECTIONS if p in chosen)
