"""Issue 17 from the command line: ``ally protect --site`` writes the served size as a JPEG at or above the
site's quality (real MTCNN; a photo without a face, so no recognizer is loaded); ``ally me`` add / list / forget
round trip with the real detector and surrogates on a real photo (only embeddings are stored)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.cli import main
from ally.imaging.io import load_image
from ally.me import MeStore
from ally.sites import profile

pytestmark = pytest.mark.real_models


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_model: Callable[[str], dict]) -> None:
    real_model("mtcnn")
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path / "config"))


def _landscape(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    rgb = np.concatenate([x * np.ones_like(y), y * np.ones_like(x), 0.5 * np.ones((height, width, 1))], axis=2)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def test_protect_for_a_site_writes_the_served_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "view.png"
    _landscape(2000, 1500).save(src)
    assert main(["protect", str(src), "--site", "instagram", "--level", "low"]) == 0
    out = tmp_path / "view.ally.jpg"  # the format written is the site's: the suffix follows
    assert out.exists() and not (tmp_path / "view.ally.png").exists()
    written = load_image(out)
    assert (written.width, written.height) == (1080, 810) and written.format == "JPEG"
    assert written.jpeg_quality is not None and written.jpeg_quality >= profile("instagram").jpeg_quality
    assert "written for Instagram at 1080x810 (from 2000x1500), JPEG quality" in capsys.readouterr().out
    assert Image.open(src).size == (2000, 1500)  # the original is untouched


def test_max_edge_and_full_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "view.jpg"
    _landscape(1200, 900).save(src, quality=90)
    assert main(["protect", str(src), "--max-edge", "600", "-o", str(tmp_path / "small")]) == 0
    assert Image.open(tmp_path / "small" / "view.jpg").size == (600, 450)
    assert main(["protect", str(src), "--site", "instagram", "--full-size", "-o", str(tmp_path / "full")]) == 0
    assert Image.open(tmp_path / "full" / "view.jpg").size == (1200, 900)
    with pytest.raises(SystemExit) as info:
        main(["protect", str(src), "--full-size"])
    assert info.value.code == 2 and "--full-size goes with --site" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["protect", str(src), "--site", "myspace"])
    assert "invalid choice: 'myspace'" in capsys.readouterr().err


def test_me_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       real_model: Callable[[str], dict[str, Path]]) -> None:
    from ally.config import DEFAULT_SURROGATES

    for model in DEFAULT_SURROGATES:
        real_model(model)
    photo = real_model("faceapi-samples")["sample2.jpg"]
    empty = tmp_path / "empty.png"
    _landscape(200, 150).save(empty)
    assert main(["me", "list"]) == 0
    assert "no references" in capsys.readouterr().out
    assert main(["me", "add", str(photo), str(empty)]) == 1  # one added, the faceless one refused
    out = capsys.readouterr()
    assert "the photo itself is not kept" in out.out and "1 reference(s) stored" in out.out
    assert f"{empty}: error: no face found" in out.err and "1 of 2 photo(s) not added" in out.err
    store = MeStore(tmp_path / "config" / "me.npz")
    (ref,) = store.list()
    refs = store.references(DEFAULT_SURROGATES)
    assert set(refs) == set(DEFAULT_SURROGATES)
    assert all(v.shape[0] == 1 and abs(float(np.linalg.norm(v[0])) - 1) < 1e-4 for v in refs.values())
    assert main(["me", "list"]) == 0
    assert ref.id in capsys.readouterr().out
    assert main(["me", "forget", "0badc0de"]) == 1
    assert "no reference '0badc0de'" in capsys.readouterr().err
    assert main(["me", "forget", ref.id]) == 0
    assert store.list() == []
    assert main(["me", "only-me", "on"]) == 0 and "only-me is on" in capsys.readouterr().out
    from ally.config import load_config

    assert load_config().only_me is True
    assert main(["me", "forget", "--all"]) == 0
