"""Firefox driven over WebDriver BiDi, Firefox's own remote protocol: no driver binary and no patched browser
build (Playwright's Firefox is one), so the tests run the Firefox ESR a user installs from Debian.

Only what the e2e tests need: start with a profile's prefs, install a temporary add-on, list/create tabs,
navigate, evaluate JavaScript (results travel as JSON), take screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness import Loop

START_TIMEOUT_S = 30


class BiDiError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Firefox:
    """One headless Firefox process with a fresh profile, and one BiDi session on it."""

    def __init__(self, loop: Loop, binary: str, profile: Path, prefs: dict[str, Any], log: Path) -> None:
        self.loop, self.binary, self.profile, self.prefs, self.log = loop, binary, profile, prefs, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in self.prefs.items()))
        port = _free_port()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([self.binary, "--headless", "--no-remote", "--profile", str(self.profile),
                                          f"--remote-debugging-port={port}"], stdout=log, stderr=log)
        self.loop.run(self._connect(port), timeout=START_TIMEOUT_S + 5)
        self.command("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})

    async def _connect(self, port: int) -> None:
        self.http = aiohttp.ClientSession()
        end = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.ws = await self.http.ws_connect(f"ws://127.0.0.1:{port}/session", max_msg_size=0)
                break
            except aiohttp.ClientError:
                if time.monotonic() > end or (self.proc and self.proc.poll() is not None):
                    raise BiDiError(f"Firefox did not open its remote port; see {self.log}") from None
                await asyncio.sleep(0.2)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            fut = self._pending.pop(data.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(data)
        for fut in self._pending.values():
            fut.set_exception(BiDiError("Firefox closed the BiDi connection"))

    async def _command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.ws is not None
        mid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        await self.ws.send_json({"id": mid, "method": method, "params": params})
        answer = await fut
        if answer.get("type") == "error":
            raise BiDiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        return answer["result"]

    def command(self, method: str, params: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        return self.loop.run(self._command(method, params), timeout=timeout)

    # -- what the tests use ------------------------------------------------------------------------------

    def install_addon(self, path: Path) -> str:
        return str(self.command("webExtension.install", {"extensionData": {"type": "path", "path": str(path)}})
                   ["extension"])

    def tabs(self) -> list[tuple[str, str]]:
        """(context id, url) of every top-level tab."""
        return [(c["context"], c["url"]) for c in self.command("browsingContext.getTree", {"maxDepth": 0})["contexts"]]

    def new_tab(self, url: str) -> str:
        ctx = self.command("browsingContext.create", {"type": "tab"})["context"]
        self.command("browsingContext.navigate", {"context": ctx, "url": url, "wait": "complete"})
        return str(ctx)

    def evaluate(self, ctx: str, body: str, *args: Any) -> Any:
        """Run ``body`` (the body of an async function of ``args``) in the tab; its JSON-able result comes back."""
        expr = f"(async (...args) => JSON.stringify(await (async (args) => {{ {body} }})(args)))(...{json.dumps(args)})"
        r = self.command("script.evaluate", {"expression": expr, "target": {"context": ctx}, "awaitPromise": True})
        if r["type"] == "exception":
            raise BiDiError(f"script failed: {r['exceptionDetails'].get('text')}")
        value = r["result"].get("value")
        return None if value is None else json.loads(value)

    def wait(self, ctx: str, body: str, *args: Any, timeout: float = 30, what: str = "", show: str = "") -> Any:
        """Poll ``evaluate(ctx, body)`` until it returns something truthy; on time-out, say what ``show`` sees."""
        end = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < end:
            try:
                last = self.evaluate(ctx, body, *args)
            except BiDiError as e:  # the page may be navigating
                last = str(e)
            else:
                if last:
                    return last
            time.sleep(0.2)
        if show:
            try:
                last = self.evaluate(ctx, show, *args)
            except BiDiError as e:
                last = str(e)
        raise AssertionError(f"timed out after {timeout} s waiting for {what or body!r}; saw {last!r}")

    def set_files(self, ctx: str, selector: str, paths: list[Path]) -> None:
        """Choose files in a file input as the user's file picker would (BiDi ``input.setFiles``)."""
        r = self.command("script.evaluate", {"expression": f"document.querySelector({json.dumps(selector)})",
                                             "target": {"context": ctx}, "awaitPromise": False})
        if r["type"] == "exception" or "sharedId" not in r["result"]:
            raise BiDiError(f"no element {selector!r}: {r}")
        self.command("input.setFiles", {"context": ctx, "element": {"sharedId": r["result"]["sharedId"]},
                                        "files": [str(p) for p in paths]})

    def screenshot(self, ctx: str, path: Path) -> None:
        data = self.command("browsingContext.captureScreenshot", {"context": ctx})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        async def down() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)
            if self.http is not None:
                await self.http.close()

        try:
            self.loop.run(down(), timeout=10)
        finally:
            if self.proc is not None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
