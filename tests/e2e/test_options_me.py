"""The options page's "Protect me" section and the per-site "keep full size" switch, in Chromium with the
extension, against the daemon's app with tiny fake engines (plumbing: the real enrolment is tested in
tests/integration/test_cli_sites_me.py). Leaves a screenshot in artifacts/e2e/options-protect-me.png."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness import Loop
from layout import clipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from daemon_fakes import Daemon, start_daemon  # noqa: E402


@pytest.fixture(scope="module")
def daemon(loop: Loop, ext_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The daemon's app with fake engines (``me.add`` embeds a photo's mean colour), paired with the extension."""
    fake: Daemon = loop.run(start_daemon(tmp_path_factory.mktemp("ally-fake")))
    fake.token = fake.registry.add(f"chrome-extension://{ext_id}", "Ally e2e")
    yield fake
    loop.run(fake.server.stop())


def _png(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(30, 220, (48, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _wait(predicate: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_protect_me_and_keep_full_size_on_the_options_page(browser: Any, paired: Any, ext_id: str,
                                                           artifacts: Path) -> None:
    daemon = paired
    page = browser.new_page()
    page.goto(f"chrome-extension://{ext_id}/pages/options.html")
    page.wait_for_selector("body[data-ready]")
    _wait(lambda: "No photos" in page.inner_text("#me-msg"), 10, "the empty list")

    # add two photos of "me": the daemon keeps their embeddings, the page lists them
    page.set_input_files("#me-file", files=[{"name": f"me{i}.png", "mimeType": "image/png", "buffer": _png(i)}
                                            for i in (1, 2)])
    _wait(lambda: page.locator("#me-list tr").count() == 2, 10, "two references listed")
    assert "Added 2 photos" in page.inner_text("#me-msg")
    assert len(daemon.me.list()) == 2
    assert "2 faces; the largest was used" in page.inner_text("#me-list")

    # only me: saved in the daemon's settings
    page.check("#me-only")
    _wait(lambda: daemon.app[_settings_key()].only_me, 5, "only_me in the daemon")

    # keep full size for one site: saved in the extension's settings
    page.check("tr[data-site='instagram'] [data-field=fullSize]")
    page.wait_for_timeout(300)
    assert clipped(page) == [], "text cut off on the options page"
    page.screenshot(path=str(artifacts / "options-protect-me.png"), full_page=True)

    # forget one, then all
    first = daemon.me.list()[0].id
    page.click(f"#me-list tr[data-ref='{first}'] button")
    _wait(lambda: page.locator("#me-list tr").count() == 1, 10, "one reference left")
    assert [r.id for r in daemon.me.list()] != [first] and len(daemon.me.list()) == 1
    page.click("#me-forget-all")
    _wait(lambda: page.locator("#me-list tr").count() == 0, 10, "no reference left")
    assert daemon.me.list() == []
    page.close()


def _settings_key() -> Any:
    from ally.server.keys import SETTINGS

    return SETTINGS
