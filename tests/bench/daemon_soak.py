"""Soak benchmark of the daemon: mixed jobs from several clients for a long time, with hostile clients among
them; reports the daemon's RSS over time, latency per job kind, and /health latency.

    .venv/bin/python tests/bench/daemon_soak.py --minutes 10                 # tiny engines (the daemon itself)
    nice -n 19 .venv/bin/python tests/bench/daemon_soak.py --minutes 30 --real  # the real models (opt-in)

Targets (issue 13): RSS flat (± 50 MB after warm-up), text p95 under 2 s while images are queued, /health
within 100 ms throughout hostile uploads. The daemon runs in this process (RSS from /proc/self/status; the
clients are small beside it). Tiny engines: an image job inverts the pixels after ``--image-s`` seconds of
sleep (a stand-in for the model's time, so that images queue), a text job upper-cases after 50 ms. Real
engines (``--real``, as ``ally serve`` builds them from the config and the model cache): the image clients send
face-api's six group photos (model ``faceapi-samples``), scaled to ``--photo-px`` on the long edge, so that the
cloak runs on real faces; the text clients send short posts to the real text protector. A text job counts as
"while images are queued" when the image lane had a job waiting as it was sent. Results: docs/daemon.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from daemon_fakes import ORIGIN, RawClient, gif_of_comments, jpeg_of_comments, png_bytes, png_of_chunks, \
    raw_connect, start_daemon  # noqa: E402

from ally.server.client import DaemonClient, DaemonError  # noqa: E402
from ally.server.errors import ErrorCode  # noqa: E402
from ally.server.keys import JOBS  # noqa: E402
from ally.server.protocol import TOKEN_PREFIX  # noqa: E402


def log(line: str) -> None:
    print(f"soak: {line}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class SoakReport:
    minutes: float
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    latency_s: dict[str, list[float]] = field(
        default_factory=lambda: {"image": [], "text": [], "text_while_images_queued": []})
    busy: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    health_ms: list[float] = field(default_factory=list)
    hostile_rounds: int = 0
    started: float = field(default_factory=time.monotonic)
    first_image_s: float | None = None  # when the first image job was answered (seconds from the start)

    def warm_up_s(self) -> float:
        """Warm-up ends a minute in (a quarter of a short run), or when the first image job is answered (the
        real engine's buffers are allocated then), whichever is later."""
        return max(min(60.0, self.minutes * 60 / 4), self.first_image_s or 0.0)

    def summary(self) -> dict[str, Any]:
        warm = [mb for t, mb in self.rss if t >= self.warm_up_s()]
        out: dict[str, Any] = {
            "minutes": self.minutes,
            "warm_up_s": round(self.warm_up_s(), 1),
            "rss_mb": {"first": round(self.rss[0][1], 1) if self.rss else None,
                       "after_warm_up_min": round(min(warm), 1) if warm else None,
                       "after_warm_up_max": round(max(warm), 1) if warm else None,
                       "last": round(self.rss[-1][1], 1) if self.rss else None,
                       "spread_after_warm_up": round(max(warm) - min(warm), 1) if warm else None},
            "rss_over_time": [(round(t), round(mb, 1)) for t, mb in self.rss[:: max(1, len(self.rss) // 30)]],
            "busy_refusals": self.busy, "errors": self.errors, "hostile_rounds": self.hostile_rounds,
            "health_ms": {"p50": round(pct(self.health_ms, 50), 1), "p99": round(pct(self.health_ms, 99), 1),
                          "max": round(max(self.health_ms), 1) if self.health_ms else None,
                          "samples": len(self.health_ms)},
        }
        for kind, values in self.latency_s.items():
            out[f"{kind}_latency_s"] = {"n": len(values), "p50": round(pct(values, 50), 3),
                                        "p95": round(pct(values, 95), 3),
                                        "max": round(max(values), 3) if values else None}
        return out


async def soak(minutes: float, *, image_clients: int = 3, text_clients: int = 2, image_s: float = 1.0,
               hostile: bool = True, real: bool = False, photo_px: int = 720) -> SoakReport:
    report = SoakReport(minutes)
    with tempfile.TemporaryDirectory() as tmp:
        d = await start_daemon(Path(tmp), text=True)
        if real:  # swap in the real engines (models from the cache), as `ally serve` builds them
            from ally.commands.serve import build_engines
            from ally.config import load_config

            loading = time.monotonic()
            real_engines = build_engines(load_config())
            await real_engines.start()
            log(f"real engines ready in {time.monotonic() - loading:.0f} s")
            if real_engines.text is None:
                raise SystemExit("the real text protector could not be loaded (see `ally doctor`)")
            d.engines.image, d.engines.text = real_engines.image, real_engines.text
            photos = await asyncio.to_thread(face_photos, photo_px)
        else:
            _slow_fake(d, image_s)
            photos = None
        stop = asyncio.Event()
        started = report.started = time.monotonic()
        tasks = [asyncio.create_task(_image_client(d, i, stop, report, photos)) for i in range(image_clients)]
        tasks += [asyncio.create_task(_text_client(d, i, stop, report)) for i in range(text_clients)]
        tasks.append(asyncio.create_task(_health(d.port, stop, report)))
        if hostile:
            tasks.append(asyncio.create_task(_hostile(d, stop, report)))
        try:
            while time.monotonic() - started < minutes * 60:
                report.rss.append((time.monotonic() - started, rss_mb()))
                if len(report.rss) % 12 == 0:
                    log(f"{report.rss[-1][0]:.0f} s: RSS {report.rss[-1][1]:.0f} MB, "
                        f"{len(report.latency_s['image'])} images, {len(report.latency_s['text'])} texts")
                await asyncio.sleep(5)
        finally:
            stop.set()
            # Clients with a job in flight do not wait for it (a real image job takes minutes on a busy CPU):
            # their connections close, which cancels the daemon's jobs.
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await d.server.stop()
    return report


def face_photos(long_edge: int) -> list[bytes]:
    """face-api's six demo group photos (20 faces), scaled to ``long_edge`` px, as JPEG q90."""
    from PIL import Image

    from ally_models.cache import default_cache

    out = []
    for _, path in sorted(default_cache().files("faceapi-samples").items()):
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((long_edge, long_edge))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def images_queued(d: Any) -> bool:
    """Whether an image lane has a job waiting (not only running)."""
    return any(q["kind"] == "image" and q["queued"] > 0 for q in d.app[JOBS].snapshot())


def _slow_fake(d: Any, image_s: float) -> None:
    engine = d.image
    original = engine.protect

    def protect(image: Any, level: Any, progress: Any = None, **kwargs: Any) -> Any:
        until = time.monotonic() + image_s
        while time.monotonic() < until:  # progress at every "step", as the real engine reports
            progress("face 1/1", 1 - (until - time.monotonic()) / image_s)
            time.sleep(0.02)
        return original(image, level, progress, **kwargs)

    engine.protect = protect
    engine.behaviours = False
    text = d.engines.text
    text_original = text.protect

    def protect_text(value: str, level: Any, progress: Any = None) -> Any:
        time.sleep(0.05)
        return text_original(value, level, progress)

    text.protect = protect_text


async def _retrying(client: DaemonClient, method: str, params: dict[str, Any], report: SoakReport,
                    binary: bytes | None = None) -> None:
    while True:
        try:
            await client.request(method, params, binary=binary)
            return
        except DaemonError as e:
            if e.code not in (ErrorCode.BUSY, ErrorCode.TOO_MANY_JOBS):
                report.errors[e.name] = report.errors.get(e.name, 0) + 1
                return
            report.busy += 1
            await asyncio.sleep(e.data.get("retry_after_ms", 1000) / 1000 * random.uniform(0.5, 1.5))


async def _image_client(d: Any, i: int, stop: asyncio.Event, report: SoakReport,
                        photos: list[bytes] | None) -> None:
    async with await d.connect() as client:
        n = 0
        while not stop.is_set():
            n += 1
            data = photos[(i + n) % len(photos)] if photos else png_bytes(64, 64, seed=i * 100_000 + n)

            async def one() -> None:
                t = time.perf_counter()
                await _retrying(client, "protect.image", {"image": {"bytes": len(data)}}, report, data)
                report.latency_s["image"].append(time.perf_counter() - t)
                if report.first_image_s is None:
                    report.first_image_s = time.monotonic() - report.started

            await asyncio.gather(one(), one())  # two in flight per client: the lane always has a queue


async def _text_client(d: Any, i: int, stop: asyncio.Event, report: SoakReport) -> None:
    rng = random.Random(i)
    async with await d.connect() as client:
        while not stop.is_set():
            words = " ".join(rng.choice(["we", "went", "to", "the", "lake", "lol", "my", "grandpa", "said"])
                             for _ in range(rng.randint(10, 80)))
            queued = images_queued(d)
            t = time.perf_counter()
            await _retrying(client, "protect.text", {"text": words}, report)
            elapsed = time.perf_counter() - t
            report.latency_s["text"].append(elapsed)
            if queued:
                report.latency_s["text_while_images_queued"].append(elapsed)
            await asyncio.sleep(rng.uniform(0.2, 1.0))


async def _health(port: int, stop: asyncio.Event, report: SoakReport) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t = time.perf_counter()
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                await r.read()
            report.health_ms.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)


async def _hostile(d: Any, stop: asyncio.Event, report: SoakReport) -> None:
    """Every 20 s: hostile uploads (segments), the killers, and a client that floods without reading."""
    # Built in a thread: the clients share the daemon's event loop, and /health measures that loop.
    images = await asyncio.to_thread(lambda: [png_of_chunks(2_700_000), jpeg_of_comments(2_000_000),
                                              gif_of_comments(4_000_000)])
    while not stop.is_set():
        report.hostile_rounds += 1
        async with await DaemonClient.connect(d.port, token=d.token, origin=ORIGIN,
                                              max_msg_size=0) as client:
            for data in images:
                try:
                    await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data)
                except DaemonError:
                    pass
            for text in ("1" * 4301, "[" * 976 + "]" * 976, '{"id":"s","method":"protect.text","params":'
                                                                 '{"text":"\\ud800"}}'):
                await client.ws.send_str(text)
        raw: RawClient = await raw_connect(d.port, f"ally, {TOKEN_PREFIX}{d.token}", rcvbuf=4096)
        bad = json.dumps({"id": "x", "method": "pair.begin", "params": {"name": "n" * 200_000}})
        flood_until = time.monotonic() + 10
        while time.monotonic() < flood_until and await raw.send(bad, timeout=0.5):
            pass
        raw.abort()
        try:
            await asyncio.wait_for(stop.wait(), 20)
        except TimeoutError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--image-clients", type=int, default=3)
    parser.add_argument("--text-clients", type=int, default=2)
    parser.add_argument("--image-s", type=float, default=1.0, help="tiny engine: seconds per image job")
    parser.add_argument("--no-hostile", action="store_true")
    parser.add_argument("--real", action="store_true", help="the real models from the cache")
    parser.add_argument("--photo-px", type=int, default=720, help="real: long edge of the face photos sent")
    args = parser.parse_args(argv)
    report = asyncio.run(soak(args.minutes, image_clients=args.image_clients, text_clients=args.text_clients,
                              image_s=args.image_s, hostile=not args.no_hostile, real=args.real,
                              photo_px=args.photo_px))
    print(json.dumps(report.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
