"""Daemon test fixtures (helpers and fakes: daemon_fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ally.server.limits import Limits
from daemon_fakes import Daemon, start_daemon


@pytest.fixture
def small_limits() -> Limits:
    return Limits(max_image_bytes=64 * 1024, max_image_pixels=512 * 512, max_text_chars=1000,
                  max_json_bytes=8 * 1024, hello_deadline_s=2.0, payload_deadline_s=1.0, job_timeout_s=5.0,
                  shutdown_grace_s=2.0, progress_interval_s=0.0)


@pytest_asyncio.fixture
async def daemon(tmp_path: Path, small_limits: Limits) -> AsyncIterator[Daemon]:
    d = await start_daemon(tmp_path, limits=small_limits, text=True)
    yield d
    await d.server.stop()
