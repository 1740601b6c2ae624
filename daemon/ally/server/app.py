"""The aiohttp application: the app factory, the websocket and health endpoints, start-up and shutdown.

Bound to 127.0.0.1 only. Start-up loads the models once (in a thread; jobs wait for them) and starts the
worker lanes (jobs.py); shutdown tells the clients, lets running jobs finish for a grace period, cancels
the rest and closes every connection. Every TCP connection counts toward the connection limit from the moment
it is accepted and must complete its request header within ``limits.HEADER_TIMEOUT_S`` (:class:`Connections`);
plain HTTP answers close their connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import ERROR, RequestHandler

from .. import __version__
from ..config import DEFAULT_PORT
from ..me import MeStore
from .auth import LOOPBACK, authenticate, host_allowed, rejection
from . import logs
from .engines import Engines, device_name
from .errors import ErrorCode, ProtocolError
from .handlers import DISPATCH
from .imagecheck import HeaderChecks
from .jobs import JobManager
from .keys import BROKER, CHECKS, ENGINES, JOBS, LIMITS, LOCAL_TOKEN, ME, PAIRINGS, SETTINGS, \
    DaemonSettings
from .limits import Limits
from .pairing import PairingBroker, PairingRegistry
from .protocol import PAIRING, PROTOCOL_VERSION
from .session import SESSIONS, AllySocket, Session, SessionRegistry
from .store import SecretStore

logger = logging.getLogger(__name__)

WS_PATH = "/ws"
HEALTH_PATH = "/health"
# Pings detect a vanished peer (a closed laptop lid, a killed browser) so its jobs are cancelled.
HEARTBEAT_S = 30.0
# HTTP request bodies: the daemon takes none (everything arrives over the websocket).
MAX_HTTP_BODY = 1024


class UnparsedRequest(web.Request):
    """A request that aiohttp's HTTP parser refused (a malformed request line or header, a header line over
    8 190 bytes, a bad chunked body). aiohttp answers it itself, before any handler or middleware, with HTTP 400
    and a plain-text body, then closes the connection; this adds the numbered error, ``X-Ally-Error: 101``
    (``invalid_message``), as on every other refusal. The body stays aiohttp's: its length is already set when
    the headers are prepared (``_prepare_hook``, which runs just before they are written)."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        if response.status == 400:
            response.headers["X-Ally-Error"] = str(int(ErrorCode.INVALID_MESSAGE))
        await super()._prepare_hook(response)


class Connections:
    """Every TCP connection from the moment it is accepted: counted toward the connection limit, closed if its
    request header is not complete within ``header_timeout_s`` (half-open and trickling connections), and
    closed at once past the limit plus ``max_extra_connections`` (those in between get an HTTP answer, 206).

    aiohttp has no header timeout (its keep-alive timeout starts after a request), so this hooks the
    connection callbacks of its ``web.Server`` (``connection_made``, ``connection_lost``, ``request_factory``).
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self.open: dict[RequestHandler, asyncio.TimerHandle | None] = {}  # handler -> header timer
        self.refused = 0  # closed at accept, over the limit
        self.timed_out = 0  # closed for an incomplete header

    def count(self) -> int:
        return len(self.open)

    def attach(self, server: web.Server) -> None:
        made, lost, make_request = server.connection_made, server.connection_lost, server.request_factory

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            if len(self.open) >= self.limits.max_connections + self.limits.max_extra_connections:
                self.refused += 1
                if self.refused == 1 or self.refused % 100 == 0:
                    logger.info("closed %d connection(s) at accept: %d open", self.refused, len(self.open))
                transport.abort()
                return
            timer = asyncio.get_running_loop().call_later(self.limits.header_timeout_s, self._header_timeout,
                                                          handler, transport)
            self.open[handler] = timer

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            timer = self.open.pop(handler, None)
            if timer is not None:
                timer.cancel()

        def request_factory(message: Any, payload: Any, protocol: RequestHandler, writer: Any,
                            task: Any) -> web.BaseRequest:
            timer = self.open.get(protocol)
            if timer is not None:
                timer.cancel()
                self.open[protocol] = None
            if message is ERROR:  # aiohttp's parser refused the request: aiohttp itself answers it
                return UnparsedRequest(message, payload, protocol, writer, task, asyncio.get_running_loop(),
                                       client_max_size=MAX_HTTP_BODY)
            return make_request(message, payload, protocol, writer, task)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory

    def _header_timeout(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        if handler in self.open and self.open[handler] is not None:
            self.timed_out += 1
            logger.info("closed a connection with no complete request header after %g s",
                        self.limits.header_timeout_s)
            self.open[handler] = None
            transport.abort()


CONNECTIONS = web.AppKey("ally.connections", Connections)


def create_app(engines: Engines, store: SecretStore, *, settings: DaemonSettings | None = None,
               limits: Limits | None = None, lane_workers: int = 1, me: MeStore | None = None) -> web.Application:
    """The daemon as an aiohttp application; ``engines`` and ``store`` are injected (tests pass fakes), and so
    is ``me``, the user's reference embeddings (default: the one in the user config dir)."""
    logs.install()
    app = web.Application(client_max_size=MAX_HTTP_BODY)
    limits = limits or Limits()
    registry = PairingRegistry(store)
    app[LIMITS] = limits
    app[SETTINGS] = settings or DaemonSettings()
    app[ENGINES] = engines
    image_device = device_name(engines.image) if engines.image is not None else "cpu"
    text_devices = (device_name(engines.text),) if engines.text is not None else ()
    app[JOBS] = JobManager(limits, (image_device,), ready=engines.ready, workers=lane_workers,
                           text_devices=text_devices)
    app[CHECKS] = HeaderChecks()
    app[ME] = me or MeStore()
    app[CONNECTIONS] = Connections(limits)
    app[PAIRINGS] = registry
    app[BROKER] = PairingBroker(registry, limits.pairing_code_ttl_s)
    app[SESSIONS] = SessionRegistry()
    app[LOCAL_TOKEN] = registry.local_token(create=True) or ""
    app.router.add_get(WS_PATH, websocket_handler)
    app.router.add_get(HEALTH_PATH, health_handler)
    app.cleanup_ctx.append(_engines_and_jobs)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _engines_and_jobs(app: web.Application) -> AsyncIterator[None]:
    """Start-up: warm the models up in the background and start the lanes. Clean-up: stop the lanes."""
    jobs, engines = app[JOBS], app[ENGINES]
    jobs.start()
    warm_up = asyncio.create_task(engines.start(), name="ally-warm-up")
    yield
    if not warm_up.done():
        warm_up.cancel()  # the loading thread itself runs to its end; nothing waits for it
    await asyncio.gather(warm_up, return_exceptions=True)
    await jobs.stop()
    app[CHECKS].shutdown()


async def _on_shutdown(app: web.Application) -> None:
    await app[SESSIONS].shutdown(app[JOBS], app[LIMITS].shutdown_grace_s)


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else -1


async def health_handler(request: web.Request) -> web.Response:
    """Is the daemon up? Answers only to the loopback Host; says nothing about pairings or work."""
    port = _local_port(request)
    if not host_allowed(request.headers.get("Host"), port):
        return _closing(rejection(ProtocolError(ErrorCode.HOST_FORBIDDEN)))
    state = "shutting_down" if request.app[SESSIONS].closing else request.app[ENGINES].state
    return _closing(web.json_response({"ok": state != "shutting_down", "service": "ally", "version": __version__,
                                       "protocol": PROTOCOL_VERSION, "state": state}))


def _closing(response: web.Response) -> web.Response:
    """Plain HTTP answers close their connection: every connection then carries one request, which its
    header timeout covers (no idle keep-alive connections held toward the limit)."""
    response.force_close()
    return response


def _valid_websocket_key(request: web.Request) -> bool:
    """RFC 6455: base64 of 16 bytes. aiohttp's check raises ValueError (an HTTP 500) on a non-ASCII key."""
    key = request.headers.get("Sec-WebSocket-Key", "")
    try:
        return key.isascii() and len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    started: list[web.WebSocketResponse] = []
    try:
        return await _websocket(request, started)
    except ProtocolError as e:
        return _closing(rejection(e))
    except Exception as e:  # a bug: answered with a numbered error, logged by type only
        if request.app[SESSIONS].closing and isinstance(e, ConnectionError):
            raise
        logger.error("the handshake failed: %s", type(e).__name__)
        if started and started[0].prepared:  # the session had started: nothing more can be answered
            raise
        return _closing(rejection(ProtocolError(ErrorCode.INTERNAL, f"internal error ({type(e).__name__})")))


async def _websocket(request: web.Request, started: list[web.WebSocketResponse]) -> web.StreamResponse:
    app = request.app
    sessions, limits = app[SESSIONS], app[LIMITS]
    port = _local_port(request)
    try:
        if sessions.closing:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN)
        peer = authenticate(request, app[PAIRINGS], port, app[SETTINGS].extension_ids, app[LOCAL_TOKEN] or None)
        # Every TCP connection counts (this one too), handshakes in progress and half-open ones included.
        if max(app[CONNECTIONS].count(), sessions.count() + 1) > limits.max_connections:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"at most {limits.max_connections} connections")
        if peer.kind == PAIRING and sessions.count(PAIRING) >= limits.max_pairing_connections:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, "another pairing is in progress")
        if not _valid_websocket_key(request):
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "Sec-WebSocket-Key must be the base64 of 16 bytes")
    except ProtocolError as e:
        logger.info("refused a connection: %s", e.code.wire_name)
        return _closing(rejection(e))
    # Pairing sessions exchange small JSON messages only: no image frames, so no 32 MiB frame buffer.
    max_frame = limits.max_json_bytes if peer.kind == PAIRING else limits.max_frame_bytes
    ws = AllySocket(protocols=(peer.subprotocol,), max_msg_size=max_frame, compress=False,
                    heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        return _closing(rejection(ProtocolError(ErrorCode.INVALID_MESSAGE, "not a websocket upgrade request")))
    session = Session(app, ws, peer, port, DISPATCH, request.transport)
    sessions.sessions.add(session)  # counted from here on, before the first await
    started.append(ws)
    try:
        await ws.prepare(request)
        logger.info("session %d opened (%s %s)", session.id, peer.kind, peer.origin or "local")
        await session.run()
    finally:
        sessions.sessions.discard(session)
        logger.info("session %d closed", session.id)
    return ws


@dataclass
class RunningServer:
    runner: web.AppRunner
    port: int

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}{WS_PATH}"

    async def stop(self) -> None:
        """Graceful: on_shutdown (tell clients, drain jobs, close), then clean-up."""
        await self.runner.cleanup()


async def start_server(app: web.Application, port: int = DEFAULT_PORT, *,
                       shutdown_timeout: float = 15.0) -> RunningServer:
    """Serve ``app`` on 127.0.0.1:``port`` (0: any free port) until ``stop()``."""
    limits = app[LIMITS]
    # keepalive_timeout: an idle connection between requests is closed as a half-open one would be.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, access_log=None,
                           keepalive_timeout=limits.header_timeout_s)
    await runner.setup()
    assert runner.server is not None
    app[CONNECTIONS].attach(runner.server)
    site = web.TCPSite(runner, LOOPBACK, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]  # the port actually bound (when 0 asked for any)
    return RunningServer(runner, int(bound))
