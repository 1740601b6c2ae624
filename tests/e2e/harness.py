"""E2E harness: the real daemon (real models, in-process, on a free port), a fake social site served over HTTPS
as https://mastodon.social (Chromium maps the name to 127.0.0.1), and Chromium with the extension loaded.

Everything asynchronous runs on one event loop in a background thread; the Playwright (sync) tests drive the
browser from the main thread and call into the loop with ``Loop.run``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from ally.levels import Level
from ally.protections import DEFAULT_PROTECTIONS, format_protections
from ally.server import handlers
from ally.server.app import RunningServer, create_app, start_server
from ally.server.engines import Engines
from ally.server.keys import DaemonSettings
from ally.server.pairing import PairingRegistry
from ally.server.store import FileStore

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
EXTENSION_SRC = REPO / "extension"
SITE_DIR = Path(__file__).with_name("site")
SITE_HOST = "mastodon.social"  # a shipped site: the real manifest's content scripts run on it


def extension_id(manifest: dict[str, Any]) -> str:
    """Chromium's id of an extension with a ``key``: sha256 of the DER public key, first 32 hex, 0-f -> a-p."""
    digest = hashlib.sha256(base64.b64decode(manifest["key"])).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Recorded:
    level: str
    payload: bytes
    protect: list[str] = field(default_factory=list)  # the protections the job was given (canonical order)
    output: bytes | None = None
    result: dict[str, Any] | None = None
    site: str | None = None  # the site profile the job was given (serve-size protection)


@dataclass
class RealDaemon:
    """The daemon's app around real engines; restartable on the same port; records what each job returned."""

    loop: Loop
    engines: Engines
    secrets: Path
    extension_ids: tuple[str, ...]
    port: int = 0
    server: RunningServer | None = None
    settings: DaemonSettings | None = None
    jobs: list[Recorded] = field(default_factory=list)
    token: str = ""
    local_token: str = ""

    def pair(self, origin: str) -> str:
        self.token = PairingRegistry(FileStore(self.secrets)).add(origin, "Ally e2e")
        return self.token

    def start(self) -> None:
        async def go() -> None:
            store = FileStore(self.secrets)
            self.settings = self.settings or DaemonSettings(level=Level.LOW, extension_ids=self.extension_ids)
            app = create_app(self.engines, store, settings=self.settings)
            self.server = await start_server(app, self.port, shutdown_timeout=2)
            self.port = self.server.port
            self.local_token = PairingRegistry(store).local_token() or ""
            await asyncio.wait_for(self.engines.ready.wait(), 120)

        self.loop.run(go(), timeout=150)

    def stop(self) -> None:
        if self.server is not None:
            self.loop.run(self.server.stop(), timeout=30)
            self.server = None

    @contextmanager
    def serving(self) -> Iterator[RealDaemon]:
        """Serve with the job recorder installed; on exit stop and take the recorder out."""
        restore = self.install_recorder()
        try:
            self.start()
            yield self
        finally:
            self.stop()
            restore()

    def install_recorder(self) -> Any:
        """Wrap the daemon's image work so that tests see each job's level, input and the bytes it returned."""
        original = handlers.image_work

        def recording(engine: Any, payload: bytes, level: Level, fmt: str,
                      protections: frozenset[str] = DEFAULT_PROTECTIONS, site: Any = None, *rest: Any) -> Any:
            rec = Recorded(level.value, bytes(payload), format_protections(protections).split(","),
                           site=site.name if site is not None else None)
            self.jobs.append(rec)
            work = original(engine, payload, level, fmt, protections, site, *rest)

            def run(progress: Any) -> Any:
                out = work(progress)
                rec.output, rec.result = out.binary, out.result
                return out

            return run

        handlers.image_work = recording
        return lambda: setattr(handlers, "image_work", original)


@dataclass
class FakeSite:
    """The social site behind the test pages: serves site/ and keeps every upload it receives, by case."""

    loop: Loop
    cert_dir: Path
    port: int = 0
    http_port: int = 0  # the same site over plain http on 127.0.0.1 (a "user-added site" in the tests)
    uploads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runner: web.AppRunner | None = None

    async def _upload(self, request: web.Request) -> web.Response:
        body = await request.read()
        case = request.query.get("case", "")
        self.uploads.setdefault(case, []).append(
            {"name": request.headers.get("x-name"), "type": request.headers.get("x-type"), "bytes": body})
        return web.json_response({"ok": True, "bytes": len(body)})

    def start(self) -> None:
        cert, key = self.cert_dir / "site.crt", self.cert_dir / "site.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", f"/CN={SITE_HOST}",
                        "-addext", f"subjectAltName=DNS:{SITE_HOST}"], check=True, capture_output=True)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))

        async def go() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/upload", self._upload)
            app.router.add_static("/", SITE_DIR)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ctx)
            await site.start()
            self.port = self.runner.addresses[0][1]
            plain = web.TCPSite(self.runner, "127.0.0.1", 0)
            await plain.start()
            self.http_port = self.runner.addresses[1][1]

        self.loop.run(go())

    def stop(self) -> None:
        if self.runner is not None:
            self.loop.run(self.runner.cleanup())

    def url(self, page: str) -> str:
        return f"https://{SITE_HOST}/{page}"


def build_extension(target: str = "chromium") -> Path:
    node = shutil.which("node")
    assert node, "node is needed to build the extension"
    subprocess.run([node, str(EXTENSION_SRC / "build.mjs"), "--target", target], check=True, capture_output=True)
    out = EXTENSION_SRC / "dist" / target
    assert (out / "manifest.json").exists()
    return out


def manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text())
