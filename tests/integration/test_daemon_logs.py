"""Nothing secret in the daemon's log: hostile handshakes that carry the tokens, then a grep of the log.

The log is captured as ``ally serve`` writes it (a stream handler on the root logger, DEBUG, tracebacks
included), not through pytest's record list."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ally.server.errors import ErrorCode
from ally.server.limits import Limits
from ally.server.logs import REDACTED, redact

from daemon_fakes import ORIGIN, start_daemon


@pytest.fixture
def daemon_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def hostile_handshakes(port: int, token: str, local: str) -> list[bytes]:
    """Upgrade requests that carry a token where aiohttp's parser refuses them (and quotes the line)."""
    host = f"Host: 127.0.0.1:{port}\r\n"
    ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    origin = f"Origin: {ORIGIN}\r\n"
    out = []
    for secret in (token, local):
        # The finding: a control byte after the token in the subprotocol header.
        for byte in [*range(0x00, 0x20), 0x7F]:
            if byte in (0x09, 0x0A, 0x0D):
                continue
            out.append(f"GET /ws HTTP/1.1\r\n{host}{ws}{key}{origin}Sec-WebSocket-Protocol: ally,ally.token."
                       f"{secret}{chr(byte)}\r\n\r\n".encode("latin-1"))
        line = f"Sec-WebSocket-Protocol: ally, ally.token.{secret}\r\n"
        out += [
            # The token in the request line, the header name, a folded line, an oversized line.
            f"GET /ws?ally.token.{secret}\x00 HTTP/1.1\r\n{host}\r\n".encode("latin-1"),
            f"GET /ws HTTP/1.1\r\n{host}ally.token.{secret} : x\r\n\r\n".encode(),
            f"GET /ws HTTP/1.1\r\n{host}{ws}{key} {line}\r\n".encode(),
            f"GET /ws HTTP/1.1\r\n{host}X-Pad: {'p' * 9000}{secret}\r\n{line}\r\n".encode(),
            # Not HTTP at all, and a bad method.
            f"{secret}\r\n\r\n".encode(),
            f"G\x01T /ws HTTP/1.1\r\n{host}{line}\r\n".encode("latin-1"),
            # A bad HTTP version, a body on an upgrade, a bad Content-Length.
            f"GET /ws HTTP/9.9\r\n{host}{line}\r\n".encode(),
            f"GET /ws HTTP/1.1\r\n{host}{ws}{key}{origin}{line}Content-Length: x{secret}\r\n\r\n".encode(),
            # A valid token with a non-ASCII key (was an HTTP 500 with a traceback).
            f"GET /ws HTTP/1.1\r\n{host}{ws}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\u00e9=\r\n{origin}{line}\r\n"
            .encode("utf-8"),
            # Non-UTF-8 bytes beside the token.
            f"GET /ws HTTP/1.1\r\n{host}{ws}{key}{origin}".encode() + b"Sec-WebSocket-Protocol: ally, ally.token."
            + secret.encode() + b"\xff\xfe\r\n\r\n",
        ]
    return out


async def _send(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 3)
    except (ConnectionError, TimeoutError):
        return b""
    finally:
        writer.transport.abort()


@pytest.mark.asyncio
async def test_no_token_in_the_log_after_hostile_handshakes(tmp_path: Path, small_limits: Limits,
                                                            daemon_log: io.StringIO) -> None:
    d = await start_daemon(tmp_path, limits=small_limits)
    try:
        requests = hostile_handshakes(d.port, d.token, d.local_token)
        answers = [await _send(d.port, r) for r in requests]
        # aiohttp's parser answers most (400, before any handler); the rest are ours, numbered.
        assert sum(a[:16] in (b"HTTP/1.0 400 Bad", b"HTTP/1.1 400 Bad") for a in answers) >= len(requests) // 2
        assert all(a.startswith(b"HTTP/1.") for a in answers)
        non_ascii_key = [a for r, a in zip(requests, answers) if "\u00e9".encode() in r]
        # With the extension's token: 101 (the key); with the local token beside an Origin: 201. Numbered.
        assert f"X-Ally-Error: {int(ErrorCode.INVALID_MESSAGE)}".encode() in non_ascii_key[0]
        assert all(b"X-Ally-Error: " in a for a in non_ascii_key)
        await d.healthy()
    finally:
        await d.server.stop()
    log = daemon_log.getvalue()
    # The malformed requests were logged (so the test looked at something) ...
    assert "Error handling request" in log
    # ... with neither token, nor a traceback, nor the request's own text.
    for secret in (d.token, d.local_token):
        assert secret not in log
        assert secret[:20] not in log
    assert "ally.token." not in log.replace(f"ally.token.{REDACTED}", "")
    assert "Traceback" not in log and "pppppppppp" not in log
    assert not any(line.split(" ", 3)[2] in ("ERROR", "CRITICAL") for line in log.splitlines() if line.count(" ") > 3)


def test_redact() -> None:
    token = "q0v8m1b0Yc2PZcN3Yq5b8Qe1rA4nqvYQf3JXj1pDk0M"
    assert redact(f"x ally.token.{token}\x00 y") == f"x {REDACTED} y"  # the control byte goes too
    assert redact(f"b'{token}'") == f"b'{REDACTED}'"
    assert redact("session 12 opened (extension chrome-extension://abcdefghijklmnopabcdefghijklmnop)") == \
        "session 12 opened (extension chrome-extension://abcdefghijklmnopabcdefghijklmnop)"
