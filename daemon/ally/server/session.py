"""One websocket connection: read, validate, dispatch; one writer task sends everything, in order.

Nothing here blocks: handlers only do bookkeeping, jobs run in their lanes, and their answers come back
through the job's future. When the connection ends, whatever it still has queued or running is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from .auth import Peer
from .errors import ErrorCode, ProtocolError
from .handlers import HANDLERS, start_image_job
from .jobs import Job, JobManager
from .keys import BROKER, JOBS, LIMITS
from .pairing import PendingPairing
from .protocol import METHODS, Request, RequestError, error_response, notification, pack_binary, parse_request, \
    response, unpack_binary

if TYPE_CHECKING:
    from .limits import Limits

logger = logging.getLogger(__name__)
_session_ids = count(1)


@dataclass
class Upload:
    """A protect.image request waiting for its binary frame."""

    request: Request
    timer: asyncio.TimerHandle


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class AllySocket(web.WebSocketResponse):
    """aiohttp closes with 1009 when a frame is over the size limit, from the frame header alone; we answer
    with the protocol's error first and close with its code (4104) instead."""

    def __init__(self, *, max_msg_size: int, **kwargs: Any):
        super().__init__(max_msg_size=max_msg_size, **kwargs)
        self.frame_limit = max_msg_size

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            error = ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"frames are limited to {self.frame_limit} bytes")
            try:
                await self.send_str(error_response(None, error))
            except ConnectionError as e:
                logger.debug("could not report the oversized frame: %s", e)
            code, message = error.code.close_code, error.code.wire_name.encode()
        return await super().close(code=code, message=message, drain=drain)


class Session:
    def __init__(self, app: web.Application, ws: web.WebSocketResponse, peer: Peer, port: int):
        self.id = next(_session_ids)
        self.app = app
        self.ws = ws
        self.peer = peer
        self.port = port
        self.limits: Limits = app[LIMITS]
        self.jobs: JobManager = app[JOBS]
        self.requests: dict[str, Upload | Job] = {}  # requests in progress, by id
        self.discard: dict[str, float] = {}  # id -> deadline: binary frames of refused requests, dropped
        self.hello_done = False
        self.pending_pairing: PendingPairing | None = None
        self.closed = False
        self.finished = asyncio.get_running_loop().create_future()
        self.tasks: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[str | bytes | _Close] = asyncio.Queue()
        self._timers: list[asyncio.TimerHandle] = []

    # -- sending (every message goes through the one writer task) -------------------------------------------

    def send(self, item: str | bytes) -> None:
        if not self.closed:
            self._outbox.put_nowait(item)

    def respond(self, rid: str, result: dict[str, Any]) -> None:
        self.send(response(rid, result))

    def fail(self, rid: str | None, error: ProtocolError) -> None:
        self.send(error_response(rid, error))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send(notification(method, params))

    def close(self, code: int, reason: str) -> None:
        """Close after everything queued so far has been sent."""
        if not self.closed:
            self._outbox.put_nowait(_Close(code, reason))

    def fatal(self, rid: str | None, error: ProtocolError) -> None:
        """Answer with ``error``, then close the connection with its close code."""
        self.fail(rid, error)
        self.close(error.code.close_code, error.code.wire_name)

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                if isinstance(item, str):
                    await self.ws.send_str(item)
                else:
                    await self.ws.send_bytes(item)
            except ConnectionError as e:
                logger.debug("session %d: the peer is gone (%s)", self.id, e)
                return

    # -- the connection's life ------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        writer = asyncio.create_task(self._write_loop(), name=f"ally-session-{self.id}-writer")
        self._timers.append(loop.call_later(self.limits.hello_deadline_s, self._hello_deadline))
        if self.peer.kind == "pairing":
            self._timers.append(loop.call_later(self.limits.pairing_session_ttl_s, self._pairing_expired))
        try:
            await self._read_loop()
        finally:
            self._abandon("the client disconnected")
            self.closed = True
            self._outbox.put_nowait(_Close(WSCloseCode.GOING_AWAY, "closing"))
            for timer in self._timers:
                timer.cancel()
            await writer
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            self.finished.set_result(None)

    async def _read_loop(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type is WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._on_binary(msg.data)
            elif msg.type is WSMsgType.ERROR:
                logger.info("session %d: websocket error: %s", self.id, msg.data)
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    def _abandon(self, reason: str) -> None:
        """Cancel everything this connection still has in progress."""
        for item in list(self.requests.values()):
            if isinstance(item, Job):
                self.jobs.cancel(item, ErrorCode.CANCELLED, reason)
            else:
                item.timer.cancel()
        self.requests.clear()
        if self.pending_pairing is not None:
            self.app[BROKER].withdraw(self.pending_pairing)
            self.pending_pairing = None

    def _hello_deadline(self) -> None:
        if not self.hello_done:
            self.fatal(None, ProtocolError(ErrorCode.HELLO_REQUIRED,
                                           f"no hello within {self.limits.hello_deadline_s:g} s"))

    def _pairing_expired(self) -> None:
        self.fatal(None, ProtocolError(ErrorCode.PAIRING_FAILED, "the pairing session expired"))

    # -- incoming -------------------------------------------------------------------------------------------

    def _on_text(self, data: str) -> None:
        limit = self.limits.max_json_bytes
        if len(data) > limit or (4 * len(data) > limit and len(data.encode()) > limit):
            self.fail(None, ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"JSON messages are limited to {limit} bytes"))
            return
        try:
            request = parse_request(data)
        except RequestError as e:
            self.fail(e.request_id, e.error)
            if e.request_id is not None and e.request_id not in self.requests:
                self.drop_binary_of(e.request_id)
            return
        try:
            result = self._dispatch(request)
        except ProtocolError as e:
            self.fail(request.id, e)
            return
        if result is not None:
            self.respond(request.id, result)

    def _dispatch(self, request: Request) -> dict[str, Any] | None:
        if not self.hello_done and request.method != "hello":
            raise ProtocolError(ErrorCode.HELLO_REQUIRED)
        if self.peer.kind not in METHODS[request.method].sessions:
            raise ProtocolError(ErrorCode.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on a "
                                                              f"{self.peer.kind} connection")
        if request.id in self.requests:
            # Addressed to no id: the id belongs to the request still in progress, whose answer is still due.
            self.fail(None, ProtocolError(ErrorCode.DUPLICATE_ID, f"request {request.id!r} is still in progress",
                                          {"id": request.id}))
            return None
        try:
            return HANDLERS[request.method](self, request)
        except ProtocolError:
            if METHODS[request.method].binary_in:
                self.drop_binary_of(request.id)
            raise

    def _on_binary(self, frame: bytes) -> None:
        try:
            rid, payload = unpack_binary(frame)
        except ProtocolError as e:
            self.fail(None, e)
            return
        upload = self.requests.get(rid)
        if not isinstance(upload, Upload):
            if self.discard.pop(rid, None) is None:
                self.fail(None, ProtocolError(ErrorCode.UNEXPECTED_BINARY,
                                              f"no pending request {rid!r} announced an image"))
            return
        del self.requests[rid]
        upload.timer.cancel()
        try:
            start_image_job(self, upload.request, payload)
        except ProtocolError as e:
            self.fail(rid, e)

    # -- bookkeeping used by the handlers ---------------------------------------------------------------------

    def expect_binary(self, request: Request) -> None:
        """Wait (up to the payload deadline) for the binary frame of ``request``."""
        timer = asyncio.get_running_loop().call_later(self.limits.payload_deadline_s, self._payload_missing,
                                                       request.id)
        self.requests[request.id] = Upload(request, timer)

    def _payload_missing(self, rid: str) -> None:
        if isinstance(self.requests.get(rid), Upload):
            del self.requests[rid]
            self.fail(rid, ProtocolError(ErrorCode.PAYLOAD_MISSING, f"no image frame within "
                                                                    f"{self.limits.payload_deadline_s:g} s"))
            self.drop_binary_of(rid)

    def drop_binary_of(self, rid: str) -> None:
        """A refused request's image frame may still come: drop it silently (until the payload deadline)."""
        now = time.monotonic()
        self.discard = {k: t for k, t in self.discard.items() if t > now}
        self.discard[rid] = now + self.limits.payload_deadline_s

    def track(self, job: Job) -> None:
        """Answer ``job``'s request when it finishes."""
        self.requests[job.id] = job
        task = asyncio.create_task(self._deliver(job), name=f"ally-session-{self.id}-job")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, job: Job) -> None:
        outcome = await job.future
        if self.requests.get(job.id) is job:
            del self.requests[job.id]
        if isinstance(outcome, ProtocolError):
            self.fail(job.id, outcome)
            return
        self.respond(job.id, outcome.result)
        if outcome.binary is not None:
            self.send(pack_binary(job.id, outcome.binary))

    def on_progress(self, job_id: str, stage: str, fraction: float) -> None:
        self.notify("progress", {"job": job_id, "stage": stage, "fraction": round(fraction, 4)})

    def on_pairing_done(self, token: str | None, error: ProtocolError | None) -> None:
        self.pending_pairing = None
        if token is not None:
            self.notify("pair.completed", {"origin": self.peer.origin or "", "token": token})
            self.close(WSCloseCode.OK, "paired")
        elif error is not None:
            self.notify("pair.failed", {"error": error.to_wire()})
            self.close(error.code.close_code, error.code.wire_name)


class SessionRegistry:
    """The open connections; shutdown tells them, drains the jobs, and closes them."""

    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        self.closing = False

    def count(self, kind: str | None = None) -> int:
        return sum(1 for s in self.sessions if kind is None or s.peer.kind == kind)

    async def shutdown(self, jobs: JobManager, grace_s: float) -> None:
        self.closing = True
        for session in list(self.sessions):
            session.notify("shutdown", {"reason": "the daemon is stopping", "grace_s": grace_s})
        await jobs.drain(grace_s)
        tasks = [t for s in self.sessions for t in s.tasks]
        if tasks:  # let finished jobs' answers reach the outboxes before the close does
            await asyncio.gather(*tasks, return_exceptions=True)
        for session in list(self.sessions):
            session.close(WSCloseCode.GOING_AWAY, "shutting down")
        finished = [s.finished for s in self.sessions]
        if finished:
            await asyncio.wait(finished, timeout=grace_s)
