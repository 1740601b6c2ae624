"""Who may connect: every check runs on the HTTP upgrade request, before any websocket state exists.

Order (the first failing check answers): Host (DNS rebinding) -> subprotocol -> Origin -> token. Browsers
cannot set headers on a WebSocket, so the token travels as a second subprotocol value,
``ally.token.<token>``; the daemon answers with the subprotocol ``ally`` only, never echoing the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from .errors import ERRORS, ErrorCode, ProtocolError
from .pairing import PairingRegistry
from .protocol import EXTENSION, LOCAL, PAIRING, PAIRING_SUBPROTOCOL, SUBPROTOCOL, TOKEN_PREFIX

LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")
# Chrome/Edge extension ids are 32 letters a-p; Firefox and Safari use a random UUID per install.
_EXTENSION_ORIGIN = re.compile(
    r"^(?:chrome-extension://(?P<chrome>[a-p]{32})"
    r"|moz-extension://(?P<moz>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|safari-web-extension://(?P<safari>[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}))$"
)


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of an accepted connection."""

    kind: str  # EXTENSION | LOCAL | PAIRING
    origin: str | None  # None for local tools
    subprotocol: str  # the one the daemon answers with


def extension_id(origin: str) -> str | None:
    """The extension id in an extension origin, or None if ``origin`` is not one."""
    m = _EXTENSION_ORIGIN.match(origin)
    return next((v for v in m.groupdict().values() if v), None) if m else None


def host_allowed(host: str | None, port: int) -> bool:
    """Host must name the loopback address and our port: a DNS-rebound page sends its own name."""
    if not host:
        return False
    name, sep, port_text = host.lower().rpartition(":")
    return bool(sep) and name in _LOOPBACK_NAMES and port_text == str(port)


def offered_subprotocols(request: web.Request) -> list[str]:
    values = request.headers.getall("Sec-WebSocket-Protocol", [])
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def authenticate(request: web.Request, registry: PairingRegistry, port: int,
                 extension_ids: tuple[str, ...], local_token: str | None) -> Peer:
    """Decide who the client is, or raise :class:`ProtocolError` with the 2xx code to answer."""
    if not host_allowed(request.headers.get("Host"), port):
        raise ProtocolError(ErrorCode.HOST_FORBIDDEN, f"Host must be {LOOPBACK}:{port} or localhost:{port}")
    offered = offered_subprotocols(request)
    if SUBPROTOCOL not in offered and PAIRING_SUBPROTOCOL not in offered:
        raise ProtocolError(ErrorCode.SUBPROTOCOL_MISSING)
    tokens = [p[len(TOKEN_PREFIX):] for p in offered if p.startswith(TOKEN_PREFIX)]
    origin = request.headers.get("Origin")
    if origin is not None:
        ext = extension_id(origin)
        if ext is None:
            raise ProtocolError(ErrorCode.ORIGIN_FORBIDDEN, "only browser extensions may connect")
        if extension_ids and ext not in extension_ids:
            raise ProtocolError(ErrorCode.ORIGIN_FORBIDDEN, "this extension is not in the daemon's allowed list")
    if len(tokens) > 1:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "offer exactly one token")
    if not tokens:
        if PAIRING_SUBPROTOCOL in offered and origin is not None:
            return Peer(PAIRING, origin, PAIRING_SUBPROTOCOL)
        raise ProtocolError(ErrorCode.TOKEN_MISSING, f"offer the subprotocol '{TOKEN_PREFIX}<token>' beside "
                                                     f"'{SUBPROTOCOL}', or '{PAIRING_SUBPROTOCOL}' to pair")
    if SUBPROTOCOL not in offered:  # a token beside 'ally.pair' only
        raise ProtocolError(ErrorCode.SUBPROTOCOL_MISSING, f"a token goes with the subprotocol '{SUBPROTOCOL}'")
    token = tokens[0]
    if origin is None:
        if registry.verify_local(token, local_token):
            return Peer(LOCAL, None, SUBPROTOCOL)
        raise ProtocolError(ErrorCode.ORIGIN_FORBIDDEN, "no Origin header: only local tools holding the local "
                                                        "token may connect without one")
    problem = registry.verify(origin, token)
    if problem is not None:
        raise ProtocolError(problem)
    return Peer(EXTENSION, origin, SUBPROTOCOL)


def rejection(error: ProtocolError) -> web.Response:
    """The HTTP answer to a refused handshake: the error's status, its number in ``X-Ally-Error``, JSON body."""
    return web.json_response({"error": error.to_wire()}, status=ERRORS[error.code].http_status,
                             headers={"X-Ally-Error": str(int(error.code))})
