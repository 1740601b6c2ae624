"""One websocket connection: read, validate, dispatch; one writer task sends everything, in order.

Nothing here blocks: handlers only do bookkeeping, jobs run in their lanes, and their answers come back
through the job's future. When the connection ends, whatever it still has queued or running is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from .auth import Peer
from .errors import ErrorCode, ProtocolError
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
    """A protect.image request waiting for its binary frame, then for its header check."""

    request: Request
    timer: asyncio.TimerHandle
    check: asyncio.Task[None] | None = None  # the header check, once the frame arrived


Handler = Callable[["Session", Request], "dict[str, Any] | None"]
ImageStarter = Callable[["Session", Upload, memoryview], Awaitable[None]]


@dataclass(frozen=True)
class Dispatch:
    """What a session calls: a handler per method, and the image job's start once its frame has arrived.

    The handlers live a layer above (``handlers.py``, which uses the session); ``app.py`` passes them in."""

    methods: Mapping[str, Handler]
    start_image: ImageStarter


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
                logger.debug("could not report the oversized frame: %s", type(e).__name__)
            code, message = error.code.close_code, error.code.wire_name.encode()
        return await super().close(code=code, message=message, drain=drain)


def _size(item: str | bytes | _Close) -> int:
    return 0 if isinstance(item, _Close) else len(item)


class Session:
    """One connection. What it holds for its client is bounded (see ``limits.OUTBOX_PAUSE_BYTES``): past the
    pause mark its requests are not read; a message its client does not take within ``write_stall_s``, or a
    close not done within that time, ends the connection, whatever the client keeps sending."""

    def __init__(self, app: web.Application, ws: web.WebSocketResponse, peer: Peer, port: int, dispatch: Dispatch,
                 transport: asyncio.BaseTransport | None = None):
        self.id = next(_session_ids)
        self.app = app
        self.dispatch = dispatch
        self.ws = ws
        self.peer = peer
        self.port = port
        self.transport = transport
        self.limits: Limits = app[LIMITS]
        self.jobs: JobManager = app[JOBS]
        self.requests: dict[str, Upload | Job] = {}  # requests in progress, by id
        self.discard: dict[str, float] = {}  # id -> deadline: binary frames of refused requests, dropped
        self.hello_done = False
        self.pending_pairing: PendingPairing | None = None
        self.closed = False  # nothing more is queued
        self.closing = False  # a close was asked for: incoming messages are no longer handled
        self.finished = asyncio.get_running_loop().create_future()
        self.tasks: set[asyncio.Task[None]] = set()
        self.outbox_bytes = 0  # queued, not yet written
        self.most_queued = 0  # the high-water mark of outbox_bytes (tests and benchmarks read it)
        self._outbox: deque[str | bytes | _Close] = deque()
        self._wakeup = asyncio.Event()  # the writer has something to send
        self._drained = asyncio.Event()  # the reader may go on: the outbox is under the pause mark
        self._drained.set()
        self._timers: list[asyncio.TimerHandle] = []
        self._writer: asyncio.Task[None] | None = None

    # -- sending (every message goes through the one writer task) -------------------------------------------

    def _queue(self, item: str | bytes | _Close) -> None:
        self._outbox.append(item)
        self.outbox_bytes += _size(item)
        self.most_queued = max(self.most_queued, self.outbox_bytes)
        if self.outbox_bytes > self.limits.outbox_pause_bytes:
            self._drained.clear()
        self._wakeup.set()

    @property
    def behind(self) -> bool:
        """The client is not keeping up with what is queued for it."""
        return self.outbox_bytes > self.limits.outbox_pause_bytes // 2

    def send(self, item: str | bytes) -> None:
        if not self.closed:
            self._queue(item)

    def respond(self, rid: str, result: dict[str, Any]) -> None:
        self.send(response(rid, result))

    def fail(self, rid: str | None, error: ProtocolError) -> None:
        self.send(error_response(rid, error))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send(notification(method, params))

    def close(self, code: int, reason: str) -> None:
        """Close after everything queued so far has been sent; no later message is handled, and the
        connection is aborted if the close is not done within ``write_stall_s``."""
        if self.closed or self.closing:
            return
        self.closing = True
        self._queue(_Close(code, reason))
        self._timers.append(asyncio.get_running_loop().call_later(
            self.limits.write_stall_s + self.limits.close_timeout_s, self._abort, "the close was not taken"))

    def fatal(self, rid: str | None, error: ProtocolError) -> None:
        """Answer with ``error``, then close the connection with its close code."""
        self.fail(rid, error)
        self.close(error.code.close_code, error.code.wire_name)

    async def _write_loop(self) -> None:
        try:
            while True:
                while not self._outbox:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                item = self._outbox[0]
                try:
                    if isinstance(item, _Close):
                        await self._close_ws(item.code, item.reason)
                        return
                    async with asyncio.timeout(self.limits.write_stall_s):
                        if isinstance(item, str):
                            await self.ws.send_str(item)
                        else:
                            await self.ws.send_bytes(item)
                except TimeoutError:
                    await self._stalled()
                    return
                except ConnectionError as e:
                    logger.debug("session %d: the peer is gone (%s)", self.id, type(e).__name__)
                    return
                self._outbox.popleft()
                self.outbox_bytes -= _size(item)
                if self.outbox_bytes <= self.limits.outbox_pause_bytes // 2:
                    self._drained.set()
        finally:
            self._outbox.clear()
            self.outbox_bytes = 0
            self.closed = True
            self._drained.set()  # the reader, if paused, sees the end

    async def _close_ws(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self.limits.close_timeout_s):
                await self.ws.close(code=code, message=reason.encode())
        except TimeoutError:
            self._abort("the close frame could not be written")
        except ConnectionError:
            pass

    async def _stalled(self) -> None:
        """The client has not taken a message for ``write_stall_s``: it does not read. Write the error and the
        close frame (4305) behind what is queued in the socket, half-close, and abort after
        ``close_timeout_s``: the client sees them if it reads again by then.

        Not ``ws.close()``: it closes the socket, and a socket closed with unread input (this client's requests,
        which the daemon stopped reading) is reset, dropping what was still queued for the client."""
        error = ProtocolError(ErrorCode.SLOW_CONSUMER, f"an answer waited {self.limits.write_stall_s:g} s for "
                                                       "the client to read it")
        logger.info("session %d: the client does not read; closing (%s)", self.id, error.code.wire_name)
        self._outbox.clear()
        self.outbox_bytes = 0
        self.closing = True
        transport = self.transport
        try:
            async with asyncio.timeout(self.limits.close_timeout_s):
                await self.ws.send_str(error_response(None, error))
        except (TimeoutError, ConnectionError):
            self._abort("the error could not be written")
            return
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            reason = error.code.wire_name.encode()
            transport.write(bytes((0x88, 2 + len(reason))) + error.code.close_code.to_bytes(2, "big") + reason)
            if transport.can_write_eof():
                transport.write_eof()
            # The daemon does not read this socket, so it would not notice the client hanging up: wait.
            await asyncio.sleep(self.limits.close_timeout_s)
        self._abort("closed for not reading")

    def _abort(self, why: str) -> None:
        """Drop the connection at once (the client does not read, so no close can reach it)."""
        if self.finished.done():
            return
        logger.info("session %d: aborting the connection (%s)", self.id, why)
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()  # type: ignore[attr-defined]
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._drained.set()

    # -- the connection's life ------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = writer = asyncio.create_task(self._write_loop(), name=f"ally-session-{self.id}-writer")
        self._timers.append(loop.call_later(self.limits.hello_deadline_s, self._hello_deadline))
        if self.peer.kind == "pairing":
            self._timers.append(loop.call_later(self.limits.pairing_session_ttl_s, self._pairing_expired))
        try:
            await self._read_loop()
        finally:
            self._abandon("the client disconnected")
            if not self.closed and not self.closing:
                self._queue(_Close(WSCloseCode.GOING_AWAY, "closing"))
            self.closed = True
            if not writer.done():
                self._timers.append(loop.call_later(self.limits.write_stall_s + self.limits.close_timeout_s,
                                                    self._abort, "the close was not taken"))
            await asyncio.gather(writer, return_exceptions=True)
            for timer in self._timers:
                timer.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            self.finished.set_result(None)

    async def _read_loop(self) -> None:
        while not self.closed:
            if not self._drained.is_set():
                # Stop reading: the client's requests stay in the socket (TCP back-pressure) until it has
                # taken its answers. The write stall deadline runs meanwhile.
                await self._drained.wait()
                continue
            msg = await self.ws.receive()
            if msg.type is WSMsgType.TEXT:
                if not self.closing:
                    self._handle(self._on_text, msg.data)
            elif msg.type is WSMsgType.BINARY:
                if not self.closing:
                    self._handle(self._on_binary, msg.data)
            elif msg.type is WSMsgType.ERROR:
                logger.info("session %d: websocket error: %s", self.id, type(msg.data).__name__)
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    def _handle(self, handler: Any, data: Any) -> None:
        """Every failure is answered with a numbered error; none ends the session."""
        try:
            handler(data)
        except Exception as e:  # a bug: answered (900) and logged by type, the session goes on
            logger.error("session %d: %s while handling a message", self.id, type(e).__name__)
            self.fail(None, ProtocolError(ErrorCode.INTERNAL, f"internal error ({type(e).__name__})"))

    def _abandon(self, reason: str) -> None:
        """Cancel everything this connection still has in progress."""
        for item in list(self.requests.values()):
            if isinstance(item, Job):
                self.jobs.cancel(item, ErrorCode.CANCELLED, reason)
            else:
                item.timer.cancel()
                if item.check is not None:
                    item.check.cancel()
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
        if len(data) > limit or (4 * len(data) > limit and len(data.encode("utf-8", "surrogatepass")) > limit):
            self.fail(None, ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"JSON messages are limited to {limit} bytes"))
            return
        try:
            request = parse_request(data, self.limits.max_json_depth)
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
        except Exception as e:  # a bug in a handler: answered to its request, the session goes on
            logger.error("session %d: %s in the %s handler", self.id, type(e).__name__, request.method)
            self.fail(request.id, ProtocolError(ErrorCode.INTERNAL, f"internal error ({type(e).__name__})"))
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
            return self.dispatch.methods[request.method](self, request)
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
        if not isinstance(upload, Upload) or upload.check is not None:
            if self.discard.pop(rid, None) is None:
                self.fail(None, ProtocolError(ErrorCode.UNEXPECTED_BINARY,
                                              f"no pending request {rid!r} announced an image"))
            return
        upload.timer.cancel()
        task = asyncio.create_task(self._start_image(upload, payload), name=f"ally-session-{self.id}-check")
        upload.check = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _start_image(self, upload: Upload, payload: memoryview) -> None:
        """The header check (off the event loop, time-bounded), then the job."""
        rid = upload.request.id
        try:
            await self.dispatch.start_image(self, upload, payload)
        except ProtocolError as e:
            if self.requests.get(rid) is upload:
                del self.requests[rid]
                self.fail(rid, e)
        except Exception as e:  # a bug: answered, logged by type
            logger.error("session %d: %s while starting an image job", self.id, type(e).__name__)
            if self.requests.get(rid) is upload:
                del self.requests[rid]
                self.fail(rid, ProtocolError(ErrorCode.INTERNAL, f"internal error ({type(e).__name__})"))

    # -- bookkeeping used by the handlers ---------------------------------------------------------------------

    def expect_binary(self, request: Request) -> None:
        """Wait (up to the payload deadline) for the binary frame of ``request``."""
        timer = asyncio.get_running_loop().call_later(self.limits.payload_deadline_s, self._payload_missing,
                                                       request.id)
        self.requests[request.id] = Upload(request, timer)

    def _payload_missing(self, rid: str) -> None:
        upload = self.requests.get(rid)
        if isinstance(upload, Upload) and upload.check is None:
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
        if self.behind:  # informative only: dropped while the client is not keeping up
            return
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


SESSIONS = web.AppKey("ally.sessions", SessionRegistry)
