"""Every rejection class, one test each: answered with its error code, and the daemon healthy afterwards."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from ally.server.client import DaemonClient, DaemonError, HandshakeRefused
from ally.server.errors import ErrorCode
from ally.server.limits import Limits
from ally.server.protocol import BINARY_MAGIC, TOKEN_PREFIX, pack_binary, validate_server_message

from daemon_fakes import MOZ_ORIGIN, ORIGIN, OTHER_ORIGIN, PNG, Daemon, start_daemon

pytestmark = pytest.mark.asyncio


async def refused(daemon: Daemon, **kwargs: Any) -> HandshakeRefused:
    with pytest.raises(HandshakeRefused) as info:
        await daemon.connect(**kwargs)
    return info.value


async def raw_handshake(
    port: int, protocols: tuple[str, ...], headers: dict[str, str]
) -> aiohttp.WSServerHandshakeError:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"http://127.0.0.1:{port}/ws", protocols=protocols, headers=headers)
        return info.value


async def next_unmatched(client: DaemonClient, timeout: float = 3.0) -> dict[str, Any]:
    """The next message answering no pending request (errors with id null)."""
    async with asyncio.timeout(timeout):
        while not client.unmatched:
            await asyncio.sleep(0.01)
    message = client.unmatched.pop(0)
    validate_server_message(message)
    return message


async def wait_closed(client: DaemonClient, timeout: float = 3.0) -> int | None:
    assert client._reader is not None
    await asyncio.wait_for(asyncio.shield(client._reader), timeout)
    return client.close_code


def error_code(message: dict[str, Any]) -> int:
    return int(message["error"]["code"])


# -- the handshake -------------------------------------------------------------------------------------------


async def test_no_token(daemon: Daemon) -> None:
    e = await refused(daemon, token=None)
    assert (e.status, e.code) == (401, ErrorCode.TOKEN_MISSING)
    await daemon.healthy()


async def test_wrong_token(daemon: Daemon) -> None:
    e = await refused(daemon, token="x" * 43)
    assert (e.status, e.code) == (401, ErrorCode.TOKEN_INVALID)
    await daemon.healthy()


async def test_token_of_another_extension(daemon: Daemon) -> None:
    daemon.registry.add(MOZ_ORIGIN, "Firefox")
    e = await refused(daemon, origin=MOZ_ORIGIN)  # ORIGIN's token, from the other paired extension
    assert e.code == ErrorCode.TOKEN_INVALID
    await daemon.healthy()


async def test_unpaired_extension(daemon: Daemon) -> None:
    e = await refused(daemon, origin=OTHER_ORIGIN)
    assert (e.status, e.code) == (401, ErrorCode.NOT_PAIRED)
    await daemon.healthy()


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:8000", "null",
                                    "chrome-extension://not-an-id", "file://"])
async def test_web_page_origin(daemon: Daemon, origin: str) -> None:
    e = await refused(daemon, origin=origin)
    assert (e.status, e.code) == (403, ErrorCode.ORIGIN_FORBIDDEN)
    await daemon.healthy()


async def test_missing_origin(daemon: Daemon) -> None:
    # The extension's own token, but no Origin: only local tools (with the local token) may omit it.
    e = await refused(daemon, origin=None)
    assert (e.status, e.code) == (403, ErrorCode.ORIGIN_FORBIDDEN)
    await daemon.healthy()


async def test_extension_outside_the_allowed_list(tmp_path: Path, small_limits: Limits) -> None:
    from ally.server.keys import DaemonSettings

    d = await start_daemon(tmp_path, limits=small_limits, settings=DaemonSettings(extension_ids=("a" * 32,)))
    try:
        e = await refused(d)  # paired, right token, but not an allowed extension id
        assert e.code == ErrorCode.ORIGIN_FORBIDDEN
    finally:
        await d.server.stop()


async def test_foreign_host(daemon: Daemon) -> None:
    # DNS rebinding: a page whose name now resolves to 127.0.0.1 still sends its own Host.
    e = await raw_handshake(daemon.port, ("ally", TOKEN_PREFIX + daemon.token),
                            {"Origin": ORIGIN, "Host": f"evil.example:{daemon.port}"})
    assert e.status == 403 and e.headers is not None and e.headers["X-Ally-Error"] == str(ErrorCode.HOST_FORBIDDEN)
    e = await raw_handshake(daemon.port, ("ally", TOKEN_PREFIX + daemon.token),
                            {"Origin": ORIGIN, "Host": "127.0.0.1:1"})  # right name, wrong port
    assert e.headers is not None and e.headers["X-Ally-Error"] == str(ErrorCode.HOST_FORBIDDEN)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{daemon.port}/health", headers={"Host": "evil.example"}) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == ErrorCode.HOST_FORBIDDEN
    await daemon.healthy()


@pytest.mark.parametrize("request_bytes", [
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n",  # a space in a header name
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",  # a line over 8 190
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS on the plain HTTP port
], ids=["bad-header-name", "header-too-long", "not-http"])
async def test_requests_the_http_parser_refuses_carry_the_numbered_error(daemon: Daemon, request_bytes: bytes) -> None:
    """aiohttp answers these itself (before any handler); the answer still says which error it is."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    try:
        writer.write(request_bytes)
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()  # aiohttp closes the connection after a parse error
    finally:
        writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    assert head[0].startswith("HTTP/1.") and head[0].split()[1] == "400", head
    assert headers.get("x-ally-error") == str(int(ErrorCode.INVALID_MESSAGE)), head
    await daemon.healthy()


async def test_missing_subprotocol(daemon: Daemon) -> None:
    e = await raw_handshake(daemon.port, (), {"Origin": ORIGIN})
    assert e.headers is not None and e.headers["X-Ally-Error"] == str(ErrorCode.SUBPROTOCOL_MISSING)
    await daemon.healthy()


async def test_too_many_connections(tmp_path: Path, small_limits: Limits) -> None:
    from dataclasses import replace

    d = await start_daemon(tmp_path, limits=replace(small_limits, max_connections=2))
    try:
        first, second = await d.connect(), await d.connect()
        e = await refused(d)
        assert (e.status, e.code) == (503, ErrorCode.TOO_MANY_CONNECTIONS)
        await first.close()
        await asyncio.sleep(0.05)
        await d.healthy()  # a slot is free again
        await second.close()
    finally:
        await d.server.stop()


async def test_pairing_session_limits(daemon: Daemon) -> None:
    pairing = await daemon.connect(token=None, pairing=True)
    with pytest.raises(DaemonError) as info:
        await pairing.request("protect.image", {"image": {"bytes": len(PNG)}}, binary=PNG)
    assert info.value.code == ErrorCode.METHOD_NOT_ALLOWED
    with pytest.raises(DaemonError) as info:
        await pairing.request("status")
    assert info.value.code == ErrorCode.METHOD_NOT_ALLOWED
    await pairing.close()
    e = await refused(daemon, token=None, pairing=True, origin="https://evil.example")
    assert e.code == ErrorCode.ORIGIN_FORBIDDEN
    await daemon.healthy()


# -- messages ------------------------------------------------------------------------------------------------


async def test_malformed_json(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        await client.ws.send_str('{"id": "a", "method": ')
        assert error_code(await next_unmatched(client)) == ErrorCode.MALFORMED_JSON
        await client.request("status")  # the connection goes on
    await daemon.healthy()


@pytest.mark.parametrize("message", [
    {"id": "a", "method": "protect.image", "params": {"image": {"bytes": "12"}}},
    {"id": "a", "method": "protect.image", "params": {"image": {"bytes": 12}, "level": "extreme"}},
    {"id": "a", "method": "protect.text", "params": {"text": 42}},
    {"id": "a", "method": "cancel", "params": {}},
    {"id": "a", "method": "status", "params": {"verbose": True}},
    {"id": 7, "method": "status"},
    {"method": "status"},
    {"id": "a b", "method": "status"},
    ["status"],
])
async def test_wrong_types(daemon: Daemon, message: Any) -> None:
    async with await daemon.connect() as client:
        await client.ws.send_str(json.dumps(message))
        answer = await next_unmatched(client)
        assert error_code(answer) == ErrorCode.INVALID_MESSAGE
        assert answer["id"] == (message.get("id") if isinstance(message, dict) and message.get("id") == "a" else None)
        await client.request("status")
    await daemon.healthy()


async def test_unknown_method(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.video", {})
        assert info.value.code == ErrorCode.UNKNOWN_METHOD
    await daemon.healthy()


# -- protect.image's ``protect`` (issue 12): refused at the boundary, before any image is read -----------------


async def _bad_protect(daemon: Daemon, protect: Any, expected: str) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(PNG)}, "protect": protect})
        assert info.value.code == ErrorCode.INVALID_MESSAGE
        assert "params.protect" in str(info.value) and expected in str(info.value), str(info.value)
    assert daemon.image.calls == 0
    await daemon.healthy()


async def test_protect_unknown_name(daemon: Daemon) -> None:
    await _bad_protect(daemon, ["faces", "identity"], "'identity' is not one of ['faces', 'emotion', 'metadata']")


async def test_protect_empty(daemon: Daemon) -> None:
    await _bad_protect(daemon, [], "should be non-empty")


async def test_protect_named_twice(daemon: Daemon) -> None:
    await _bad_protect(daemon, ["faces", "faces"], "has non-unique elements")


async def test_protect_not_a_list(daemon: Daemon) -> None:
    await _bad_protect(daemon, "faces,metadata", "is not of type 'array'")


async def test_protect_not_names(daemon: Daemon) -> None:
    await _bad_protect(daemon, [1], "is not one of ['faces', 'emotion', 'metadata']")


async def test_version_mismatch(daemon: Daemon) -> None:
    client = await daemon.connect(hello=False)
    with pytest.raises(DaemonError) as info:
        await client.request("hello", {"protocol": 2})
    assert info.value.code == ErrorCode.VERSION_MISMATCH and info.value.data == {"supported": [1]}
    assert await wait_closed(client) == 4000 + ErrorCode.VERSION_MISMATCH
    await client.close()
    await daemon.healthy()


async def test_hello_required(daemon: Daemon) -> None:
    client = await daemon.connect(hello=False)
    with pytest.raises(DaemonError) as info:
        await client.request("status")
    assert info.value.code == ErrorCode.HELLO_REQUIRED
    # ... and a connection that never says hello is closed at the deadline.
    assert await wait_closed(client, timeout=daemon.limits.hello_deadline_s + 2) == 4000 + ErrorCode.HELLO_REQUIRED
    await client.close()
    await daemon.healthy()


async def test_oversized_frame(daemon: Daemon) -> None:
    client = await daemon.connect()
    too_big = daemon.limits.max_frame_bytes + 1
    await client.ws.send_bytes(BINARY_MAGIC + b"\x01a" + bytes(too_big))
    assert error_code(await next_unmatched(client)) == ErrorCode.MESSAGE_TOO_LARGE
    assert await wait_closed(client) == 4000 + ErrorCode.MESSAGE_TOO_LARGE
    await client.close()
    await daemon.healthy()


async def test_oversized_json_message(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        text = "x" * (daemon.limits.max_json_bytes + 1)
        await client.ws.send_str(json.dumps({"id": "t", "method": "protect.text", "params": {"text": text}}))
        assert error_code(await next_unmatched(client)) == ErrorCode.MESSAGE_TOO_LARGE
        await client.request("status")  # under the frame limit: refused, but the connection goes on
    await daemon.healthy()


async def test_too_many_pixels(daemon: Daemon) -> None:
    # A 20000 x 20000 PNG in a few hundred bytes: refused from its header, nothing decoded.
    bomb = _png_header_only(20000, 20000)
    buf = io.BytesIO()
    Image.new("RGB", (600, 600), (9, 9, 9)).save(buf, format="PNG")
    big = buf.getvalue()  # under the byte limit, over this daemon's 512 x 512 pixel limit
    async with await daemon.connect() as client:
        for data in (bomb, big):
            with pytest.raises(DaemonError) as info:
                await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data)
            assert info.value.code == ErrorCode.TOO_MANY_PIXELS
    assert daemon.image.calls == 0
    await daemon.healthy()


async def test_image_too_large(daemon: Daemon) -> None:
    data = bytes(daemon.limits.max_image_bytes + 1)
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data)
        assert info.value.code == ErrorCode.IMAGE_TOO_LARGE
        await client.request("status")
        assert client.unmatched == []  # its frame, sent anyway, was dropped without a second error
    await daemon.healthy()


async def test_text_too_long(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.text", {"text": "a" * (daemon.limits.max_text_chars + 1)})
        assert info.value.code == ErrorCode.TEXT_TOO_LONG
    await daemon.healthy()


async def test_truncated_image(daemon: Daemon) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 80, 120)).save(buf, format="JPEG")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(cut)}}, binary=cut)
        assert info.value.code == ErrorCode.TRUNCATED_IMAGE
    await daemon.healthy()


async def test_not_an_image(daemon: Daemon) -> None:
    data = b"%PDF-1.7 certainly not a photo"
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data)
        assert info.value.code == ErrorCode.NOT_AN_IMAGE
    await daemon.healthy()


async def test_frame_size_differs_from_announced(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(PNG) + 1}}, binary=PNG)
        assert info.value.code == ErrorCode.INVALID_MESSAGE
    await daemon.healthy()


async def test_unexpected_binary(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        await client.ws.send_bytes(pack_binary("nobody", PNG))
        assert error_code(await next_unmatched(client)) == ErrorCode.UNEXPECTED_BINARY
        await client.ws.send_bytes(b"\x89PNG raw, no header")
        assert error_code(await next_unmatched(client)) == ErrorCode.UNEXPECTED_BINARY
        await client.request("status")
    await daemon.healthy()


async def test_payload_missing(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(PNG)}})  # no frame follows
        assert info.value.code == ErrorCode.PAYLOAD_MISSING
    await daemon.healthy()


async def test_duplicate_id(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        first = await client.send("protect.image", {"image": {"bytes": len(PNG)}}, rid="same")
        await client.ws.send_str(json.dumps({"id": "same", "method": "status"}))
        duplicate = await next_unmatched(client)
        assert error_code(duplicate) == ErrorCode.DUPLICATE_ID
        assert duplicate["id"] is None and duplicate["error"]["data"] == {"id": "same"}
        await client.ws.send_bytes(pack_binary("same", PNG))  # the first request still completes
        reply = await first
        assert reply.binary is not None
    await daemon.healthy()


async def test_too_many_jobs_per_connection(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        waiting = [await client.send("protect.image", {"image": {"bytes": len(PNG)}})
                   for _ in range(daemon.limits.max_jobs_per_connection)]
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(PNG)}})
        assert info.value.code == ErrorCode.TOO_MANY_JOBS and info.value.data["retry_after_ms"] > 0
        for future in waiting:
            with pytest.raises(DaemonError):
                await future  # payload_missing: their frames never came
    await daemon.healthy()


async def test_text_unsupported_without_a_text_protector(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=small_limits, text=False)
    try:
        async with await d.connect() as client:
            assert client.hello["capabilities"]["protect.text"]["available"] is False
            with pytest.raises(DaemonError) as info:
                await client.request("protect.text", {"text": "hello"})
            assert info.value.code == ErrorCode.UNSUPPORTED
        await d.healthy()
    finally:
        await d.server.stop()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")
