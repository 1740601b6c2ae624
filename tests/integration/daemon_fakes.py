"""Daemon test helpers: a real server on an ephemeral port with tiny fake engines and a real file store.

The fake image engine inverts the pixels; the top-left pixel's red value picks a behaviour, so that every
job's fate is decided by what its client sent (``BEHAVIOUR_*``). Like the real engine it leaves the pixels
alone at level off and when neither faces nor emotion is asked for; with emotion it carries one (fake)
expression receipt.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ally.enrol import Enrolment, NoFaceError
from ally.imaging.io import LoadedImage
from ally.me import MeStore
from ally.levels import Level
from ally.protect.receipt import ExpressionReceipt
from ally.protections import DEFAULT_PROTECTIONS, EMOTION, FACES
from ally.server.app import RunningServer, create_app, start_server
from ally.server.client import DaemonClient
from ally.server.engines import Engines, LazyEngine
from ally.server.keys import DaemonSettings
from ally.server.limits import Limits
from ally.server.pairing import PairingRegistry
from ally.server.protocol import validate_server_message
from ally.server.store import FileStore

ORIGIN = "chrome-extension://" + "abcdefghijklmnopabcdefghijklmnop"
OTHER_ORIGIN = "chrome-extension://" + "ponmlkjihgfedcbaponmlkjihgfedcba"
MOZ_ORIGIN = "moz-extension://0f6f5cb3-8b51-4c6a-9d3e-1c2b3a4d5e6f"

BEHAVIOUR_FAIL = 1  # the engine raises
BEHAVIOUR_BLOCK = 2  # the engine runs until cancelled (reporting progress)
BEHAVIOUR_OOM = 3  # the device engine runs out of memory; the CPU fallback succeeds
BEHAVIOUR_SLOW = 4  # takes 0.3 s
BEHAVIOUR_STILL_READS = 5  # with emotion: the (fake) held-out expression reader still reads the expression
BEHAVIOUR_NO_FACE = 6  # me.add: the (fake) detector finds no face
FAKE_SURROGATES = ("fake-surrogate", "fake-surrogate-2")
FAKE_READER = "fake-expression-reader"


@dataclass
class FakePhoto:
    rgb: np.ndarray
    faces: list[Any] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    expression_receipts: list[ExpressionReceipt] = field(default_factory=list)

    @property
    def cloaked(self) -> bool:
        return False


def fake_expression_receipt(still_reads: bool) -> ExpressionReceipt:
    """What the fake engine reports per photo when emotion is asked for (a fixed, labelled fake)."""
    return ExpressionReceipt(FAKE_READER, "JPEG 75 + 1080 px", True, "happy", 0.91,
                             "happy" if still_reads else "neutral", 0.88 if still_reads else 0.12, not still_reads)


class FakeImageEngine:
    """Inverts the pixels; behaviours by the top-left red value. Records what it saw (weakly)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.warmed = False
        self.seen: list[weakref.ref[LoadedImage]] = []
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.calls = 0
        self.protections: list[frozenset[str]] = []  # what each call was asked to protect
        self.sites: list[Any] = []  # the site each call was given (a SiteProfile or None)
        self.sizes: list[tuple[int, int]] = []  # (width, height) of each image it was given
        self.behaviours = True  # False: every image is simply inverted (fuzzing)

    def warm_up(self) -> None:
        self.warmed = True

    def enrol(self, image: LoadedImage) -> Enrolment:
        """A fake reference: per fake surrogate, the photo's mean colour (and its model's index) as a unit vector;
        two faces, unless the top-left red value says there is none."""
        if int(image.rgb[0, 0, 0]) == BEHAVIOUR_NO_FACE:
            raise NoFaceError("no face found in the photo (fake)")
        mean = image.rgb.reshape(-1, 3).mean(axis=0).astype(np.float32)
        out = {}
        for i, model in enumerate(FAKE_SURROGATES):
            v = np.concatenate([mean, [float(i + 1)]]).astype(np.float32)
            out[model] = v / np.linalg.norm(v)
        return Enrolment(out, 2, (0.0, 0.0, float(image.width), float(image.height)))

    def protect(self, image: LoadedImage, level: Level, progress: Callable[[str, float], None] | None = None, *,
                protections: frozenset[str] = DEFAULT_PROTECTIONS, site: Any = None, written: Any = None,
                only_me: bool | None = None) -> FakePhoto:
        self.calls += 1
        self.protections.append(protections)
        self.sites.append(site)
        self.sizes.append((image.width, image.height))
        self.seen.append(weakref.ref(image))
        behaviour = int(image.rgb[0, 0, 0]) if self.behaviours else 0
        assert progress is not None
        progress("detecting faces", 0.0)
        if behaviour == BEHAVIOUR_FAIL:
            raise RuntimeError("the fake engine failed on purpose")
        if behaviour == BEHAVIOUR_OOM and self.device != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory (fake)")
        if behaviour == BEHAVIOUR_BLOCK:
            self.started.set()
            step = 0
            try:
                while True:
                    step += 1
                    progress("face 1/1", min(step / 1000, 0.99))
                    time.sleep(0.005)
            except BaseException:
                self.cancelled.set()
                raise
        if behaviour == BEHAVIOUR_SLOW:
            for i in range(6):
                progress("face 1/1", i / 6)
                time.sleep(0.05)
        progress("face 1/1", 1.0)
        if level is Level.OFF or not protections & {FACES, EMOTION}:
            return FakePhoto(image.rgb)
        receipts = [fake_expression_receipt(behaviour == BEHAVIOUR_STILL_READS)] if EMOTION in protections else []
        return FakePhoto(255 - image.rgb, expression_receipts=receipts)


class FakeTextProtector:
    """Upper-cases the text; a text that starts with ``block:`` runs until cancelled (reporting progress)."""

    device = "cpu"

    def protect(self, text: str, level: Level, progress: Callable[[str, float], None] | None = None) -> Any:
        if progress:
            progress("rewriting", 0.5)
            if text.startswith("block:"):
                while True:
                    progress("rewriting", 0.5)
                    time.sleep(0.005)

        @dataclass
        class Result:
            text: str
            changes: list[dict[str, Any]]

        return Result(text.upper(), [{"kind": "case", "count": sum(c.islower() for c in text)}])


def png_bytes(width: int = 8, height: int = 8, marker: int = 0, seed: int = 0) -> bytes:
    """A small PNG whose top-left red value is ``marker`` (a behaviour) and whose other pixels encode ``seed``."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(16, 240, size=(height, width, 3), dtype=np.uint8)
    rgb[0, 0, 0] = marker
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@dataclass
class Daemon:
    server: RunningServer
    store: FileStore
    engines: Engines
    image: FakeImageEngine
    token: str
    local_token: str
    limits: Limits
    registry: PairingRegistry
    me: MeStore

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def app(self) -> Any:
        return self.server.runner.app

    def sessions(self) -> list[Any]:
        from ally.server.session import SESSIONS

        return list(self.app[SESSIONS].sessions)

    async def connect(self, **kwargs: Any) -> DaemonClient:
        kwargs.setdefault("token", self.token)
        kwargs.setdefault("origin", ORIGIN)
        kwargs.setdefault("on_message", validate_server_message)
        return await DaemonClient.connect(self.port, **kwargs)

    async def local(self) -> DaemonClient:
        return await DaemonClient.connect(self.port, token=self.local_token, on_message=validate_server_message)

    async def healthy(self) -> None:
        """The daemon still serves a full session: hello, a job, status."""
        async with await self.connect() as client:
            reply = await client.request("protect.image", {"image": {"bytes": len(PNG)}}, binary=PNG)
            assert reply.binary is not None and (decode(reply.binary) == 255 - decode(PNG)).all()
            await client.request("status")


PNG = png_bytes()


async def start_daemon(tmp_path: Path, *, limits: Limits | None = None, device: str = "cpu",
                       text: bool = False, port: int = 0, workers: int = 1,
                       settings: DaemonSettings | None = None, token: str | None = None) -> Daemon:
    """A daemon on ``port`` (0: any free one); pairs ORIGIN unless ``token`` (an existing pairing) is given."""
    store = FileStore(tmp_path / "secrets.json")
    registry = PairingRegistry(store)
    token = token or registry.add(ORIGIN, "Ally test extension")
    image = FakeImageEngine(device)
    fallback = LazyEngine(lambda: FakeImageEngine("cpu")) if device != "cpu" else None
    engines = Engines(image, FakeTextProtector() if text else None, cpu_fallback=fallback,
                      model_ids=("fake-detector", "fake-surrogate"))
    limits = limits or Limits()
    me = MeStore(tmp_path / "me.npz")
    app = create_app(engines, store, limits=limits, settings=settings, lane_workers=workers, me=me)
    server = await start_server(app, port)
    local = registry.local_token()
    assert local
    await asyncio.wait_for(engines.ready.wait(), 5)
    return Daemon(server, store, engines, image, token, local, limits, registry, me)


# -- hostile clients: raw sockets, for what a well-behaved client library would not send ---------------------


def ws_frame(payload: bytes | str, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455), FIN set; ``opcode`` 1 text, 2 binary."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data)
    head = bytes((0x80 | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 1 << 16:
        head += bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    mask = bytes((0x37, 0xFA, 0x21, 0x3D))
    masked = (np.frombuffer(data, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)).tobytes()
    return head + mask + masked


def upgrade_request(port: int, protocols: str | None, *, origin: str | None = ORIGIN,
                    key: str = "dGhlIHNhbXBsZSBub25jZQ==", extra: str = "") -> bytes:
    lines = [f"GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("utf-8", "surrogateescape")


@dataclass
class RawClient:
    """A websocket client on a plain socket: it reads only when told to (a client that does not read)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int
    headers: dict[str, str]

    async def send(self, payload: bytes | str, opcode: int = 0x1, timeout: float = 2.0) -> bool:
        """Send one frame; False if the daemon did not take it within ``timeout`` (it stopped reading)."""
        try:
            self.writer.write(ws_frame(payload, opcode))
            await asyncio.wait_for(self.writer.drain(), timeout)
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def closed_by_peer(self, timeout: float) -> bool:
        """Read (and drop) everything until the daemon ends the connection; False if it is still open."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(1 << 16):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def abort(self) -> None:
        self.writer.transport.abort()


async def raw_connect(port: int, protocols: str | None, *, origin: str | None = ORIGIN, rcvbuf: int | None = None,
                      key: str = "dGhlIHNhbXBsZSBub25jZQ==", extra: str = "", timeout: float = 5.0) -> RawClient:
    """Send an upgrade request on a fresh socket (``rcvbuf``: its receive buffer, small for a client that does
    not read) and read the HTTP answer's head."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    writer.write(upgrade_request(port, protocols, origin=origin, key=key, extra=extra))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return RawClient(reader, writer, int(status_line.split()[1]), headers)


def png_of_chunks(chunks: int, *, after_data: bool = False) -> bytes:
    """A 1x1 PNG with ``chunks`` empty ancillary chunks before (or after) its image data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes = b"") -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    idat = chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30"))
    junk = chunk(b"zzZz") * chunks
    body = idat + junk if after_data else junk + idat
    return b"\x89PNG\r\n\x1a\n" + ihdr + body + chunk(b"IEND")


def jpeg_of_comments(markers: int) -> bytes:
    """An 8x8 JPEG with ``markers`` empty COM segments before its frame header."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (50, 90, 130)).save(buf, "JPEG")
    data = buf.getvalue()
    return data[:2] + b"\xff\xfe\x00\x02" * markers + data[2:]


def gif_of_comments(sub_blocks: int) -> bytes:
    """An 8x8 GIF with a comment extension of ``sub_blocks`` one-byte sub-blocks."""
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    data = buf.getvalue()
    flags = data[10]
    at = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    return data[:at] + b"\x21\xfe" + b"\x01a" * sub_blocks + b"\x00" + data[at:]
