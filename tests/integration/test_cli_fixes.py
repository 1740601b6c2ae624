"""What a new user tripped over in the CLI (issue 10), one test each: real detector, real files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.cli import build_parser, main
from ally.imaging.io import load_image
from ally.imaging.metadata import metadata_report

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_model: Callable[[str], dict]) -> dict:
    real_model("mtcnn")
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path / "config"))
    return real_model("faceapi-samples")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    return exif


@pytest.mark.real_models
def test_level_off_on_a_photo_with_faces_only_scrubs(isolated: dict, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Was: ValueError: max() arg is an empty sequence (commands/protect.py)."""
    src = tmp_path / "group.jpg"
    src.write_bytes(isolated["sample1.jpg"].read_bytes())
    assert main(["protect", str(src), "--level", "off"]) == 0
    out = capsys.readouterr().out
    assert "3 face(s) found, not cloaked (level off); pixels unchanged, metadata removed" in out, out
    dst = tmp_path / "group.ally.jpg"
    assert np.array_equal(_pixels(dst), _pixels(src))


@pytest.mark.real_models
@pytest.mark.parametrize("subsampling,quality", [("4:2:0", 80), ("4:4:4", 90)])
def test_a_photo_without_a_face_is_not_re_encoded(isolated: dict, tmp_path: Path, subsampling: str,
                                                  quality: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: re-encoded at quality 95, 4:4:4 (pixels changed; the demo photo grew 2.9x)."""
    rng = np.random.default_rng(1)
    landscape = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).resize((640, 480))
    src = tmp_path / "view.jpg"
    landscape.save(src, "JPEG", quality=quality, subsampling=subsampling, exif=_gps_exif())
    assert main(["protect", str(src), "--level", "medium"]) == 0
    assert "no face found; pixels unchanged, metadata removed" in capsys.readouterr().out
    dst = tmp_path / "view.ally.jpg"
    assert np.array_equal(_pixels(dst), _pixels(src))  # bit-exact: the same coefficients
    assert dst.stat().st_size < src.stat().st_size  # only metadata went
    again = load_image(dst)
    assert (again.jpeg_quality, again.jpeg_subsampling) == (quality, subsampling)
    assert metadata_report(dst)["identifying"] == []


def test_readme_says_what_the_code_does_with_unusual_pixel_formats() -> None:
    """CMYK / 16-bit / palette / alpha are converted and protected (tests/integration/test_cli_protect.py),
    not refused as the README said."""
    assert "CMYK / 16-bit / palette / alpha images (with the reason" not in README
    assert "CMYK, 16-bit, palette and transparent images are converted" in README


@pytest.mark.parametrize("name", ["ALLY_HOME", "ALLY_BIN", "ALLY_CONFIG_DIR", "ALLY_CACHE_DIR"])
def test_environment_variables_are_documented(name: str) -> None:
    assert f"`{name}`" in README


def test_the_demo_folder_is_ignored_by_git() -> None:
    result = subprocess.run(["git", "check-ignore", "-q", "ally-demo/sample1.ally.jpg"], cwd=REPO)
    assert result.returncode == 0


def _help(*command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command[0]].format_help().split())


def test_level_help_lists_off_and_protect_help_mentions_gif() -> None:
    for command in ("protect", "protect-text", "demo"):
        assert "off | low | medium | high" in _help(command), command
    assert "off: only scrub metadata" in _help("protect")
    assert "GIF" in _help("protect")


@pytest.mark.real_models
def test_a_still_gif_is_protected_as_png(isolated: dict, tmp_path: Path) -> None:
    src = tmp_path / "meme.gif"
    Image.new("P", (64, 48), 3).save(src)
    assert main(["protect", str(src), "--level", "low"]) == 0
    with Image.open(tmp_path / "meme.ally.png") as out:
        assert out.format == "PNG" and out.size == (64, 48)


def test_progress_in_a_log_is_a_few_short_lines(tmp_path: Path) -> None:
    """Was: one ~90 KB line of carriage-return redraws when stderr is a file (systemd journal, CI)."""
    code = ("from ally.commands.progress import Progress\n"
            "with Progress('photo.jpg') as bar:\n"
            "    for i in range(1001):\n"
            "        bar.update(i / 10, 'face 1/1' if i < 500 else 'face 2/2')\n")
    log = tmp_path / "log"
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-c", code], stderr=f, check=True, timeout=60)
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert 2 <= len(lines) <= 10 and max(map(len, lines)) < 100, lines
    assert lines[0].startswith("photo.jpg: face 1/1") and lines[-1].endswith("100%")


@pytest.mark.real_models
def test_the_training_message_only_when_it_trains(real_model: Callable[[str], dict], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: "the first run trains the classifiers: about a minute" on every run."""
    for mid in ("blog-authorship", "minilm-l6-v2"):
        real_model(mid)
    env = {**os.environ, "ALLY_CONFIG_DIR": str(tmp_path / "config")}
    runs = [subprocess.run([sys.executable, "-m", "ally.cli", "protect-text", "--level", "low"], input="hi there lol",
                           env=env, capture_output=True, text=True, timeout=600) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs
    assert "training the text classifiers" not in runs[1].stderr  # trained by now (by the first run, or earlier)
    assert "first run trains" not in runs[0].stderr + runs[1].stderr


@pytest.mark.slow
@pytest.mark.real_models
def test_demo_cloaks_the_sample_and_names_it_like_protect(real_model: Callable[[str], dict], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`ally demo` as the README runs it (medium, three faces: a few minutes on 2 cores, hence opt-in): the output
    is NAME.ally.EXT like `ally protect`'s (was NAME.protected.jpg), keeps about the source's JPEG quality and
    chroma subsampling, and stays about the source's size (was 2.9x)."""
    for mid in ("mtcnn", "faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet"):
        real_model(mid)
    sample = real_model("faceapi-samples")["sample1.jpg"]
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path / "config"))
    assert main(["demo", "-o", str(tmp_path / "ally-demo")]) == 0
    assert "3 face(s) cloaked at medium" in capsys.readouterr().out
    dst = tmp_path / "ally-demo" / "sample1.ally.jpg"
    source, out = load_image(sample), load_image(dst)
    assert out.jpeg_subsampling == source.jpeg_subsampling
    assert abs(out.jpeg_quality - max(source.jpeg_quality, 75)) <= 1
    assert dst.stat().st_size < 1.5 * sample.stat().st_size
    assert not np.array_equal(out.rgb, source.rgb)


@pytest.mark.real_models
def test_demo_output_is_named_like_protect_output(isolated: dict, tmp_path: Path, real_model: Callable[[str], dict],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for mid in ("faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet"):
        real_model(mid)
    assert main(["demo", "--level", "off", "-o", str(tmp_path / "ally-demo")]) == 0
    assert (tmp_path / "ally-demo" / "sample1.ally.jpg").is_file()
    assert not (tmp_path / "ally-demo" / "sample1.protected.jpg").exists()
