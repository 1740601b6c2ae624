"""``ally protect`` and ``ally demo``: protect photo files, never touching the originals."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ally_models.cache import default_cache

from ..config import config_for
from ..engine import Engine, PhotoProtection
from ..imaging.errors import ImageError, ImageWriteError, WouldOverwriteSourceError
from ..imaging.io import load_image
from ..imaging.metadata import metadata_report
from ..imaging.serve import SUFFIXES, Served, Written, output_format, prepare, round_trip, save_served
from ..levels import Level
from ..protections import DEFAULT_PROTECTIONS, EMOTION, FACES, METADATA
from ..sites import SiteProfile, profile
from .progress import Progress

EXIT_OK, EXIT_FAILED = 0, 1


READ_ONLY_SUFFIXES = {".gif": ".png"}  # GIF is read, written as PNG (a 256-colour palette erases a cloak)


def output_path(src: Path, output_dir: Path | None) -> Path:
    """``DIR/NAME`` with ``-o DIR``, else ``NAME.ally.EXT`` beside the original (a GIF's EXT becomes .png)."""
    suffix = READ_ONLY_SUFFIXES.get(src.suffix.lower(), src.suffix)
    if output_dir is not None:
        return output_dir / f"{src.stem}{suffix}"
    return src.with_name(f"{src.stem}.ally{suffix}")


@dataclass(frozen=True)
class ProtectedFile:
    """What ``protect_file`` did: the engine's result, where it wrote, at what size, how."""

    result: PhotoProtection
    dst: Path  # the file written (its suffix follows the format written, e.g. a PNG for a site becomes .jpg)
    served: Served
    written: Written


_SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                   ".bmp": "BMP"}


def protect_file(engine: Engine, src: Path, dst: Path, level: Level, *, force: bool = False,
                 protections: frozenset[str] = DEFAULT_PROTECTIONS, site: SiteProfile | None = None,
                 max_edge: int | None = None, full_size: bool = False) -> ProtectedFile:
    """Protect one photo file into ``dst``. Raises ``ImageError`` (the original is never modified).

    With ``site`` the photo is first brought to the size the site serves (unless ``full_size``) and written as
    the site serves it (``ally.imaging.serve``); ``max_edge`` caps the long edge too. ``dst``'s suffix follows
    the format written. Without ``metadata`` in ``protections`` the output keeps the original's metadata."""
    image = load_image(src)
    served = prepare(image, site=site, max_edge=max_edge, full_size=full_size)
    fmt = output_format(served)
    if _SUFFIX_FORMATS.get(dst.suffix.lower()) != fmt:
        dst = dst.with_suffix(SUFFIXES[fmt])
    if dst.resolve() == src.resolve():
        raise WouldOverwriteSourceError("refusing to write over the original", source=src)
    if dst.exists() and not force:
        raise ImageWriteError(f"{dst} exists; use --force to replace it", source=src)
    with Progress(src.name) as bar:
        result = engine.protect(served.image, level, lambda stage, fraction: bar.update(round(fraction * 100), stage),
                                protections=protections, site=site, written=round_trip(served))
    dst.parent.mkdir(parents=True, exist_ok=True)
    written = save_served(result.rgb, served, dst, keep_metadata=METADATA not in protections)
    return ProtectedFile(result, dst, served, written)


def served_line(done: ProtectedFile) -> str:
    """The size and encoding written, as the user reads it ("" when nothing was resized or chosen for a site)."""
    served, written = done.served, done.written
    if served.site is None and not served.resized:
        return ""
    size = f"{served.image.width}x{served.image.height}"
    if served.resized:
        size += f" (from {served.original.width}x{served.original.height})"
    elif served.full_size:
        size += " (full size kept)"
    else:
        size += " (already within the site's size)"
    quality = f" quality {written.quality}" if written.quality is not None else ""
    where = f" for {served.site.label}" if served.site else ""
    return f"  written{where} at {size}, {written.format}{quality}"


def _describe(src: Path, dst: Path, result: PhotoProtection, *, resized: bool = False) -> str:
    unchanged = "only resized" if resized else "pixels unchanged"
    if METADATA in result.protections:
        left = metadata_report(dst)
        scrub = "metadata removed" if not left.get("identifying") else f"metadata LEFT: {left['identifying']}"
    else:
        scrub = "metadata kept (not selected)"
    if not result.faces:
        return f"{src} → {dst}: no face found; {unchanged}, {scrub}"
    if not result.protections & {FACES, EMOTION}:
        why = "faces and emotion not selected"
    elif not result.cloaked:
        why = "level off"
    else:
        why = ""
    if why:
        return f"{src} → {dst}: {len(result.faces)} face(s) found, not cloaked ({why}); {unchanged}, {scrub}"
    # What was done; whether it worked is the receipt's to say, a line per face.
    what = "cloaked" if FACES in result.protections else "cloaked (expression only)"
    if result.protections >= {FACES, EMOTION}:
        what = "cloaked (identity and expression)"
    head = f"{src} → {dst}: {len(result.faces)} face(s) {what} at {result.level.value}; {scrub}"
    return "\n".join([head, *receipt_lines(result)])


def receipt_lines(result: PhotoProtection) -> list[str]:
    """The receipt, a line per face (and, with emotion, a line per face on its expression), as the user reads it."""
    lines = []
    for i, (rc, report) in enumerate(zip(result.receipts, result.reports), 1):
        if not rc.found:
            verdict = "cannot judge: its detector does not find this face even in the original"
        elif rc.distance is None:
            verdict = f"no longer finds the face after {rc.condition}"
        else:
            verdict = ("STILL MATCHES the original" if rc.matched else "no longer matches the original")
            verdict += f" after {rc.condition} (distance {rc.distance:.2f}; same person at ≤ {rc.threshold:.2f})"
        lines.append(f"  face {i}: {rc.recognizer} (not used to make the cloak) {verdict}; "
                     f"visibility SSIMULACRA2 {report.ssimulacra2:.0f}/100")
        if EMOTION in result.protections and i <= len(result.expression_receipts):
            lines.append(f"  face {i}: {result.expression_receipts[i - 1].line()}")
    if EMOTION in result.protections:  # faces without a face receipt (faces not selected)
        for i, er in enumerate(result.expression_receipts[len(result.receipts):], len(result.receipts) + 1):
            lines.append(f"  face {i}: {er.line()}")
    if result.still_matched:
        lines.append(f"  {result.still_matched} of {len(result.receipts)} face(s) still recognisable"
                     f"{_harder(result.level)}")
    if result.still_read:
        lines.append(f"  {result.still_read} of {len(result.expression_receipts)} face(s) still show their expression "
                     f"to a reader that was not used{_harder(result.level)}")
    return lines


def _harder(level: Level) -> str:
    harder = {Level.LOW: "medium", Level.MEDIUM: "high"}.get(level)
    return f" — protect harder with --level {harder}" if harder else " — this is the strongest level"


def run_protect(args: argparse.Namespace) -> int:
    config = config_for(args)
    level = args.level or config.level
    engine = Engine(config, default_cache())
    site = profile(args.site) if getattr(args, "site", None) else None
    failed = 0
    for src in args.photos:
        dst = output_path(src, args.output_dir)
        try:
            done = protect_file(engine, src, dst, level, force=args.force, protections=config.protect, site=site,
                                max_edge=getattr(args, "max_edge", None), full_size=getattr(args, "full_size", False))
        except ImageError as e:
            failed += 1
            print(f"error: {e} [{e.code}] (original untouched)", file=sys.stderr)
            continue
        print(_describe(src, done.dst, done.result, resized=done.served.resized))
        if served_line(done):
            print(served_line(done))
    if failed:
        print(f"{failed} of {len(args.photos)} photo(s) failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """Pull everything, then protect the bundled sample photo (a group photo from face-api's demo images)."""
    cache = default_cache()
    config = config_for(args)
    engine = Engine(replace(config, level=args.level), cache)
    engine.warm_up()
    sample = cache.files("faceapi-samples", pull=True)["sample1.jpg"]
    dst = args.output_dir / f"{sample.stem}.ally{sample.suffix}"  # the name `ally protect` would give it
    done = protect_file(engine, sample, dst, args.level, force=True, protections=config.protect)
    print(_describe(sample, done.dst, done.result))
    return EXIT_OK
