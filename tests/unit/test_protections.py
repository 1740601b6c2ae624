"""The protection selection (faces, emotion, metadata): one parser, the config's keys, the CLI's arguments, and
what a photo's metadata becomes when metadata removal is or is not selected (real JPEG/PNG files with EXIF+GPS)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.cli import build_parser
from ally.commands.protect import protect_file, receipt_lines
from ally.config import Config, ConfigError, config_for, load_config, save_config
from ally.engine import PhotoProtection
from ally.imaging.io import encode_image, load_image, save_unchanged, unchanged_bytes
from ally.imaging.metadata import metadata_report
from ally.levels import Level
from ally.protect.receipt import ExpressionReceipt
from ally.protections import (DEFAULT_PROTECTIONS, EMOTION, FACES, METADATA, ProtectionsError, format_protections,
                              parse_protections)

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="A. Person"/></rdf:RDF></x:xmpmeta>')


# -- the one parser --------------------------------------------------------------------------------------------


def test_parse_protections() -> None:
    assert parse_protections("faces,emotion,metadata") == {FACES, EMOTION, METADATA}
    assert parse_protections(" Faces , metadata ") == DEFAULT_PROTECTIONS
    assert parse_protections(["emotion"]) == {EMOTION}
    assert parse_protections("faces,faces") == {FACES}


@pytest.mark.parametrize("value,message", [("", "at least one"), (",", "at least one"), ([], "at least one"),
                                           ("faces,smile", "unknown protection 'smile'"),
                                           (["identity"], "choose from: faces, emotion, metadata")])
def test_parse_protections_refuses(value: object, message: str) -> None:
    with pytest.raises(ProtectionsError, match=message):
        parse_protections(value)  # type: ignore[arg-type]


def test_format_protections_is_canonical() -> None:
    assert format_protections({METADATA, FACES, EMOTION}) == "faces,emotion,metadata"
    assert format_protections(["metadata", "emotion"]) == "emotion,metadata"


# -- the config ------------------------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text + '\ndecoy_seed = "00"\n')
    return load_config(path)


def test_config_defaults_and_keys(tmp_path: Path) -> None:
    c = _config(tmp_path, "")
    assert c.protect == DEFAULT_PROTECTIONS and c.expression_target == "away"
    c = _config(tmp_path, 'protect = ["metadata", "emotion", "faces"]\nexpression_target = "neutral"')
    assert c.protect == {FACES, EMOTION, METADATA} and c.expression_target == "neutral"


def test_config_round_trips_the_selection(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(Config(protect=frozenset({METADATA, EMOTION}), expression_target="neutral", decoy_seed="ab"), path)
    assert 'protect = ["emotion", "metadata"]' in path.read_text()
    again = load_config(path)
    assert again.protect == {EMOTION, METADATA} and again.expression_target == "neutral"


@pytest.mark.parametrize("text,message", [
    ('protect = "faces"', "protect must be a list"),
    ('protect = []', "at least one"),
    ('protect = ["faces", "smile"]', "unknown protection 'smile'"),
    ('protect = ["faces", "faces"]', "twice"),
    ('protect = [1]', "protect must be a list"),
    ('expression_target = "happy"', "expression_target must be one of away, neutral"),
    ('expression_target = 1', "expression_target must be one of away, neutral"),
])
def test_config_refuses_bad_values(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, text)


# -- the command line ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["protect", "demo"])
def test_cli_protect_argument(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path))
    photos = ["x.jpg"] if command == "protect" else []
    args = build_parser().parse_args([command, *photos, "--protect", "metadata,faces,emotion",
                                      "--expression-target", "neutral"])
    assert args.protect == {FACES, EMOTION, METADATA}
    config = config_for(args)
    assert config.protect == {FACES, EMOTION, METADATA} and config.expression_target == "neutral"
    default = config_for(build_parser().parse_args([command, *photos]))
    assert default.protect == DEFAULT_PROTECTIONS and default.expression_target == "away"


@pytest.mark.parametrize("argv,message", [
    (["--protect", "faces,smile"], "argument --protect: unknown protection 'smile'; choose from: faces, emotion, "
                                   "metadata"),
    (["--protect", ""], "argument --protect: choose at least one protection: faces, emotion, metadata"),
    (["--expression-target", "happy"], "argument --expression-target: invalid choice: 'happy' (choose from "),
])
def test_cli_protect_argument_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["protect", "x.jpg", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    if "expression-target" in argv[0]:
        assert "away" in err and "neutral" in err


# -- metadata kept vs removed ----------------------------------------------------------------------------------


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:25 10:00:00"  # DateTime
    if orientation != 1:
        exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS IFD
    return exif


def _photo(fmt: str = "JPEG", orientation: int = 1, size: tuple[int, int] = (64, 48)) -> bytes:
    rgb = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    params: dict[str, object] = {"exif": _exif(orientation).tobytes()}
    if fmt in ("JPEG", "WEBP"):
        params["xmp"] = XMP
    if fmt == "JPEG":
        params["quality"] = 90
    Image.fromarray(rgb).save(buf, fmt, **params)
    return buf.getvalue()


def test_the_test_photo_carries_exif_gps_and_xmp() -> None:
    report = metadata_report(_photo())
    assert report["gps"]["GPSLatitudeRef"] == "N" and report["exif"]["Make"] == "PhoneMaker" and report["xmp"]


@pytest.mark.parametrize("out_format", [None, "PNG", "WEBP", "TIFF"])
def test_changed_pixels_keep_the_metadata_when_asked(out_format: str | None) -> None:
    like = load_image(_photo(orientation=6))
    protected = like.rgb ^ 7
    kept = metadata_report(encode_image(protected, like, format=out_format, keep_metadata=True)[0])
    assert kept["gps"]["GPSLatitude"] == [48.0, 51.0, 24.0] and kept["exif"]["Make"] == "PhoneMaker"
    assert "Orientation" not in kept["exif"]  # the pixels are upright: a kept rotation would turn them again
    if out_format in (None, "WEBP", "PNG", "TIFF"):
        assert kept["xmp"] or out_format == "PNG" and kept["text"]
    data, _ = encode_image(protected, like, format=out_format, keep_metadata=True)
    again = load_image(data)
    assert again.rgb.shape == like.rgb.shape  # shown upright, not rotated twice
    removed = metadata_report(encode_image(protected, like, format=out_format)[0])
    assert not removed["identifying"]


def test_unchanged_pixels_keep_the_original_file_or_are_scrubbed() -> None:
    data = _photo(orientation=6)
    like = load_image(data)
    kept, mime = unchanged_bytes(like, keep_metadata=True)
    assert kept == data and mime == "image/jpeg"  # byte for byte: nothing to protect, nothing removed
    scrubbed, _ = unchanged_bytes(like, keep_metadata=False)
    report = metadata_report(scrubbed)
    assert not report["identifying"] and not report["gps"]
    assert np.array_equal(load_image(scrubbed).rgb, like.rgb)


def test_unchanged_gif_keeps_what_png_can_hold(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF", comment=b"made by A. Person")
    like = load_image(buf.getvalue())
    assert save_unchanged(like, tmp_path / "out.png", keep_metadata=True) == "PNG"


# -- protect_file: the selection reaches the engine; metadata follows it ------------------------------------------


@dataclass
class _Report:
    ssimulacra2: float = 80.0


@dataclass
class StubEngine:
    """Changes the pixels when faces or emotion is asked (as the engine does); records the selection."""

    seen: list[frozenset[str]] = field(default_factory=list)

    def protect(self, image, level, progress=None, *, with_receipt=True, protections=DEFAULT_PROTECTIONS, site=None,
                written=None, only_me=None):
        self.seen.append(protections)
        if not protections & {FACES, EMOTION}:
            return PhotoProtection(image.rgb, level, [object()], protections=protections)
        return PhotoProtection(image.rgb ^ 5, level, [object()], [_Report()], protections=protections)


@pytest.mark.parametrize("selection,kept,changed", [
    ({FACES, METADATA}, False, True), ({FACES}, True, True), ({EMOTION}, True, True), ({METADATA}, False, False),
])
def test_protect_file_follows_the_selection(tmp_path: Path, selection: set[str], kept: bool, changed: bool) -> None:
    src = tmp_path / "holiday.jpg"
    src.write_bytes(_photo())
    engine = StubEngine()
    protect_file(engine, src, tmp_path / "out.jpg", Level.LOW, protections=frozenset(selection))  # type: ignore
    assert engine.seen == [selection]
    report = metadata_report(tmp_path / "out.jpg")
    assert bool(report["gps"]) is kept and bool(report["identifying"]) is kept
    assert (not np.array_equal(load_image(tmp_path / "out.jpg").rgb, load_image(src).rgb)) is changed
    if not changed and not kept:
        assert metadata_report(src)["gps"]  # the original is untouched


def test_receipt_lines_show_the_expression_and_offer_to_protect_harder() -> None:
    hidden = ExpressionReceipt("faceapi-expression", "JPEG 75 + 1080 px", True, "happy", 0.9, "neutral", 0.1, True)
    read = ExpressionReceipt("faceapi-expression", "JPEG 75 + 1080 px", True, "sad", 0.8, "sad", 0.7, False)
    result = PhotoProtection(np.zeros((2, 2, 3), np.uint8), Level.LOW, [object(), object()],
                             protections=frozenset({EMOTION, METADATA}), expression_receipts=[hidden, read])
    lines = receipt_lines(result)
    assert "face 1: an expression reader that was not used no longer reads happy" in lines[0]
    assert "face 2: an expression reader that was not used STILL READS sad" in lines[1]
    assert lines[2] == ("  1 of 2 face(s) still show their expression to a reader that was not used — protect harder "
                        "with --level medium")
    no_emotion = PhotoProtection(result.rgb, Level.LOW, result.faces, protections=DEFAULT_PROTECTIONS)
    assert receipt_lines(no_emotion) == []
