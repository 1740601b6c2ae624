"""Property-based fuzzing of the daemon protocol over a real socket (Hypothesis).

A real daemon (tiny fake engines, real aiohttp server, real sockets) runs in a thread of its own; Hypothesis
generates frames: arbitrary JSON, envelopes with mutated params for every method, raw text, the known killers
(huge integers, deep nesting, lone surrogates), binary frames with good and bad headers, and images (valid,
mutated, truncated, of countless segments) after the requests that announce them. After each example a probe
request checks that the session is alive and answers in order. The property: **no input kills a session**.
A session is killed when it closes with a code the protocol does not document for that input, stops
answering, answers 900 internal, or the daemon logs an ERROR.

    .venv/bin/python tests/bench/daemon_fuzz.py --examples 4000     # about 10 000 messages

``tests/integration/test_daemon_fuzz.py`` runs a bounded number of examples in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from daemon_fakes import ORIGIN, Daemon, png_of_chunks, start_daemon  # noqa: E402

from ally.server.errors import ErrorCode  # noqa: E402
from ally.server.limits import Limits  # noqa: E402
from ally.server.protocol import METHODS, PAIRING_SUBPROTOCOL, TOKEN_PREFIX, pack_binary, \
    validate_server_message  # noqa: E402

# Closes the protocol documents for inputs a fuzzer can send: a hello with another protocol version
# (4103), a frame over the limit (4104).
DOCUMENTED_CLOSES = {4000 + ErrorCode.VERSION_MISMATCH, 4000 + ErrorCode.MESSAGE_TOO_LARGE}
KINDS = ("extension", "local", "pairing", "before-hello")
ANSWER_TIMEOUT_S = 10.0


def fuzz_limits() -> Limits:
    return Limits(max_image_bytes=256 * 1024, max_image_pixels=512 * 512, max_text_chars=2000,
                  max_json_bytes=32 * 1024, payload_deadline_s=0.5, job_timeout_s=5.0, shutdown_grace_s=1.0,
                  progress_interval_s=0.05, hello_deadline_s=30.0)


# -- strategies ----------------------------------------------------------------------------------------------

_LEVELS = ["off", "low", "medium", "high"]
_SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00", "\udc00\ud800", "x\ud83d"])
_TEXT = st.one_of(st.text(max_size=40), st.text(max_size=400), _SURROGATES,
                  st.sampled_from(["", "\x00", "\U0001F600", "é" * 50, "ally.token.x"]))
_IDS = st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True), st.text(max_size=70),
                 st.integers(), st.none(), st.just("x" * 65), st.just(""))
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=12)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value, or (sometimes) any JSON value instead."""
    return st.one_of(value, value, value, _JSON)


_VALID_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "hello": st.fixed_dictionaries({"protocol": _maybe(st.sampled_from([1, 1, 1, 0, 2, 10**30]))},
                                   optional={"client": _maybe(st.fixed_dictionaries({"name": _TEXT}))}),
    "protect.image": st.fixed_dictionaries(
        {"image": _maybe(st.fixed_dictionaries({"bytes": _maybe(st.integers(-2, 300_000))},
                                               optional={"type": _TEXT}))},
        optional={"level": _maybe(st.sampled_from(_LEVELS)), "format": _maybe(st.sampled_from(
            ["same", "jpeg", "png", "webp", "gif"]))}),
    "protect.text": st.fixed_dictionaries({"text": _maybe(_TEXT)},
                                          optional={"level": _maybe(st.sampled_from(_LEVELS))}),
    "cancel": st.fixed_dictionaries({"job": _maybe(_IDS)}),
    "status": st.one_of(st.just({}), st.dictionaries(_TEXT, _JSON, max_size=2)),
    "settings": st.fixed_dictionaries({}, optional={"level": _maybe(st.sampled_from(_LEVELS))}),
    "pair.begin": st.fixed_dictionaries({}, optional={"name": _maybe(_TEXT)}),
    "pair.confirm": st.fixed_dictionaries({"code": _maybe(st.from_regex(r"[0-9]{6}", fullmatch=True))}),
}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.one_of(st.sampled_from(sorted(METHODS)), _TEXT))
    message: dict[str, Any] = {"id": draw(_IDS), "method": method}
    if draw(st.booleans()) or method in _VALID_PARAMS:
        message["params"] = draw(_VALID_PARAMS.get(method, _JSON) if draw(st.integers(0, 4)) else _JSON)
    if draw(st.integers(0, 9)) == 0:
        message[draw(_TEXT)] = draw(_JSON)
    if draw(st.integers(0, 9)) == 0:
        del message[draw(st.sampled_from(sorted(message)))]
    return message


def _image(kind: str, size: int, seed: int) -> bytes:
    buf = io.BytesIO()
    colour = (seed % 256, (seed * 7) % 256, (seed * 13) % 256)
    mode = "RGBA" if kind == "PNG" and seed % 2 else "RGB"
    Image.new(mode, (size, size), colour).save(buf, kind)
    return buf.getvalue()


@st.composite
def image_payloads(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]))
    data = _image(fmt, draw(st.integers(1, 48)), draw(st.integers(0, 10_000)))
    how = draw(st.sampled_from(["as is", "truncated", "flipped", "spliced", "segments", "random"]))
    if how == "truncated":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "flipped":
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    elif how == "spliced":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
    elif how == "segments":
        data = png_of_chunks(draw(st.integers(0, 20_000)), after_data=draw(st.booleans()))
    elif how == "random":
        data = draw(st.binary(min_size=1, max_size=300))
    return data


@dataclass
class Frame:
    data: str | bytes

    def __repr__(self) -> str:
        text = self.data if isinstance(self.data, str) else self.data[:80]
        return f"Frame({text[:200]!r}{'…' if len(self.data) > 200 else ''})"


def _dumps(message: Any, ascii_only: bool) -> str:
    text = json.dumps(message, ensure_ascii=ascii_only)
    try:
        text.encode("utf-8")  # a text frame must be UTF-8: lone surrogates travel escaped
    except UnicodeEncodeError:
        text = json.dumps(message)
    return text


@st.composite
def examples(draw: st.DrawFn) -> tuple[str, list[Frame]]:
    """A session kind and 1-4 frames."""
    kind = draw(st.sampled_from(KINDS))
    frames: list[Frame] = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 9))
        if choice <= 3:
            frames.append(Frame(_dumps(draw(envelopes()), draw(st.booleans()))))
        elif choice == 4:  # protect.image and its frame (right, wrong or missing size)
            rid = draw(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True))
            payload = draw(image_payloads())
            announced = draw(st.sampled_from([len(payload), len(payload), len(payload) + 1, 0]))
            params: dict[str, Any] = {"image": {"bytes": announced}}
            if draw(st.booleans()):
                params["format"] = draw(st.sampled_from(["same", "jpeg", "png", "webp"]))
            frames.append(Frame(json.dumps({"id": rid, "method": "protect.image", "params": params})))
            if draw(st.integers(0, 5)):
                frames.append(Frame(pack_binary(rid, payload)))
            if draw(st.integers(0, 5)) == 0:
                frames.append(Frame(json.dumps({"id": rid + "c", "method": "cancel", "params": {"job": rid}})))
        elif choice == 5:  # the killers of issue 13, and their neighbours
            frames.append(Frame(draw(st.one_of(
                st.integers(1, 6000).map(lambda n: "1" * n),
                st.integers(1, 2000).map(lambda n: "[" * n + "]" * n),
                st.integers(1, 1200).map(lambda n: '{"id": ' + "[" * n + "]" * n + ', "method": "status"}'),
                st.integers(1, 1200).map(lambda n: '{"a":' * n + "1" + "}" * n),
                _SURROGATES.map(lambda s: _dumps({"id": "s", "method": "protect.text", "params": {"text": s}},
                                                 True)),
                st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", '{"id":"n","method":"hello","params":'
                                 '{"protocol":NaN}}', "{" * 100, '"' + "\\" * 99 + '"']),
            ))))
        elif choice == 6:  # raw text
            frames.append(Frame(draw(st.text(max_size=200).filter(lambda t: _utf8(t)))))
        elif choice == 7:  # binary frames with odd headers
            frames.append(Frame(draw(st.one_of(
                st.binary(max_size=100),
                st.builds(lambda n, rest: b"ALY1" + bytes((n,)) + rest, st.integers(0, 255), st.binary(max_size=80)),
                _IDS.filter(lambda i: isinstance(i, str) and i.isascii() and 0 < len(i) < 256).map(
                    lambda i: b"ALY1" + bytes((len(i),)) + i.encode() + b"payload"),
            ))))
        else:  # a valid request, so that sessions also do real work among the garbage
            frames.append(Frame(json.dumps(draw(st.sampled_from([
                {"id": "v-status", "method": "status"},
                {"id": "v-text", "method": "protect.text", "params": {"text": "a post", "level": "low"}},
                {"id": "v-hello", "method": "hello", "params": {"protocol": 1}},
                {"id": "v-begin", "method": "pair.begin", "params": {"name": "fuzz"}},
            ])))))
    return kind, frames


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the harness -------------------------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    """ERROR records of the daemon's and aiohttp's loggers (a traceback, a failed handler)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("ally", "aiohttp", "asyncio")):
            self.records.append(f"{record.name}: {record.getMessage()}")


@dataclass
class FuzzReport:
    examples: int = 0
    messages: int = 0
    answers: int = 0
    killed: list[str] = field(default_factory=list)  # what killed a session, one line each
    documented_closes: int = 0
    error_codes: dict[int, int] = field(default_factory=dict)
    logged_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"examples": self.examples, "messages": self.messages, "answers": self.answers,
                "session_killing_inputs": len(self.killed), "documented_closes": self.documented_closes,
                "logged_errors": len(self.logged_errors), "error_codes": dict(sorted(self.error_codes.items())),
                "wall_s": round(self.wall_s, 1), "first_kills": self.killed[:5]}


class Harness:
    """The daemon and the fuzzing clients, on an event loop in a thread of their own."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or fuzz_limits()
        self.report = FuzzReport()
        self._tmp = tempfile.TemporaryDirectory()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-daemon", daemon=True)
        self._thread.start()
        self._errors = _ErrorLog()
        logging.getLogger().addHandler(self._errors)
        self.daemon: Daemon = self.call(start_daemon(Path(self._tmp.name), limits=self.limits, text=True))
        self.daemon.image.behaviours = False
        self._http: aiohttp.ClientSession = self.call(self._session())
        self._ws: dict[str, aiohttp.ClientWebSocketResponse] = {}
        self._probe = 0

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def close(self) -> None:
        async def stop() -> None:
            for ws in self._ws.values():
                await ws.close()
            await self._http.close()
            await self.daemon.server.stop()

        try:
            self.call(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            logging.getLogger().removeHandler(self._errors)
            self._tmp.cleanup()

    # -- one example --------------------------------------------------------------------------------------

    def check(self, kind: str, frames: list[Frame]) -> str | None:
        """Send ``frames`` on a session of ``kind``, then a probe; None, or why the session was killed."""
        before = len(self._errors.records)
        verdict = self.call(self._check(kind, frames), timeout=ANSWER_TIMEOUT_S * 3)
        logged = self._errors.records[before:]
        self.report.logged_errors += logged
        # A job that failed (403, logged with its exception's type) is an answer, not a dead session; any
        # other ERROR is a traceback or a handler that raised.
        unexpected = [line for line in logged if not (line.startswith("ally.server.jobs: job ") and " failed: " in line)]
        if unexpected and verdict is None:
            verdict = f"the daemon logged an error: {unexpected[0]}"
        self.report.examples += 1
        self.report.messages += len(frames)
        if verdict is not None:
            self.report.killed.append(f"{kind} {frames!r}: {verdict}")
        return verdict

    async def _connect(self, kind: str) -> aiohttp.ClientWebSocketResponse:
        d = self.daemon
        if kind == "pairing":
            protocols, headers = (PAIRING_SUBPROTOCOL,), {"Origin": ORIGIN}
        elif kind == "local":
            protocols, headers = ("ally", TOKEN_PREFIX + d.local_token), {}
        else:
            protocols, headers = ("ally", TOKEN_PREFIX + d.token), {"Origin": ORIGIN}
        ws = await self._http.ws_connect(f"http://127.0.0.1:{d.port}/ws", protocols=protocols, headers=headers,
                                         max_msg_size=0, autoping=True)
        if kind != "before-hello":
            await ws.send_str(json.dumps({"id": "fuzz-hello", "method": "hello", "params": {"protocol": 1}}))
            reply = await asyncio.wait_for(ws.receive(), ANSWER_TIMEOUT_S)
            assert reply.type is aiohttp.WSMsgType.TEXT and "result" in json.loads(reply.data), reply
        return ws

    async def _check(self, kind: str, frames: list[Frame]) -> str | None:
        ws = self._ws.get(kind)
        if ws is None or ws.closed or kind == "before-hello":
            if ws is not None and not ws.closed:
                await ws.close()
            ws = self._ws[kind] = await self._connect(kind)
        for frame in frames:
            try:
                if isinstance(frame.data, str):
                    await ws.send_str(frame.data)
                else:
                    await ws.send_bytes(frame.data)
            except ConnectionError:
                break
        self._probe += 1
        probe = f"probe-{self._probe}"
        try:
            await ws.send_str(json.dumps({"id": probe, "method": "status"}))
        except ConnectionError:
            pass
        return await self._until_probe(ws, probe)

    async def _until_probe(self, ws: aiohttp.ClientWebSocketResponse, probe: str) -> str | None:
        report = self.report
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                while True:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        message = json.loads(msg.data)
                        try:
                            validate_server_message(message)
                        except ValueError as e:
                            return f"an answer outside the schema: {e}"
                        report.answers += 1
                        if "error" in message:
                            code = int(message["error"]["code"])
                            report.error_codes[code] = report.error_codes.get(code, 0) + 1
                            if code == ErrorCode.INTERNAL:
                                return f"900 internal: {message['error']['message']}"
                        if message.get("id") == probe:
                            return None
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        report.answers += 1
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                      aiohttp.WSMsgType.ERROR):
                        code = ws.close_code
                        if code in DOCUMENTED_CLOSES:
                            report.documented_closes += 1
                            return None
                        return f"the session closed ({code}, {msg.extra!r})"
        except TimeoutError:
            return f"no answer to the probe within {ANSWER_TIMEOUT_S:g} s"


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def run_fuzz(examples_: int, harness: Harness | None = None, *, strict: bool = False) -> FuzzReport:
    """Run ``examples_`` Hypothesis examples against a fresh daemon (or ``harness``). ``strict``: the first
    kill fails (and Hypothesis shrinks it to a minimal input); otherwise every kill is counted in the report."""
    own = harness is None
    harness = harness or Harness()
    started = time.perf_counter()

    @fuzz_settings(examples_)
    @given(examples())
    def property_(example: tuple[str, list[Frame]]) -> None:
        verdict = harness.check(*example)
        if strict:
            assert verdict is None, verdict

    try:
        property_()
    finally:
        harness.report.wall_s = time.perf_counter() - started
        if own:
            harness.close()
    return harness.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4000, help="Hypothesis examples (1-4 messages each)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = run_fuzz(args.examples)
    print(json.dumps(report.summary(), indent=1))
    return 0 if not report.killed else 1


if __name__ == "__main__":
    sys.exit(main())
