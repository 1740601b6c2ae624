"""Load benchmark of the daemon: many concurrent clients, many jobs, a tiny engine that inverts pixels.

Measures the daemon itself (handshake, validation, queueing, worker threads, binary frames, PNG decode and
encode) rather than the models. Every job's image is unique and every answer is checked against what its
own client sent, so a lost, duplicated or misdelivered job is counted, not just a slow one.

    .venv/bin/python tests/bench/daemon_load.py --clients 50 --jobs 1000

``tests/integration/test_daemon_load.py`` runs the same function and asserts correctness only (no timings).
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ally.imaging.io import LoadedImage
from ally.levels import Level
from ally.server.app import create_app, start_server
from ally.server.client import DaemonClient, DaemonError
from ally.server.engines import Engines
from ally.server.errors import ErrorCode
from ally.server.limits import Limits
from ally.server.pairing import PairingRegistry
from ally.server.store import FileStore

ORIGIN = "chrome-extension://" + "abcdefghijklmnopabcdefghijklmnop"


@dataclass
class _Inverted:
    rgb: np.ndarray
    faces: list[Any] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    cloaked: bool = False


class InvertEngine:
    """The tiniest engine: one progress report, inverted pixels."""

    device = "cpu"

    def warm_up(self) -> None:
        return None

    def protect(self, image: LoadedImage, level: Level, progress: Callable[[str, float], None] | None = None, *,
                protections: frozenset[str] = frozenset(), site: object = None, written: object = None,
                only_me: bool | None = None) -> _Inverted:
        if progress:
            progress("inverting", 1.0)
        return _Inverted(255 - image.rgb)


def job_image(client: int, job: int, size: int) -> tuple[bytes, np.ndarray]:
    """A PNG unique to (client, job), and the pixels the daemon must send back."""
    rgb = np.random.default_rng([client, job]).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    rgb[0, 0, :2] = (client % 256, job % 256)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), 255 - rgb


@dataclass
class LoadReport:
    clients: int
    jobs: int
    completed: int = 0
    busy_retries: int = 0
    errors: list[str] = field(default_factory=list)
    wrong_pixels: int = 0  # answers whose pixels are not the inversion of what this client sent for this id
    unmatched: int = 0  # answers for no pending request: duplicated or misrouted
    server_completed: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def lost(self) -> int:
        return self.jobs - self.completed - len(self.errors)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[98]

    @property
    def throughput(self) -> float:
        return self.completed / self.wall_s if self.wall_s else 0.0

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("latencies_ms", "errors")}
        d.update(errors=len(self.errors), lost=self.lost, p50_ms=round(self.p50_ms, 2), p99_ms=round(self.p99_ms, 2),
                 throughput_jobs_per_s=round(self.throughput, 1))
        return d


async def run_load(clients: int = 50, jobs: int = 1000, *, in_flight: int = 4, size: int = 32,
                   workers: int = 1, limits: Limits | None = None) -> LoadReport:
    """Start a daemon, run ``jobs`` jobs spread over ``clients`` concurrent connections, check every answer."""
    report = LoadReport(clients, jobs)
    with tempfile.TemporaryDirectory() as tmp:
        store = FileStore(Path(tmp) / "secrets.json")
        token = PairingRegistry(store).add(ORIGIN, "load benchmark")
        app = create_app(Engines(InvertEngine(), model_ids=("invert",)), store, limits=limits, lane_workers=workers)
        server = await start_server(app, 0)
        try:
            per_client = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
            started = time.perf_counter()
            await asyncio.gather(*(_client(server.port, token, ci, n, in_flight, size, report)
                                   for ci, n in enumerate(per_client)))
            report.wall_s = time.perf_counter() - started
            async with await DaemonClient.connect(server.port, token=token, origin=ORIGIN) as c:
                report.server_completed = (await c.request("status")).result["jobs"]["completed"]
        finally:
            await server.stop()
    return report


async def _client(port: int, token: str, ci: int, n_jobs: int, in_flight: int, size: int,
                  report: LoadReport) -> None:
    client = await DaemonClient.connect(port, token=token, origin=ORIGIN)
    gate = asyncio.Semaphore(in_flight)

    async def one(j: int) -> None:
        data, expected = job_image(ci, j, size)
        async with gate:
            t0 = time.perf_counter()
            attempt = 0
            while True:
                attempt += 1
                try:
                    reply = await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data,
                                                 rid=f"c{ci}-j{j}-a{attempt}")
                    break
                except DaemonError as e:
                    if e.code not in (ErrorCode.BUSY, ErrorCode.TOO_MANY_JOBS):
                        report.errors.append(f"client {ci} job {j}: {e}")
                        return
                    report.busy_retries += 1
                    # The hint plus jitter (as PROTOCOL.md asks), so refused clients do not return in lockstep.
                    await asyncio.sleep(e.data.get("retry_after_ms", 50) / 1000 * random.uniform(0.5, 1.5))
            report.latencies_ms.append((time.perf_counter() - t0) * 1000)
        got = np.asarray(Image.open(io.BytesIO(reply.binary or b"")).convert("RGB"))
        if got.shape != expected.shape or not np.array_equal(got, expected):
            report.wrong_pixels += 1
        report.completed += 1

    try:
        await asyncio.gather(*(one(j) for j in range(n_jobs)))
    finally:
        report.unmatched += len(client.unmatched)
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4, help="jobs each client keeps in flight")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=1, help="worker threads of the lane (the daemon uses 1)")
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(args.clients, args.jobs, in_flight=args.in_flight, size=args.size,
                                  workers=args.workers))
    print(json.dumps(report.summary(), indent=1))
    ok = report.lost == 0 and not report.errors and not report.wrong_pixels and not report.unmatched
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
