"""Jobs through a real daemon: results, progress, cancellation, disconnects, failures, OOM fallback, timeouts,
back-pressure, graceful shutdown and restart."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from ally.levels import Level
from ally.server.client import DaemonClient, DaemonError
from ally.server.errors import ErrorCode
from ally.server.keys import JOBS, DaemonSettings
from ally.server.limits import Limits
from ally.server.protocol import pack_binary, validate_result

from daemon_fakes import (BEHAVIOUR_BLOCK, BEHAVIOUR_FAIL, BEHAVIOUR_OOM, BEHAVIOUR_SLOW, ORIGIN, PNG, Daemon,
                          decode, png_bytes, start_daemon)

pytestmark = pytest.mark.asyncio


def image_params(data: bytes, **extra: object) -> dict[str, object]:
    return {"image": {"bytes": len(data), "type": "image/png"}, **extra}


def jobs_of(d: Daemon):  # type: ignore[no-untyped-def]
    return d.server.runner.app[JOBS]


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_protect_image_result_and_progress(daemon: Daemon) -> None:
    data = png_bytes(32, 24, marker=BEHAVIOUR_SLOW, seed=5)
    async with await daemon.connect() as client:
        reply = await client.request("protect.image", image_params(data, level="high"), binary=data)
        validate_result("protect.image", reply.result)
        assert reply.result["image"] == {"bytes": len(reply.binary or b""), "type": "image/png", "width": 32,
                                         "height": 24}
        assert reply.result["level"] == "high" and reply.result["device"] == "cpu"
        assert reply.binary is not None and (decode(reply.binary) == 255 - decode(data)).all()
        progress = [p for m, p in client.notifications if m == "progress"]
        assert progress and all(p["job"] == "r2" for p in progress)
        assert [p["fraction"] for p in progress] == sorted(p["fraction"] for p in progress)
        assert progress[-1]["fraction"] == 1.0
        # Another output format on request.
        reply = await client.request("protect.image", image_params(PNG, format="jpeg"), binary=PNG)
        assert reply.result["image"]["type"] == "image/jpeg" and reply.binary is not None
        assert reply.binary[:3] == b"\xff\xd8\xff"


async def test_protect_text(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        reply = await client.request("protect.text", {"text": "a quiet voice", "level": "low"})
        validate_result("protect.text", reply.result)
        assert reply.result["text"] == "A QUIET VOICE" and reply.result["changes"] == [{"kind": "case", "count": 11}]


async def test_status_and_settings(tmp_path: Path, small_limits: Limits) -> None:
    changes: list[Level] = []
    settings = DaemonSettings(level=Level.LOW, on_change=lambda s: changes.append(s.level))
    d = await start_daemon(tmp_path, limits=small_limits, settings=settings)
    try:
        async with await d.connect() as client:
            status = (await client.request("status")).result
            validate_result("status", status)
            assert status["models"] == {"state": "ready", "ids": ["fake-detector", "fake-surrogate"]}
            assert status["queues"] == [{"device": "cpu", "kind": "image", "queued": 0, "running": 0,
                                         "capacity": small_limits.max_queued_jobs}]
            assert status["pairing"]["paired"] == 1 and status["pairing"]["secure"] is False
            assert status["connections"] == 1 and status["daemon"]["port"] == d.port
            result = (await client.request("settings")).result
            validate_result("settings", result)
            assert result == {"level": "low", "device": "cpu", "only_me": False}
            assert (await client.request("settings", {"level": "high"})).result["level"] == "high"
            assert changes == [Level.HIGH]
            reply = await client.request("protect.image", image_params(PNG), binary=PNG)
            assert reply.result["level"] == "high"  # the new default applies
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{d.port}/health") as r:
                assert (await r.json())["state"] == "ready"
    finally:
        await d.server.stop()


async def test_cancel_running_job(daemon: Daemon) -> None:
    data = png_bytes(marker=BEHAVIOUR_BLOCK)
    async with await daemon.connect() as client:
        job = await client.send("protect.image", image_params(data), binary=data, rid="blocked")
        await asyncio.to_thread(daemon.image.started.wait, 5)
        result = (await client.request("cancel", {"job": "blocked"})).result
        validate_result("cancel", result)
        assert result == {"job": "blocked", "cancelled": True}
        with pytest.raises(DaemonError) as info:
            await job
        assert info.value.code == ErrorCode.CANCELLED
        assert await asyncio.to_thread(daemon.image.cancelled.wait, 5)  # the engine's thread stopped
        with pytest.raises(DaemonError) as info:
            await client.request("cancel", {"job": "blocked"})
        assert info.value.code == ErrorCode.UNKNOWN_JOB
    await daemon.healthy()


async def test_cancel_queued_job_and_waiting_upload(daemon: Daemon) -> None:
    blocker = png_bytes(marker=BEHAVIOUR_BLOCK)
    async with await daemon.connect() as client:
        running = await client.send("protect.image", image_params(blocker), binary=blocker, rid="running")
        await asyncio.to_thread(daemon.image.started.wait, 5)
        queued = await client.send("protect.image", image_params(PNG), binary=PNG, rid="queued")
        waiting = await client.send("protect.image", image_params(PNG), rid="waiting")  # no frame yet
        await wait_for(lambda: sum(len(lane.queued) for lane in jobs_of(daemon).lanes.values()) == 1)
        for rid in ("queued", "waiting"):
            await client.request("cancel", {"job": rid})
        for future in (queued, waiting):
            with pytest.raises(DaemonError) as info:
                await future
            assert info.value.code == ErrorCode.CANCELLED
        assert jobs_of(daemon).pending_bytes == 0
        await client.ws.send_bytes(pack_binary("waiting", PNG))  # a cancelled request's late frame: dropped
        await client.request("cancel", {"job": "running"})
        with pytest.raises(DaemonError):
            await running
        await client.request("status")
        assert client.unmatched == []
    await daemon.healthy()


async def test_disconnect_mid_job_cancels_it_and_frees_memory(daemon: Daemon) -> None:
    data = png_bytes(64, 64, marker=BEHAVIOUR_BLOCK)
    client = await daemon.connect()
    await client.send("protect.image", image_params(data), binary=data)
    await asyncio.to_thread(daemon.image.started.wait, 5)
    await client.ws.close()  # the user closed the tab
    await client.close()
    assert await asyncio.to_thread(daemon.image.cancelled.wait, 5)
    jobs = jobs_of(daemon)
    await wait_for(lambda: not any(lane.running for lane in jobs.lanes.values()))
    assert jobs.stats.cancelled == 1 and jobs.pending_bytes == 0
    gc.collect()
    assert daemon.image.seen and all(ref() is None for ref in daemon.image.seen), "the decoded image is still held"
    await daemon.healthy()


async def test_a_failing_job_does_not_stop_the_others(daemon: Daemon) -> None:
    bad = png_bytes(marker=BEHAVIOUR_FAIL)
    async with await daemon.connect() as a, await daemon.connect() as b:
        goods = [await b.send("protect.image", image_params(png_bytes(seed=i)), binary=png_bytes(seed=i))
                 for i in range(3)]
        with pytest.raises(DaemonError) as info:
            await a.request("protect.image", image_params(bad), binary=bad)
        assert info.value.code == ErrorCode.JOB_FAILED
        assert "RuntimeError" in info.value.message and "purpose" not in info.value.message
        for i, future in enumerate(goods):
            reply = await future
            assert reply.binary is not None and (decode(reply.binary) == 255 - decode(png_bytes(seed=i))).all()
    assert jobs_of(daemon).stats.failed == 1
    await daemon.healthy()


async def test_out_of_memory_falls_back_to_the_cpu(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=small_limits, device="cuda")  # a fake "cuda" engine
    try:
        data = png_bytes(marker=BEHAVIOUR_OOM)
        async with await d.connect() as client:
            assert client.hello["capabilities"]["protect.image"]["device"] == "cuda"
            reply = await client.request("protect.image", image_params(data), binary=data)
            assert reply.result["device"] == "cpu"
            assert reply.binary is not None and (decode(reply.binary) == 255 - decode(data)).all()
            reply = await client.request("protect.image", image_params(PNG), binary=PNG)
            assert reply.result["device"] == "cuda"  # the next job is back on the device
            status = (await client.request("status")).result
            assert status["device"] == "cuda" and status["queues"][0]["device"] == "cuda"
    finally:
        await d.server.stop()


async def test_job_timeout(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=replace(small_limits, job_timeout_s=0.3))
    try:
        data = png_bytes(marker=BEHAVIOUR_BLOCK)
        async with await d.connect() as client:
            with pytest.raises(DaemonError) as info:
                await client.request("protect.image", image_params(data), binary=data)
            assert info.value.code == ErrorCode.TIMEOUT
        assert await asyncio.to_thread(d.image.cancelled.wait, 5)
        await d.healthy()
    finally:
        await d.server.stop()


async def test_busy_when_the_queue_is_full(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=replace(small_limits, max_queued_jobs=2))
    try:
        blocker = png_bytes(marker=BEHAVIOUR_BLOCK)
        clients = [await d.connect() for _ in range(4)]
        running = await clients[0].send("protect.image", image_params(blocker), binary=blocker, rid="b")
        await asyncio.to_thread(d.image.started.wait, 5)
        queued = [await c.send("protect.image", image_params(PNG), binary=PNG) for c in clients[1:3]]
        await wait_for(lambda: len(jobs_of(d).lanes["cpu"].queued) == 2)
        with pytest.raises(DaemonError) as info:
            await clients[3].request("protect.image", image_params(PNG), binary=PNG)
        assert info.value.code == ErrorCode.BUSY and info.value.data["retry_after_ms"] >= 50
        await clients[0].request("cancel", {"job": "b"})
        with pytest.raises(DaemonError):
            await running
        for future in queued:  # nothing waiting was lost
            assert (await future).binary is not None
        reply = await clients[3].request("protect.image", image_params(PNG), binary=PNG)  # the retry succeeds
        assert reply.binary is not None
        for c in clients:
            await c.close()
        assert jobs_of(d).stats.busy == 1
    finally:
        await d.server.stop()


async def test_graceful_shutdown_finishes_running_jobs_and_tells_clients(daemon: Daemon) -> None:
    slow = png_bytes(marker=BEHAVIOUR_SLOW)
    client = await daemon.connect()
    running = await client.send("protect.image", image_params(slow), binary=slow)
    await wait_for(lambda: any(lane.running for lane in jobs_of(daemon).lanes.values()))
    queued = await client.send("protect.image", image_params(PNG), binary=PNG)
    await wait_for(lambda: any(lane.queued for lane in jobs_of(daemon).lanes.values()))
    await daemon.server.stop()
    assert (await running).binary is not None  # finished within the grace period, and delivered
    with pytest.raises(DaemonError) as info:
        await queued
    assert info.value.code == ErrorCode.SHUTTING_DOWN
    assert ("shutdown", {"reason": "the daemon is stopping", "grace_s": daemon.limits.shutdown_grace_s}) \
        in client.notifications
    await wait_for(lambda: client.close_code is not None)
    assert client.close_code == 1001
    await client.close()


async def test_shutdown_cancels_jobs_that_outlast_the_grace_period(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=replace(small_limits, shutdown_grace_s=0.2))
    data = png_bytes(marker=BEHAVIOUR_BLOCK)
    client = await d.connect()
    job = await client.send("protect.image", image_params(data), binary=data)
    await asyncio.to_thread(d.image.started.wait, 5)
    await d.server.stop()
    with pytest.raises(DaemonError) as info:
        await job
    assert info.value.code == ErrorCode.SHUTTING_DOWN
    assert await asyncio.to_thread(d.image.cancelled.wait, 5)
    await client.close()


async def test_restart_while_clients_reconnect(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=small_limits)
    port, token = d.port, d.token
    clients = [await d.connect() for _ in range(5)]
    await d.server.stop()
    for c in clients:
        await wait_for(lambda c=c: c.close_code is not None)
        await c.close()

    async def reconnect(i: int) -> bytes:
        """What the extension does: retry with back-off until the daemon is back, then resend."""
        for _ in range(200):
            try:
                client = await DaemonClient.connect(port, token=token, origin=ORIGIN)
            except (aiohttp.ClientConnectionError, OSError):
                await asyncio.sleep(0.02)
                continue
            async with client:
                data = png_bytes(seed=100 + i)
                reply = await client.request("protect.image", image_params(data), binary=data)
                assert reply.binary is not None
                return reply.binary
        raise AssertionError("never reconnected")

    waiting = [asyncio.create_task(reconnect(i)) for i in range(5)]
    await asyncio.sleep(0.1)  # the clients are knocking while the daemon is down
    d2 = await start_daemon(tmp_path, limits=small_limits, port=port, token=token)  # same store, same port
    try:
        results = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        for i, data in enumerate(results):
            assert (decode(data) == 255 - decode(png_bytes(seed=100 + i))).all()
    finally:
        await d2.server.stop()
