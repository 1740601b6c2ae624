"""Safe image loading/saving: odd inputs built in-test, conversions, errors, atomic writes."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from ally.imaging import errors
from ally.imaging.io import MAX_PIXELS, LoadedImage, load_image, save_image
from ally.imaging.metadata import metadata_report
from PIL import Image, ImageCms, ImageFile

RNG = np.random.default_rng(1234)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(width: int, height: int, depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG whose IHDR says width x height, with whatever (possibly too little) pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def noise_rgb(height: int = 24, width: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save_bytes(rgb: np.ndarray, like: LoadedImage, **params: object) -> bytes:
    buffer = io.BytesIO()
    save_image(rgb, like, buffer, **params)  # type: ignore[arg-type]
    return buffer.getvalue()


def assert_error(data: bytes | str | Path, error: type[errors.ImageError], code: str) -> errors.ImageError:
    with pytest.raises(error) as info:
        load_image(data)
    assert info.value.code == code
    assert info.value.message
    return info.value


# -- refused inputs -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
def test_truncated(fmt: str) -> None:
    data = encode(Image.fromarray(noise_rgb(64, 64)), fmt)
    assert_error(data[: len(data) // 2], errors.TruncatedImageError, "truncated")


def test_corrupt_png_data() -> None:
    data = bytearray(encode(Image.fromarray(noise_rgb(64, 64)), "PNG"))
    data[200] ^= 0xFF
    assert_error(bytes(data), errors.CorruptImageError, "corrupt")


@pytest.mark.parametrize(
    "data",
    [RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes(), b"just some text, not a picture\n" * 20, b""],
    ids=["random", "text", "empty"],
)
def test_not_an_image(data: bytes) -> None:
    assert_error(data, errors.NotAnImageError, "not_an_image")


def test_heic_is_clearly_unsupported() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    err = assert_error(heic, errors.UnsupportedFormatError, "unsupported_format")
    assert "HEIC" in err.message


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    assert_error(tmp_path / "nope.jpg", errors.ImageNotFoundError, "not_found")
    assert_error(tmp_path, errors.ImageUnreadableError, "unreadable")


@pytest.mark.parametrize("side", [100_000, 10_000, 8_000], ids=["1e10px", "1e8px", "64MP"])
def test_pixel_bomb_refused_from_header(side: int) -> None:
    # Only ~10 bytes of pixel data: decoding would fail as truncated, so a
    # too_large error proves the size check ran before decoding.
    bomb = crafted_png(side, side, 8, 2, b"\x00" * 10)
    assert len(bomb) < 100
    assert side * side > MAX_PIXELS
    assert_error(bomb, errors.ImageTooLargeError, "too_large")


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animations_and_multipage_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    err = assert_error(data, errors.AnimatedImageError, "animated")
    assert "3 frames" in err.message


def test_float_pixels_unsupported() -> None:
    data = encode(Image.fromarray(RNG.random((8, 8)).astype(np.float32)), "TIFF")
    assert_error(data, errors.UnsupportedModeError, "unsupported_mode")


def test_refuses_to_run_with_load_truncated_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        load_image(encode(Image.new("RGB", (4, 4)), "PNG"))


def test_error_codes_are_distinct_and_serialisable() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ImageError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) >= 12
    err = errors.TruncatedImageError("cut short", source="/x.jpg")
    assert err.to_dict() == {"code": "truncated", "message": "cut short", "source": "/x.jpg"}
    assert isinstance(err, errors.ImageError) and "/x.jpg" in str(err)


def test_failed_loads_leave_file_untouched(tmp_path: Path) -> None:
    good = encode(Image.fromarray(noise_rgb(64, 64)), "JPEG")
    frames = [Image.new("RGB", (8, 8), (i * 80, 0, 0)) for i in range(3)]
    cases = {
        "truncated.jpg": good[: len(good) // 2],
        "bomb.png": crafted_png(9000, 9000, 8, 2, b"\x00"),
        "anim.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "text.jpg": b"hello",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(errors.ImageError):
            load_image(path)
        assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)


# -- conversions that must work --------------------------------------------------------------


def test_jpeg_quality_subsampling_and_save_params() -> None:
    rgb = noise_rgb()
    loaded = load_image(encode(Image.fromarray(rgb), "JPEG", quality=83, subsampling=2))
    assert (loaded.format, loaded.mode, loaded.jpeg_quality, loaded.jpeg_subsampling) == ("JPEG", "RGB", 83, "4:2:0")
    again = load_image(save_bytes(loaded.rgb, loaded))
    assert again.jpeg_quality == 83 and again.jpeg_subsampling == "4:2:0"  # about the source's, not 95 / 4:4:4
    low = load_image(encode(Image.fromarray(rgb), "JPEG", quality=40, subsampling=1))
    again = load_image(save_bytes(low.rgb, low))
    assert again.jpeg_quality == 75 and again.jpeg_subsampling == "4:2:2"  # never below MIN_JPEG_QUALITY
    png = load_image(encode(Image.fromarray(rgb), "PNG"))
    as_jpeg = load_image(save_bytes(png.rgb, png, format="JPEG"))
    assert as_jpeg.jpeg_quality == 95 and as_jpeg.jpeg_subsampling == "4:4:4"  # no source quality to keep
    high = load_image(encode(Image.fromarray(rgb), "JPEG", quality=98))
    assert load_image(save_bytes(high.rgb, high)).jpeg_quality == 98
    assert load_image(save_bytes(high.rgb, high, quality=90)).jpeg_quality == 90


def test_cmyk_jpeg_becomes_rgb() -> None:
    rgb = noise_rgb()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    loaded = load_image(encode(cmyk, "JPEG", quality=100))
    assert loaded.mode == "CMYK" and loaded.rgb.shape == rgb.shape and loaded.rgb.dtype == np.uint8
    assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 12  # JPEG loss only
    saved = Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded)))
    assert saved.mode == "RGB" and "icc_profile" not in saved.info  # no CMYK profile on RGB pixels


@pytest.mark.parametrize("icc", [b"not a profile" * 10, "srgb"], ids=["garbage", "wrong-colour-space"])
def test_cmyk_with_unusable_profile_falls_back(icc: bytes | str, caplog: pytest.LogCaptureFixture) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() if icc == "srgb" else icc
    cmyk = Image.new("RGB", (8, 8), (200, 30, 40)).convert("CMYK")
    loaded = load_image(encode(cmyk, "JPEG", quality=100, icc_profile=profile))
    assert loaded.icc_profile is None
    assert np.abs(loaded.rgb[0, 0].astype(int) - [200, 30, 40]).max() <= 3
    assert "CMYK profile unusable" in caplog.text


def test_sixteen_bit_grey_png() -> None:
    values = RNG.integers(0, 65536, (12, 10)).astype(np.uint16)
    values[0, :3] = [0, 65535, 32896]
    loaded = load_image(encode(Image.fromarray(values), "PNG"))
    assert loaded.mode.startswith("I;16") and loaded.grey and loaded.bits_per_channel == 16
    expected = np.round(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(loaded.rgb[:, :, 0], expected)
    np.testing.assert_array_equal(loaded.rgb[:, :, 1], expected)
    assert list(loaded.rgb[0, :3, 0]) == [0, 255, 128]
    saved = Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded)))
    assert saved.mode == "L"


def test_sixteen_bit_rgb_png() -> None:
    values = RNG.integers(0, 65536, (4, 5, 3)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in values)
    loaded = load_image(crafted_png(5, 4, 16, 2, raw))
    assert loaded.rgb.shape == (4, 5, 3) and loaded.bits_per_channel == 16 and not loaded.grey
    assert np.abs(loaded.rgb.astype(int) - values.astype(int) / 257).max() <= 1


def test_palette_with_transparency() -> None:
    indices = RNG.integers(0, 4, (10, 12), dtype=np.uint8)
    palette_image = Image.new("P", (12, 10))
    palette_image.putdata(indices.flatten().tolist())
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
    loaded = load_image(encode(palette_image, "PNG", transparency=2))
    assert loaded.mode == "P" and loaded.alpha is not None
    np.testing.assert_array_equal(loaded.alpha, np.where(indices == 2, 0, 255))
    np.testing.assert_array_equal(loaded.rgb[indices == 0], [[255, 0, 0]] * int((indices == 0).sum()))
    saved = load_image(save_bytes(loaded.rgb, loaded))
    np.testing.assert_array_equal(saved.alpha, loaded.alpha)
    np.testing.assert_array_equal(saved.rgb, loaded.rgb)


def test_palette_without_transparency() -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()).convert("P"), "PNG"))
    assert loaded.alpha is None and loaded.rgb.shape == (24, 32, 3)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_rgba_alpha_survives_roundtrip(fmt: str) -> None:
    rgba = np.dstack([noise_rgb(), RNG.integers(0, 256, (24, 32), dtype=np.uint8)])
    params = {"lossless": True} if fmt == "WEBP" else {}
    loaded = load_image(encode(Image.fromarray(rgba), fmt, **params))
    assert loaded.alpha is not None and not loaded.grey
    np.testing.assert_array_equal(loaded.alpha, rgba[:, :, 3])
    perturbed = loaded.rgb ^ 1
    saved = load_image(save_bytes(perturbed, loaded))
    assert saved.format == fmt
    np.testing.assert_array_equal(saved.alpha, rgba[:, :, 3])
    np.testing.assert_array_equal(saved.rgb, perturbed)


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grey_modes_saved_back_as_grey(mode: str) -> None:
    source = Image.fromarray(noise_rgb()).convert("RGBA").convert(mode)
    loaded = load_image(encode(source, "PNG"))
    assert loaded.grey and loaded.mode == mode
    assert (loaded.alpha is not None) == (mode == "LA")
    assert np.array_equal(loaded.rgb[:, :, 0], loaded.rgb[:, :, 2])
    saved = Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded)))
    assert saved.mode == ("LA" if mode == "LA" else "L")
    np.testing.assert_array_equal(np.asarray(saved.convert("L")), loaded.rgb[:, :, 0])


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PNG"])
def test_lossless_formats_roundtrip_exactly(fmt: str) -> None:
    rgb = noise_rgb()
    loaded = load_image(encode(Image.fromarray(rgb), fmt))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    saved = load_image(save_bytes(rgb, loaded))
    assert saved.format == fmt
    np.testing.assert_array_equal(saved.rgb, rgb)


def test_webp_lossy_and_lossless_kept() -> None:
    rgb = noise_rgb()
    lossless = load_image(encode(Image.fromarray(rgb), "WEBP", lossless=True))
    assert lossless.webp_lossless
    np.testing.assert_array_equal(load_image(save_bytes(rgb, lossless)).rgb, rgb)
    lossy = load_image(encode(Image.fromarray(rgb), "WEBP", quality=70))
    assert lossy.webp_lossless is False
    assert load_image(save_bytes(lossy.rgb, lossy)).webp_lossless is False


def test_gif_loads_but_is_saved_only_when_asked_as_png() -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()).convert("P"), "GIF"))
    assert loaded.format == "GIF"
    with pytest.raises(errors.UnsupportedFormatError):
        save_bytes(loaded.rgb, loaded)
    assert Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded, format="PNG"))).format == "PNG"


def test_multi_picture_jpeg_is_a_still_photo() -> None:
    first, preview = Image.fromarray(noise_rgb()), Image.fromarray(noise_rgb())
    loaded = load_image(encode(first, "MPO", save_all=True, append_images=[preview]))
    assert loaded.format == "JPEG" and loaded.rgb.shape == (24, 32, 3)


def test_icc_profile_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("JPEG", "PNG", "WEBP"):
        loaded = load_image(encode(Image.fromarray(noise_rgb()), fmt, icc_profile=icc))
        assert loaded.icc_profile == icc
        assert Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded))).info.get("icc_profile") == icc


def test_icc_profile_of_another_colour_space_not_written() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image(encode(Image.fromarray(noise_rgb()).convert("L"), "PNG", icc_profile=icc))
    assert loaded.grey and loaded.icc_profile == icc
    assert "icc_profile" not in Image.open(io.BytesIO(save_bytes(loaded.rgb, loaded))).info


# -- EXIF orientation + GPS ----------------------------------------------------------------


def _exif_with_gps_and_orientation() -> Image.Exif:
    exif = Image.Exif()
    exif[274] = 6  # stored pixels must be turned 90 deg clockwise for display
    exif[0x010F] = "ACME"  # Make
    exif[0x0110] = "Spy Camera 3000"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_orientation_applied_and_metadata_dropped(fmt: str, tmp_path: Path) -> None:
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:8, :8] = [255, 0, 0]  # red block top-left when displayed
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    params: dict[str, object] = {"exif": _exif_with_gps_and_orientation()}
    if fmt != "PNG":
        params["quality"] = 100
    source = tmp_path / f"photo.{fmt.lower()}"
    source.write_bytes(encode(stored, fmt, **params))
    original_bytes = source.read_bytes()
    before = metadata_report(source)
    assert before["gps"] and before["exif"]["Orientation"] == 6

    loaded = load_image(source)
    assert loaded.orientation == 6 and loaded.size == (20, 40) and loaded.rgb.shape == (20, 40, 3)
    assert np.abs(loaded.rgb.astype(int) - upright).mean() < 4  # upright, up to lossy coding
    assert loaded.rgb[2, 2, 0] > 200 and loaded.rgb[17, 37, 0] < 60
    out = tmp_path / f"protected.{fmt.lower()}"
    save_image(loaded.rgb, loaded, out)

    after = metadata_report(out)
    assert after["identifying"] == [], after
    assert after["exif"] == {} and after["gps"] == {}
    reloaded = load_image(out)
    assert reloaded.orientation == 1 and reloaded.rgb.shape == (20, 40, 3)
    assert reloaded.rgb[2, 2, 0] > 200 and reloaded.rgb[2, 37, 0] < 60  # still upright
    assert source.read_bytes() == original_bytes


# -- saving ----------------------------------------------------------------------------------


def test_save_never_overwrites_source(tmp_path: Path) -> None:
    path = tmp_path / "me.png"
    path.write_bytes(encode(Image.fromarray(noise_rgb()), "PNG"))
    original = path.read_bytes()
    loaded = load_image(path)
    with pytest.raises(errors.WouldOverwriteSourceError) as info:
        save_image(loaded.rgb ^ 1, loaded, path)
    assert info.value.code == "would_overwrite_source"
    with pytest.raises(errors.WouldOverwriteSourceError):
        save_image(loaded.rgb ^ 1, loaded, tmp_path / "." / "me.png")
    assert path.read_bytes() == original
    save_image(loaded.rgb ^ 1, loaded, path, overwrite_source=True)
    np.testing.assert_array_equal(load_image(path).rgb, loaded.rgb ^ 1)
    assert [p.name for p in tmp_path.iterdir()] == ["me.png"]  # no temp files left


def test_failed_write_keeps_existing_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()), "PNG"))
    out = tmp_path / "out.png"
    out.write_bytes(b"previous version")

    def broken_save(self: Image.Image, fp: io.BufferedWriter, *args: object, **kwargs: object) -> None:
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(errors.ImageWriteError) as info:
        save_image(loaded.rgb, loaded, out)
    assert info.value.code == "write_failed"
    assert out.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_unwritable_directory(tmp_path: Path) -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()), "PNG"))
    with pytest.raises(errors.ImageWriteError):
        save_image(loaded.rgb, loaded, tmp_path / "missing-dir" / "out.png")


def test_saved_file_permissions_follow_umask(tmp_path: Path) -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()), "PNG"))
    out = tmp_path / "out.png"
    save_image(loaded.rgb, loaded, out)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_save_validates_pixels() -> None:
    loaded = load_image(encode(Image.fromarray(noise_rgb()), "PNG"))
    with pytest.raises(ValueError):
        save_bytes(np.zeros((10, 10, 3), np.uint8), loaded)
    with pytest.raises(ValueError):
        save_bytes(loaded.rgb.astype(np.float32), loaded)
