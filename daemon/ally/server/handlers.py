"""The method handlers and the one dispatch table.

A handler gets the session and a validated request and returns the result, or None when the answer comes
later (a job's result, or an error for an image that never arrived). It raises ``ProtocolError`` to refuse.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .. import __version__
from ..levels import Level
from ..me import MeStoreError
from ..protections import parse_protections
from ..sites import profile
from .engines import device_name, enrol_work, image_work, text_work
from .errors import ErrorCode, ProtocolError
from .jobs import IMAGE, LONG_TEXT, TEXT, Job
from .keys import BROKER, CHECKS, ENGINES, ME, PAIRINGS, SETTINGS
from .protocol import PROTOCOL_VERSION, SUPPORTED_VERSIONS, Request
from .session import SESSIONS, Dispatch, Handler, Session, Upload


def handle_hello(session: Session, request: Request) -> dict[str, Any] | None:
    version = request.params["protocol"]
    if version not in SUPPORTED_VERSIONS:
        session.fatal(request.id, ProtocolError(
            ErrorCode.VERSION_MISMATCH, f"protocol {version} is not supported; this daemon speaks "
                                        f"{', '.join(map(str, SUPPORTED_VERSIONS))}",
            {"supported": list(SUPPORTED_VERSIONS)}))
        return None
    session.hello_done = True
    return {
        "protocol": PROTOCOL_VERSION,
        "daemon": {"name": "ally", "version": __version__},
        "session": {"kind": session.peer.kind, "origin": session.peer.origin},
        "capabilities": session.app[ENGINES].capabilities(),
        "limits": session.limits.public(),
    }


def _level(session: Session, params: dict[str, Any]) -> Level:
    value = params.get("level")
    return Level(value) if value is not None else session.app[SETTINGS].level


def _protections(session: Session, params: dict[str, Any]) -> frozenset[str]:
    """The request's ``protect`` (the schema checked its names and uniqueness), else the daemon's default."""
    value = params.get("protect")
    return parse_protections(value) if value is not None else session.app[SETTINGS].protect


def _admit(session: Session) -> None:
    if len(session.requests) >= session.limits.max_jobs_per_connection:
        raise ProtocolError(ErrorCode.TOO_MANY_JOBS, f"at most {session.limits.max_jobs_per_connection} jobs "
                                                     "per connection at once",
                            {"retry_after_ms": 1000})


def handle_protect_image(session: Session, request: Request) -> None:
    """protect.image and me.add: the photo's frame is awaited, then checked (``start_image_job``)."""
    session.app[ENGINES].check("image")
    announced = request.params["image"]["bytes"]
    if announced > session.limits.max_image_bytes:
        raise ProtocolError(ErrorCode.IMAGE_TOO_LARGE, f"{announced} bytes; the limit is "
                                                       f"{session.limits.max_image_bytes}")
    _admit(session)
    session.expect_binary(request)
    return None


async def start_image_job(session: Session, upload: Upload, payload: memoryview) -> None:
    """The image frame of ``upload`` arrived: check it from its header (in a thread, time-bounded), then queue
    the job. Raises ProtocolError to refuse; does nothing if the request was cancelled meanwhile."""
    request = upload.request
    announced = request.params["image"]["bytes"]
    if len(payload) != announced:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"the request announced {announced} bytes; the frame "
                                                       f"holds {len(payload)}")
    engines = session.app[ENGINES]
    engines.check("image")
    data = bytes(payload)
    del payload
    limits = session.limits
    width, height = await session.app[CHECKS].size(data, limits.max_image_segments, limits.image_check_timeout_s)
    if width * height > limits.max_image_pixels:
        raise ProtocolError(ErrorCode.TOO_MANY_PIXELS, f"{width}x{height} is {width * height} pixels; the limit "
                                                       f"is {limits.max_image_pixels}")
    if session.requests.get(request.id) is not upload:  # cancelled (answered) while it was checked
        return
    engines.check("image")
    image = engines.image
    assert image is not None  # engines.check("image")
    fallback = engines.cpu_fallback
    if request.method == "me.add":
        job = Job(request.id, enrol_work(lambda: image, data, session.app[ME]), size=len(data),
                  on_progress=session.on_progress, progress_interval_s=limits.progress_interval_s)
    else:
        level, fmt = _level(session, request.params), request.params.get("format", "same")
        protections = _protections(session, request.params)
        site = profile(request.params["site"]) if "site" in request.params else None  # the schema named a known one
        full_size = bool(request.params.get("full_size", False))

        def work(engine: Any) -> Any:
            return image_work(engine, data, level, fmt, protections, site, full_size, session.app[SETTINGS].only_me)

        job = Job(request.id, work(lambda: image), fallback=work(fallback.get) if fallback is not None else None,
                  size=len(data), on_progress=session.on_progress, progress_interval_s=limits.progress_interval_s)
    session.jobs.submit(job, device_name(image), IMAGE)
    del session.requests[request.id]
    session.track(job)


def handle_protect_text(session: Session, request: Request) -> None:
    engines = session.app[ENGINES]
    engines.check("text")
    text = request.params["text"]
    if len(text) > session.limits.max_text_chars:
        raise ProtocolError(ErrorCode.TEXT_TOO_LONG, f"{len(text)} characters; the limit is "
                                                     f"{session.limits.max_text_chars}")
    _admit(session)
    protector = engines.text
    assert protector is not None
    # Short texts (posts) on their lane, long ones on another: neither waits behind images or the other.
    kind = TEXT if len(text) <= session.limits.long_text_chars else LONG_TEXT
    job = Job(request.id, text_work(protector, text, _level(session, request.params)),
              size=len(text.encode("utf-8")), on_progress=session.on_progress,
              progress_interval_s=session.limits.progress_interval_s)
    session.jobs.submit(job, device_name(protector), kind)
    session.track(job)
    return None


def handle_cancel(session: Session, request: Request) -> dict[str, Any]:
    job_id = request.params["job"]
    item = session.requests.pop(job_id, None)
    if item is None:
        raise ProtocolError(ErrorCode.UNKNOWN_JOB, f"no job {job_id!r} in progress on this connection")
    if isinstance(item, Job):
        session.requests[job_id] = item  # its answer (400 cancelled) is sent when its future resolves
        session.jobs.cancel(item, ErrorCode.CANCELLED, "cancelled by the client")
    else:  # still waiting for its image frame, or for its header check
        item.timer.cancel()
        session.fail(job_id, ProtocolError(ErrorCode.CANCELLED, "cancelled by the client"))
        if item.check is None:
            session.drop_binary_of(job_id)
        else:
            item.check.cancel()
    return {"job": job_id, "cancelled": True}


def handle_status(session: Session, request: Request) -> dict[str, Any]:
    app = session.app
    engines, registry, settings = app[ENGINES], app[PAIRINGS], app[SETTINGS]
    models: dict[str, Any] = {"state": engines.state, "ids": list(engines.model_ids)}
    if engines.error:
        models["error"] = engines.error
    stats = session.jobs.stats
    return {
        "daemon": {"version": __version__, "pid": os.getpid(), "port": session.port,
                   "uptime_s": round(time.monotonic() - settings.started, 1)},
        "device": engines.device,
        "models": models,
        "queues": session.jobs.snapshot(),
        "connections": app[SESSIONS].count(),
        "jobs": {"completed": stats.completed, "failed": stats.failed, "cancelled": stats.cancelled,
                 "busy": stats.busy},
        "pairing": {"store": registry.store.describe(), "secure": registry.store.secure,
                    "paired": len(registry.pairings(fresh=False))},
    }


def handle_settings(session: Session, request: Request) -> dict[str, Any]:
    current = session.app[SETTINGS]
    if "level" in request.params:
        current.level = Level(request.params["level"])
    if "only_me" in request.params:
        current.only_me = request.params["only_me"]
    if request.params and current.on_change is not None:
        current.on_change(current)
    return {"level": current.level.value, "device": session.app[ENGINES].device, "only_me": current.only_me}


def _me_error(e: MeStoreError) -> ProtocolError:
    return ProtocolError(ErrorCode.ME_STORE, str(e))


def handle_me_list(session: Session, request: Request) -> dict[str, Any]:
    try:
        refs = session.app[ME].list()
    except MeStoreError as e:
        raise _me_error(e) from None
    return {"references": [r.as_dict() for r in refs], "only_me": session.app[SETTINGS].only_me}


def handle_me_forget(session: Session, request: Request) -> dict[str, Any]:
    store = session.app[ME]
    try:
        if request.params.get("all"):
            forgotten = store.forget_all()
        else:
            rid = request.params["id"]
            if all(r.id != rid for r in store.list()):
                raise ProtocolError(ErrorCode.UNKNOWN_REFERENCE, f"no reference {rid!r}")
            store.forget(rid)
            forgotten = 1
        left = store.list()
    except MeStoreError as e:
        raise _me_error(e) from None
    return {"forgotten": forgotten, "references": [r.as_dict() for r in left]}


def handle_pair_begin(session: Session, request: Request) -> dict[str, Any]:
    broker = session.app[BROKER]
    if session.pending_pairing is not None:
        broker.withdraw(session.pending_pairing)
    assert session.peer.origin is not None  # pairing sessions always have an extension origin
    pending = broker.begin(session.peer.origin, request.params.get("name", "browser extension"),
                           session.on_pairing_done)
    session.pending_pairing = pending
    return {"code": pending.code, "expires_in_s": broker.code_ttl_s}


def handle_pair_confirm(session: Session, request: Request) -> dict[str, Any]:
    pending = session.app[BROKER].confirm(request.params["code"])
    return {"origin": pending.origin, "name": pending.name}


HANDLERS: dict[str, Handler] = {
    "hello": handle_hello,
    "protect.image": handle_protect_image,
    "protect.text": handle_protect_text,
    "me.add": handle_protect_image,  # the same frame handling; start_image_job makes an enrolment job of it
    "me.list": handle_me_list,
    "me.forget": handle_me_forget,
    "cancel": handle_cancel,
    "status": handle_status,
    "settings": handle_settings,
    "pair.begin": handle_pair_begin,
    "pair.confirm": handle_pair_confirm,
}

DISPATCH = Dispatch(HANDLERS, start_image_job)
