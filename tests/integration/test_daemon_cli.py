"""``ally status``, ``ally pair`` and ``ally serve`` (the last one end to end, with the real models)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ally.cli import main
from ally.server.client import DaemonClient, DaemonError, daemon_health
from ally.server.errors import ErrorCode
from ally.server.keys import JOBS
from ally.server.pairing import PairingRegistry
from ally.server.store import STORE_ENV, FileStore

from daemon_fakes import ORIGIN, OTHER_ORIGIN, Daemon


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI reads the same config dir and 0600 secrets file as the test daemon (tmp_path)."""
    monkeypatch.setenv("ALLY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv(STORE_ENV, "file")
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_when_the_daemon_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["status", "--port", str(port)]) == 1
    out = capsys.readouterr().out
    assert f"not running (nothing answers on 127.0.0.1:{port})" in out
    assert "secrets: file" in out and "mode 0600" in out and f"{STORE_ENV}=file" in out


@pytest.mark.asyncio
async def test_status_of_a_running_daemon(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["status", "--port", str(daemon.port)]) == 0
    out = capsys.readouterr().out
    for line in ("daemon: running", "device: cpu", "models: ready (fake-detector, fake-surrogate)",
                 f"pairing: {ORIGIN} (Ally test extension", "secrets: file"):
        assert line in out, out
    queues = [line for line in out.splitlines() if line.startswith("queue")]
    lanes = [(q["kind"], q["device"]) for q in daemon.app[JOBS].snapshot()]
    assert len(lanes) > 1 and len(set(lanes)) == len(lanes)  # several lanes, so their names matter
    assert queues == [f"queue {kind} on {device}: 0 waiting, 0 running (capacity 32)" for kind, device in lanes]


@pytest.mark.asyncio
async def test_pair_confirm_from_the_command_line(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    pairing = await daemon.connect(origin=OTHER_ORIGIN, token=None, pairing=True)
    code = (await pairing.request("pair.begin", {"name": "Firefox"})).result["code"]
    assert await asyncio.to_thread(main, ["pair", "--confirm", f"{code[:3]}-{code[3:]}",
                                          "--port", str(daemon.port)]) == 0
    assert f"paired {OTHER_ORIGIN} (Firefox)" in capsys.readouterr().out
    async with asyncio.timeout(3):
        while not pairing.notifications or pairing.notifications[-1][0] != "pair.completed":
            await asyncio.sleep(0.01)
    await pairing.close()
    assert await asyncio.to_thread(main, ["pair", "--confirm", "000000", "--port", str(daemon.port)]) == 1
    assert "pairing_failed" in capsys.readouterr().err


def test_pair_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pair", "--origin", "https://evil.example"]) == 2
    assert main(["pair", "--origin", ORIGIN, "--name", "Chrome"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    registry = PairingRegistry(FileStore(tmp_path / "secrets.json"))
    assert registry.verify(ORIGIN, token) is None
    assert main(["pair"]) == 0
    assert f"pairing: {ORIGIN} (Chrome" in capsys.readouterr().out
    assert main(["pair", "--revoke", ORIGIN]) == 0
    assert main(["pair", "--revoke", ORIGIN]) == 1
    assert registry.pairings() == {}


@pytest.mark.real_models
@pytest.mark.asyncio
async def test_serve_end_to_end_with_the_real_engine(
    tmp_path: Path, real_model: Callable[[str], dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`ally serve` as the user runs it: real models on the best device, a real photo, a real cancellation
    in the middle of the optimisation, `ally status`, then SIGTERM for a graceful stop."""
    for mid in ("mtcnn", "faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet", "blog-authorship", "minilm-l6-v2"):
        real_model(mid)
    photo = real_model("faceapi-samples")["sample1.jpg"].read_bytes()
    assert main(["pair", "--origin", ORIGIN]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ally.cli", "serve", "--port", str(port)], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while (health := await daemon_health(port)) is None or health["state"] == "loading":
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
            await asyncio.sleep(0.2)
        assert health["state"] == "ready"
        runtime = json.loads((tmp_path / "daemon.json").read_text())
        assert runtime == {"pid": proc.pid, "port": port}
        async with await DaemonClient.connect(port, token=token, origin=ORIGIN) as client:
            reply = await client.request("protect.image", {"image": {"bytes": len(photo)}, "level": "off"},
                                         binary=photo)
            assert reply.result["faces"] == 3 and reply.result["image"]["type"] == "image/jpeg"
            assert reply.binary and reply.binary[:2] == b"\xff\xd8"
            job = await client.send("protect.image", {"image": {"bytes": len(photo)}, "level": "low"},
                                    binary=photo, rid="real")
            async with asyncio.timeout(120):
                while not any(m == "progress" and p["job"] == "real" and p["stage"].startswith("cloaking")
                              for m, p in client.notifications):
                    await asyncio.sleep(0.05)
            started = time.monotonic()
            await client.request("cancel", {"job": "real"})
            with pytest.raises(DaemonError) as info:
                await job
            assert info.value.code == ErrorCode.CANCELLED
            # The engine stops at its next optimisation step: the lane is free again within seconds.
            reply = await client.request("protect.image", {"image": {"bytes": len(photo)}, "level": "off"},
                                         binary=photo)
            assert reply.result["faces"] == 3 and time.monotonic() - started < 60
            # The real text protector is served too: a stated age and home are generalised.
            post = "I'm a 16 year old girl from Columbus, Ohio and school starts tomorrow."
            reply = await client.request("protect.text", {"text": post, "level": "medium"})
            assert "16" not in reply.result["text"] and "Columbus" not in reply.result["text"], reply.result
            assert reply.result["changes"] and reply.result["device"] == "cpu"
        assert await asyncio.to_thread(main, ["status"]) == 0
        out = capsys.readouterr().out
        assert "models: ready (mtcnn, faceres, faceres-deep, mobileface, mobilefacenet)" in out and "jobs: 3 completed" in out
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "ally daemon stopped" in output and not (tmp_path / "daemon.json").exists()
