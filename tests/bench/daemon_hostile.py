"""/health latency during single hostile uploads (issue 13's files, full size): target under 100 ms throughout.

    .venv/bin/python tests/bench/daemon_hostile.py

Each file is uploaded alone on one connection while another polls /health every 10 ms; the daemon's answer
(506 image_too_complex) and the worst /health latency are reported. The clients share the daemon's event loop
(one process), so their own work (masking a 31 MiB frame) is counted against the daemon.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from daemon_fakes import gif_of_comments, jpeg_of_comments, png_of_chunks, start_daemon  # noqa: E402

from ally.server.client import DaemonError  # noqa: E402

FILES = {
    "png, 2.7 M empty chunks": lambda: png_of_chunks(2_700_000),
    "png, 2.7 M empty chunks after the data": lambda: png_of_chunks(2_700_000, after_data=True),
    "jpeg, 2 M COM markers": lambda: jpeg_of_comments(2_000_000),
    "gif, 4 M comment sub-blocks": lambda: gif_of_comments(4_000_000),
}


async def main() -> int:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = await start_daemon(Path(tmp))
        try:
            for name, build in FILES.items():
                data = await asyncio.to_thread(build)
                latencies: list[float] = []
                stop = asyncio.Event()

                async def poll() -> None:
                    async with aiohttp.ClientSession() as http:
                        while not stop.is_set():
                            t = time.perf_counter()
                            async with http.get(f"http://127.0.0.1:{d.port}/health") as r:
                                await r.read()
                            latencies.append((time.perf_counter() - t) * 1000)
                            await asyncio.sleep(0.01)

                poller = asyncio.create_task(poll())
                await asyncio.sleep(0.2)
                t = time.perf_counter()
                async with await d.connect(max_msg_size=0) as client:
                    try:
                        await client.request("protect.image", {"image": {"bytes": len(data)}}, binary=data)
                        answer = "accepted"
                    except DaemonError as e:
                        answer = f"{e.code} {e.name}"
                upload_s = time.perf_counter() - t
                await asyncio.sleep(0.2)
                stop.set()
                await poller
                out[name] = {"mib": round(len(data) / 2**20, 1), "answer": answer, "upload_and_answer_s":
                             round(upload_s, 2), "health_max_ms": round(max(latencies), 1),
                             "health_samples": len(latencies)}
        finally:
            await d.server.stop()
    print(json.dumps(out, indent=1))
    return 0 if all(v["health_max_ms"] < 100 for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
