"""Load: 50 concurrent clients, 1 000 jobs through a real daemon (tiny engine). Correctness only: nothing lost,
duplicated or delivered to the wrong client. Timings are the benchmark's job (tests/bench/daemon_load.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[1] / "bench" / "daemon_load.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("daemon_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.mark.asyncio
async def test_fifty_clients_a_thousand_jobs() -> None:
    report = await _bench().run_load(clients=50, jobs=1000, in_flight=4)
    print(report.summary())
    assert report.errors == []
    assert report.completed == 1000 and report.lost == 0 and report.server_completed == 1000
    assert report.wrong_pixels == 0, "an answer did not match what its own client sent"
    assert report.unmatched == 0, "an answer arrived for no pending request (duplicated or misrouted)"
    assert report.busy_retries > 0, "the load should have exercised back-pressure (busy + retry)"
