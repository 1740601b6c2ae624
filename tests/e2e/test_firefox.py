"""The Firefox build in a real Firefox (Debian's ESR, over WebDriver BiDi): installed as the user's temporary
add-on, it opens its options page, pairs with the real daemon through the user-confirmed code, and protects a
photo dropped on the fake social site, and one chosen in a file input, before the site gets them. The same
source as the Chromium build; the Chromium suite (test_extension.py) covers the rest of the behaviour.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bidi import Firefox
from harness import SITE_HOST, FakeSite, RealDaemon, build_extension
from layout import CLIPPED_BODY
from test_extension import FACE_TIMEOUT_S, assert_protected, b64, face_jpeg, plain_jpeg, wait_upload  # noqa: F401

FIREFOX = os.environ.get("ALLY_FIREFOX", "/usr/bin/firefox-esr")
GECKO_ID = "ally-extension@ally.privacy"
# Firefox gives each install a random origin UUID; the profile pins it so that the daemon can allow only it.
ADDON_UUID = "5b0d2f3e-8c41-4e7a-9a2b-6d1c0e9f7a11"
ORIGIN = f"moz-extension://{ADDON_UUID}"
# what the options page shows, its port, whether /health answers there, and the worker's own connection state
CONN = ("let health; try { health = (await fetch(`http://127.0.0.1:${document.querySelector('#port').value}/health`)).status }"
        " catch (e) { health = String(e) }"
        "const bg = await (globalThis.browser ?? chrome).runtime.sendMessage({ type: 'connection.state', connect: true });"
        "return [document.querySelector('#conn').textContent, document.querySelector('#port').value, health, bg.status,"
        " bg.reason]")


@pytest.fixture(scope="module")
def ff_daemon(loop: Any, real_engines: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealDaemon]:
    d = RealDaemon(loop, real_engines, tmp_path_factory.mktemp("ally-secrets-ff") / "secrets.json", (ADDON_UUID,))
    with d.serving():  # no pairing yet: the test pairs through the options page
        yield d


@pytest.fixture(scope="module")
def firefox(loop: Any, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Firefox]:
    if not Path(FIREFOX).exists():
        pytest.fail(f"Firefox not found at {FIREFOX}: install it (apt-get install -y firefox-esr; tests/run.sh does)")
    ff = Firefox(loop, FIREFOX, tmp_path_factory.mktemp("firefox-profile"), {
        "extensions.webextensions.uuids": f'{{"{GECKO_ID}": "{ADDON_UUID}"}}',
        "network.dns.localDomains": SITE_HOST,  # the fake site's name resolves to this machine
        "browser.shell.checkDefaultBrowser": False,
    }, artifacts / "firefox.log")
    ff.start()
    yield ff
    ff.close()


def test_firefox_build_pairs_and_protects_uploads(firefox: Firefox, ff_daemon: RealDaemon, site: FakeSite, loop: Any,
                                                  face_jpeg: bytes, artifacts: Path, tmp_path: Path) -> None:
    from ally.server.client import DaemonClient

    assert firefox.install_addon(build_extension("firefox")) == GECKO_ID
    # a first install opens the options page, where the user pairs
    options = next((ctx for _ in range(100) for ctx, url in firefox.tabs()
                    if url == f"{ORIGIN}/pages/options.html"), None)
    assert options, f"the options page opened on install; tabs: {firefox.tabs()}"
    firefox.wait(options, "return document.body.dataset.ready !== undefined", what="the options page")
    firefox.evaluate(options, """const el = document.querySelector('#port'); el.value = String(args[0]);
        el.dispatchEvent(new Event('change', { bubbles: true })); return true;""", ff_daemon.port)
    firefox.wait(options, "return document.querySelector('#conn').textContent === 'Not paired'", timeout=20,
                 what="the options page to find the daemon (up, not paired)", show=CONN)

    firefox.evaluate(options, "document.querySelector('#pair-start').click(); return true;")
    code = firefox.wait(options, """const w = document.querySelector('#pair-wait');
        return w && !w.hidden && document.querySelector('#pair-code').textContent.trim();""", what="a pairing code",
        show="return document.querySelector('#pair-result').textContent")
    assert len(code) == 6 and code.isdigit()

    async def confirm() -> dict[str, Any]:
        async with await DaemonClient.connect(ff_daemon.port, token=ff_daemon.local_token) as local:
            return (await local.request("pair.confirm", {"code": code})).result

    assert loop.run(confirm())["origin"] == ORIGIN, "the daemon saw the Firefox add-on's own origin"
    firefox.wait(options, "return document.querySelector('#conn').textContent === 'Connected and paired'",
                 timeout=20, what="the connection to come up", show=CONN)
    assert firefox.evaluate(options, CLIPPED_BODY, "body", False) == [], "text cut off on the options page"
    firefox.screenshot(options, artifacts / "firefox-options.png")

    page = firefox.new_tab(f"https://{SITE_HOST}:{site.port}/upload.html")
    firefox.wait(page, "return !!document.querySelector('#react-file')", what="the fake site")
    firefox.evaluate(page, "window.__drop(args[0], 'ff.jpg', 'image/jpeg'); return true;", b64(face_jpeg))
    box = "const b = [...document.querySelectorAll('ally-overlay')].pop()?.shadowRoot.querySelector('.box');"
    firefox.wait(page, box + "return b && b.dataset.state;", what="the overlay", show="return document.body.innerText")
    state = firefox.wait(page, box + "return b.dataset.state !== 'working' && b.dataset.state;", timeout=FACE_TIMEOUT_S,
                         what="the protection to finish", show=box + "return b.innerText")
    assert firefox.evaluate(page, CLIPPED_BODY, "ally-overlay", True) == [], "text cut off in the overlay"
    firefox.screenshot(page, artifacts / "firefox-overlay.png")
    assert state in ("done", "warn"), firefox.evaluate(page, box + "return b.innerText")
    assert "dlib-resnet" in firefox.evaluate(page, box + "return b.innerText")  # the receipt is shown
    if state == "warn":  # a face still matches: the warning stays until read
        firefox.evaluate(page, box + "b.querySelector('button[data-action=ok]').click(); return true;")
    firefox.wait(page, "return window.__events.includes('drop:1')", what="the page's drop handler to get the file",
                 show="return window.__events")
    received = wait_upload(site, "drop")
    job = assert_protected(ff_daemon, received, face_jpeg, "ff.jpg")
    assert job.result["faces"] >= 1 and job.result["cloaked"] is True

    # the file picker too (a photo without a face: its metadata is removed)
    picked = tmp_path / "picked.jpg"
    picked.write_bytes(plain_jpeg(3))
    firefox.set_files(page, "#plain", [picked])
    assert_protected(ff_daemon, wait_upload(site, "plain"), picked.read_bytes(), "picked.jpg")
    # Paste: Firefox builds a synthetic paste's clipboardData from strings only, so neither a test nor the
    # extension's re-dispatch can hand files to the page that way (a drop can). Ally's main-world.js checks this
    # and, instead of an empty paste, tells the user and offers to save the protected photo. Pinned here: if
    # Firefox changes, this fails and the paste path can deliver as in Chromium.
    carried = firefox.evaluate(page, """const dt = new DataTransfer();
        dt.items.add(new File(['x'], 'a.png', { type: 'image/png' }));
        return [new ClipboardEvent('paste', { clipboardData: dt }).clipboardData?.files.length ?? null,
                new DragEvent('drop', { dataTransfer: dt }).dataTransfer?.files.length ?? null];""")
    assert carried == [0, 1], carried
