"""``ally protect`` from the command line: bad inputs get a clear error and the original stays untouched;
a photo without a face still loses its metadata. Uses the real MTCNN detector (no recognizer is loaded when no
face is found, so these stay fast)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.cli import main
from ally.imaging.metadata import metadata_report

pytestmark = pytest.mark.real_models


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_model: Callable[[str], dict]) -> None:
    real_model("mtcnn")  # skip (or fail under tests/run.sh) without the detector
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path / "config"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"


def _landscape(width: int = 320, height: int = 240) -> Image.Image:
    """A smooth gradient: no face in it."""
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    rgb = np.concatenate([x * np.ones_like(y), y * np.ones_like(x), 0.5 * np.ones((height, width, 1))], axis=2)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _gps_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:25 10:00:00"  # DateTime
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS IFD
    return exif.tobytes()


def _bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _animated_gif() -> bytes:
    frames = [_landscape(64, 48), _landscape(64, 48).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _bomb() -> bytes:
    # 9000 × 9000 = 81 MP, far over the limit, yet a tiny file: refused from the header, before decoding.
    return _bytes(Image.new("1", (9000, 9000)), "PNG")


BAD_INPUTS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (file bytes, file name, error code)
    "truncated": (lambda: _bytes(_landscape(), "JPEG", quality=90)[:1500], "cut.jpg", "truncated"),
    "not an image": (lambda: b"%PDF-1.7\n this is a document, not a photo\n", "doc.jpg", "not_an_image"),
    "decompression bomb": (_bomb, "bomb.png", "too_large"),
    "animated": (_animated_gif, "anim.gif", "animated"),
    "empty": (lambda: b"", "empty.png", "not_an_image"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_error_and_the_original_is_untouched(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, name, code = BAD_INPUTS[case]
    src = tmp_path / name
    src.write_bytes(make())
    before = _digest(src)
    out = tmp_path / "out"
    assert main(["protect", str(src), "-o", str(out), "--level", "low"]) == 1
    err = capsys.readouterr().err
    assert f"[{code}]" in err and "original untouched" in err, err
    assert _digest(src) == before
    assert not (out / name).exists()


def test_unreadable_path_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a-folder.jpg"
    folder.mkdir()
    assert main(["protect", str(folder), str(tmp_path / "missing.jpg"), "--level", "low"]) == 1
    err = capsys.readouterr().err
    assert "[unreadable]" in err or "[not_found]" in err
    assert "2 of 2 photo(s) failed" in err


def test_one_bad_photo_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    _landscape().save(good)
    bad.write_bytes(b"not a png")
    assert main(["protect", str(bad), str(good), "--level", "low"]) == 1
    assert (tmp_path / "good.ally.png").is_file()
    assert "1 of 2 photo(s) failed" in capsys.readouterr().err


@pytest.mark.parametrize("mode,fmt", [("CMYK", "JPEG"), ("I;16", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG")])
def test_unusual_pixel_formats_are_handled_and_keep_their_kind(
    mode: str, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _landscape()
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257))
    elif mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(Image.linear_gradient("L").resize(image.size))
    else:
        image = image.convert(mode)
    src = tmp_path / f"photo.{fmt.lower().replace('jpeg', 'jpg')}"
    image.save(src, fmt)
    before = _digest(src)
    assert main(["protect", str(src), "--level", "low"]) == 0, capsys.readouterr().err
    assert _digest(src) == before
    dst = src.with_name(f"photo.ally{src.suffix}")
    with Image.open(dst) as out:
        assert out.size == image.size and out.format == fmt
        if mode in ("RGBA", "LA"):
            assert "A" in out.getbands()  # transparency kept


def test_no_face_still_scrubs_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "holiday.jpg"
    _landscape().save(src, "JPEG", quality=92, exif=_gps_exif())
    assert metadata_report(src)["identifying"], "the test photo must carry identifying metadata"
    before = _digest(src)
    assert main(["protect", str(src), "--level", "medium"]) == 0
    out = capsys.readouterr().out
    assert "no face found" in out and "metadata removed" in out
    dst = tmp_path / "holiday.ally.jpg"
    assert not metadata_report(dst)["identifying"]
    with Image.open(dst) as image:
        assert not image.getexif()
    assert _digest(src) == before


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.png"
    _landscape().save(src)
    (tmp_path / "p.ally.png").write_bytes(b"earlier result")
    assert main(["protect", str(src), "--level", "low"]) == 1
    assert "use --force" in capsys.readouterr().err
    assert (tmp_path / "p.ally.png").read_bytes() == b"earlier result"
    assert main(["protect", str(src), "--level", "low", "--force"]) == 0


def test_unknown_level_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["protect", str(tmp_path / "x.jpg"), "--level", "extreme"])
    assert info.value.code == 2
    assert "unknown privacy level" in capsys.readouterr().err


def test_metadata_not_selected_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--protect faces``: the photo keeps its EXIF and GPS (here no face: the original file, byte for byte)."""
    src = tmp_path / "holiday.jpg"
    _landscape().save(src, "JPEG", quality=92, exif=_gps_exif())
    assert main(["protect", str(src), "--level", "medium", "--protect", "faces"]) == 0
    out = capsys.readouterr().out
    assert "no face found; pixels unchanged, metadata kept (not selected)" in out, out
    dst = tmp_path / "holiday.ally.jpg"
    report = metadata_report(dst)
    assert report["gps"]["GPSLatitude"] == [48.0, 51.0, 24.0] and report["exif"]["Make"] == "PhoneMaker"
    assert dst.read_bytes() == src.read_bytes()


def test_metadata_selected_alone_is_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "holiday.jpg"
    _landscape().save(src, "JPEG", quality=92, exif=_gps_exif())
    assert main(["protect", str(src), "--protect", "metadata"]) == 0
    assert "metadata removed" in capsys.readouterr().out
    assert not metadata_report(tmp_path / "holiday.ally.jpg")["identifying"]


def test_protect_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('protect = ["faces", "emotion"]\n')
    src = tmp_path / "holiday.jpg"
    _landscape().save(src, "JPEG", quality=92, exif=_gps_exif())
    assert main(["protect", str(src)]) == 0
    assert "metadata kept (not selected)" in capsys.readouterr().out
    assert metadata_report(tmp_path / "holiday.ally.jpg")["gps"]


def test_bad_protect_in_the_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('protect = ["faces", "mood"]\n')
    src = tmp_path / "p.png"
    _landscape().save(src)
    assert main(["protect", str(src)]) == 1
    assert "ally: error: protect: unknown protection 'mood'; choose from: faces, emotion, metadata" in \
        capsys.readouterr().err
    assert not (tmp_path / "p.ally.png").exists()


def test_bad_protect_argument_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["protect", str(tmp_path / "x.jpg"), "--protect", "faces,mood"])
    assert info.value.code == 2
    assert "unknown protection 'mood'; choose from: faces, emotion, metadata" in capsys.readouterr().err


def test_faces_and_emotion_not_selected_leave_the_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         real_model: Callable[[str], dict]) -> None:
    """A photo with faces and ``--protect metadata``: found, not cloaked, pixels bit-exact, metadata removed."""
    src = tmp_path / "group.jpg"
    src.write_bytes(real_model("faceapi-samples")["sample1.jpg"].read_bytes())
    assert main(["protect", str(src), "--level", "medium", "--protect", "metadata"]) == 0
    out = capsys.readouterr().out
    assert "3 face(s) found, not cloaked (faces and emotion not selected); pixels unchanged, metadata removed" in out
    with Image.open(src) as a, Image.open(tmp_path / "group.ally.jpg") as b:
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
