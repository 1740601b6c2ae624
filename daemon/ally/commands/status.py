"""``ally status``: is the daemon running, on which device, with which models, how busy, who is paired."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..config import load_config
from ..server.client import DaemonClient, DaemonError, HandshakeRefused, daemon_health
from ..server.pairing import PairingRegistry
from ..server.store import SecretStore, StoreError, default_store
from .serve import runtime_path

EXIT_OK, EXIT_FAILED = 0, 1


def daemon_port(explicit: int | None) -> int:
    """``--port``, else the running daemon's (its runtime file), else the configured port."""
    if explicit:
        return explicit
    try:
        return int(json.loads(runtime_path().read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return load_config().port


async def query_status(port: int, local_token: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the daemon's status, None) or (None, why it could not be had)."""
    if await daemon_health(port) is None:
        return None, f"not running (nothing answers on 127.0.0.1:{port}); start it with `ally serve`"
    if not local_token:
        return None, "running, but there is no local token in the secret store yet"
    try:
        async with await DaemonClient.connect(port, token=local_token) as client:
            return (await client.request("status")).result, None
    except HandshakeRefused as e:
        return None, f"running, but it refused this user's local token ({e}); is it another user's daemon?"
    except (DaemonError, ConnectionError) as e:
        return None, f"running, but the status request failed: {e}"


def describe_pairings(store: SecretStore) -> list[str]:
    pairings = PairingRegistry(store).pairings()
    lines = [f"secrets: {store.describe()}"]
    if not pairings:
        lines.append("pairing: no extension paired (pair from the extension, or `ally pair --origin ...`)")
    for p in pairings.values():
        lines.append(f"pairing: {p.origin} ({p.name}, since {p.created})")
    return lines


def queue_lines(queues: list[dict[str, Any]]) -> list[str]:
    """One line per lane, named by its kind and device: ``queue image on cpu: 0 waiting, 0 running (capacity 32)``."""
    return [f"queue {q['kind']} on {q['device']}: {q['queued']} waiting, {q['running']} running "
            f"(capacity {q['capacity']})" for q in queues]


def run_status(args: argparse.Namespace) -> int:
    port = daemon_port(args.port)
    try:
        store = default_store()
        token = PairingRegistry(store).local_token()
        pairing_lines = describe_pairings(store)
    except StoreError as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    status, problem = asyncio.run(query_status(port, token))
    if status is None:
        print(f"daemon: {problem}")
        print("\n".join(pairing_lines))
        return EXIT_FAILED
    d, models, jobs = status["daemon"], status["models"], status["jobs"]
    print(f"daemon: running (pid {d['pid']}, ally {d['version']}, ws://127.0.0.1:{d['port']}/ws, "
          f"up {d['uptime_s']:.0f} s)")
    print(f"device: {status['device']}")
    print(f"models: {models['state']} ({', '.join(models['ids']) or 'none'})"
          + (f": {models['error']}" if models.get("error") else ""))
    print("\n".join(queue_lines(status["queues"])))
    print(f"jobs: {jobs['completed']} completed, {jobs['failed']} failed, {jobs['cancelled']} cancelled, "
          f"{jobs['busy']} refused busy")
    print(f"connections: {status['connections']}")
    print("\n".join(pairing_lines))
    return EXIT_OK
