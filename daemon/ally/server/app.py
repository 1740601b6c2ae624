"""The aiohttp application: the app factory, the websocket and health endpoints, start-up and shutdown.

Bound to 127.0.0.1 only. Start-up loads the models once (in a thread; jobs wait for them) and starts one
worker lane per device; shutdown tells the clients, lets running jobs finish for a grace period, cancels
the rest and closes every connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from .. import __version__
from ..config import DEFAULT_PORT
from .auth import LOOPBACK, authenticate, host_allowed, rejection
from .engines import Engines
from .errors import ErrorCode, ProtocolError
from .jobs import JobManager
from .keys import BROKER, ENGINES, JOBS, LIMITS, LOCAL_TOKEN, PAIRINGS, SESSIONS, SETTINGS, DaemonSettings
from .limits import Limits
from .pairing import PairingBroker, PairingRegistry
from .protocol import PAIRING, PROTOCOL_VERSION
from .session import AllySocket, Session, SessionRegistry
from .store import SecretStore

logger = logging.getLogger(__name__)

WS_PATH = "/ws"
HEALTH_PATH = "/health"
# Pings detect a vanished peer (a closed laptop lid, a killed browser) so its jobs are cancelled.
HEARTBEAT_S = 30.0
# HTTP request bodies: the daemon takes none (everything arrives over the websocket).
MAX_HTTP_BODY = 1024


def create_app(engines: Engines, store: SecretStore, *, settings: DaemonSettings | None = None,
               limits: Limits | None = None, lane_workers: int = 1) -> web.Application:
    """The daemon as an aiohttp application; ``engines`` and ``store`` are injected (tests pass fakes)."""
    app = web.Application(client_max_size=MAX_HTTP_BODY)
    limits = limits or Limits()
    registry = PairingRegistry(store)
    app[LIMITS] = limits
    app[SETTINGS] = settings or DaemonSettings()
    app[ENGINES] = engines
    app[JOBS] = JobManager(limits, engines.devices, ready=engines.ready, workers=lane_workers)
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


async def _on_shutdown(app: web.Application) -> None:
    await app[SESSIONS].shutdown(app[JOBS], app[LIMITS].shutdown_grace_s)


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else -1


async def health_handler(request: web.Request) -> web.Response:
    """Is the daemon up? Answers only to the loopback Host; says nothing about pairings or work."""
    port = _local_port(request)
    if not host_allowed(request.headers.get("Host"), port):
        return rejection(ProtocolError(ErrorCode.HOST_FORBIDDEN))
    state = "shutting_down" if request.app[SESSIONS].closing else request.app[ENGINES].state
    return web.json_response({"ok": state != "shutting_down", "service": "ally", "version": __version__,
                              "protocol": PROTOCOL_VERSION, "state": state})


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    sessions, limits = app[SESSIONS], app[LIMITS]
    port = _local_port(request)
    try:
        if sessions.closing:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN)
        peer = authenticate(request, app[PAIRINGS], port, app[SETTINGS].extension_ids, app[LOCAL_TOKEN] or None)
        if sessions.count() >= limits.max_connections:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"at most {limits.max_connections} connections")
        if peer.kind == PAIRING and sessions.count(PAIRING) >= limits.max_pairing_connections:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, "another pairing is in progress")
    except ProtocolError as e:
        logger.info("refused a connection: %s", e.code.wire_name)
        return rejection(e)
    ws = AllySocket(protocols=(peer.subprotocol,), max_msg_size=limits.max_frame_bytes, compress=False,
                    heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        return rejection(ProtocolError(ErrorCode.INVALID_MESSAGE, "not a websocket upgrade request"))
    session = Session(app, ws, peer, port)
    sessions.sessions.add(session)  # counted from here on, before the first await
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
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]  # the port actually bound (when 0 asked for any)
    return RunningServer(runner, int(bound))
