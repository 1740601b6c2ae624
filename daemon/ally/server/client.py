"""A small asyncio client of the daemon protocol: used by ``ally status`` / ``ally pair``, the tests and the
load benchmark. (The browser extension implements the same protocol in JavaScript.)"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .auth import LOOPBACK
from .errors import ErrorCode
from .protocol import METHODS, PAIRING_SUBPROTOCOL, PROTOCOL_VERSION, SUBPROTOCOL, TOKEN_PREFIX, pack_binary, \
    unpack_binary



class DaemonError(Exception):
    """An error answer from the daemon."""

    def __init__(self, error: dict[str, Any]):
        self.code = int(error["code"])
        self.name = str(error["name"])
        self.message = str(error["message"])
        self.data: dict[str, Any] = error.get("data") or {}
        super().__init__(f"{self.name} ({self.code}): {self.message}")


class HandshakeRefused(Exception):
    """The daemon refused the websocket handshake (HTTP status and protocol error code)."""

    def __init__(self, status: int, code: int | None, message: str):
        self.status, self.code = status, code
        super().__init__(f"HTTP {status}, error {code}: {message}")


@dataclass
class Reply:
    result: dict[str, Any]
    binary: bytes | None = None


@dataclass
class _Pending:
    method: str
    future: asyncio.Future[Reply]
    result: dict[str, Any] | None = None


def subprotocols(token: str | None, *, pairing: bool = False) -> tuple[str, ...]:
    if pairing:
        return (PAIRING_SUBPROTOCOL,)
    return (SUBPROTOCOL, f"{TOKEN_PREFIX}{token}") if token else (SUBPROTOCOL,)


@dataclass
class DaemonClient:
    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession
    own_http: bool
    on_notification: Callable[[str, dict[str, Any]], None] | None = None
    on_message: Callable[[dict[str, Any]], None] | None = None  # sees every JSON message first (tests validate)
    hello: dict[str, Any] = field(default_factory=dict)
    close_code: int | None = None
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _reader: asyncio.Task[None] | None = None
    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    unmatched: list[Any] = field(default_factory=list)  # answers and frames for no pending request

    @classmethod
    async def connect(cls, port: int, *, token: str | None = None, origin: str | None = None,
                      pairing: bool = False, hello: bool = True, http: aiohttp.ClientSession | None = None,
                      max_msg_size: int = 64 * 1024 * 1024,
                      on_message: Callable[[dict[str, Any]], None] | None = None) -> DaemonClient:
        """Open a session (and say hello, unless ``hello=False``)."""
        own = http is None
        http = http or aiohttp.ClientSession()
        headers = {"Origin": origin} if origin else {}
        try:
            ws = await http.ws_connect(f"http://{LOOPBACK}:{port}/ws", protocols=subprotocols(token, pairing=pairing),
                                       headers=headers, max_msg_size=max_msg_size, autoclose=True)
        except aiohttp.WSServerHandshakeError as e:
            if own:
                await http.close()
            code = e.headers.get("X-Ally-Error") if e.headers else None
            raise HandshakeRefused(e.status, int(code) if code else None, e.message) from None
        except BaseException:
            if own:
                await http.close()
            raise
        client = cls(ws, http, own, on_message=on_message)
        client._reader = asyncio.create_task(client._read_loop())
        if hello:
            client.hello = (await client.request("hello", {"protocol": PROTOCOL_VERSION,
                                                           "client": {"name": "ally-py"}})).result
        return client

    async def request(self, method: str, params: dict[str, Any] | None = None, *, binary: bytes | None = None,
                      rid: str | None = None) -> Reply:
        """Send a request (and its image frame) and wait for the answer; raises :class:`DaemonError`."""
        future = await self.send(method, params, binary=binary, rid=rid)
        return await future

    async def send(self, method: str, params: dict[str, Any] | None = None, *, binary: bytes | None = None,
                   rid: str | None = None) -> asyncio.Future[Reply]:
        """Send a request; returns the future of its answer."""
        rid = rid or f"r{next(self._ids)}"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = _Pending(method, future)
        message: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send_str(json.dumps(message))
        if binary is not None:
            await self.ws.send_bytes(pack_binary(rid, binary))
        return future

    async def _read_loop(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_message(json.loads(msg.data))
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    rid, payload = unpack_binary(msg.data)
                    pending = self._pending.pop(rid, None)
                    if pending is not None and pending.result is not None:
                        pending.future.set_result(Reply(pending.result, bytes(payload)))
                    else:
                        self.unmatched.append(("binary", rid))
        finally:
            self.close_code = self.ws.close_code
            error = ConnectionError(f"the daemon closed the connection ({self.ws.close_code})")
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(error)
            self._pending.clear()

    def _on_message(self, message: dict[str, Any]) -> None:
        if self.on_message is not None:
            self.on_message(message)
        if "method" in message:
            self.notifications.append((message["method"], message["params"]))
            if self.on_notification is not None:
                self.on_notification(message["method"], message["params"])
            return
        raw_id = message.get("id")
        rid = raw_id if isinstance(raw_id, str) else ""
        pending = self._pending.get(rid)
        if "error" in message:
            if pending is None:
                self.unmatched.append(message)
                return
            del self._pending[rid]
            if not pending.future.done():
                pending.future.set_exception(DaemonError(message["error"]))
            return
        if pending is None or pending.result is not None:
            self.unmatched.append(message)
            return
        if METHODS[pending.method].binary_out:
            pending.result = message["result"]  # the binary frame follows
        else:
            del self._pending[rid]
            pending.future.set_result(Reply(message["result"]))

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.own_http:
            await self.http.close()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def daemon_health(port: int, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The health endpoint's answer, or None if nothing answers on the port."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
            async with http.get(f"http://{LOOPBACK}:{port}/health") as r:
                if r.status != 200:
                    return None
                return dict(await r.json())
    except (TimeoutError, aiohttp.ClientError):
        return None


__all__ = ["DaemonClient", "DaemonError", "ErrorCode", "HandshakeRefused", "Reply", "daemon_health"]
