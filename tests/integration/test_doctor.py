"""``ally doctor`` on broken set-ups: each failure named, with a fix, and a non-zero exit. (A healthy install is
tests/integration/test_installer.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, "ALLY_CONFIG_DIR": str(tmp_path / "config"), "ALLY_SECRET_STORE": "file",
            "ALLY_HOME": str(tmp_path / "prefix"), **env}
    return subprocess.run([sys.executable, "-m", "ally.cli", "doctor", "--quick", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def _line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line[5:].startswith(name))


def test_port_held_by_another_program_is_a_port_conflict(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = _doctor(tmp_path, "--port", str(port))
    assert result.returncode == 1
    line = _line(result.stdout, "daemon")
    assert line.startswith("FAIL") and f"port {port}" in line and "port conflict" in line, result.stdout
    assert "fix: stop that program, or give Ally another port" in result.stdout


def test_nothing_running_no_token_no_autostart(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _doctor(tmp_path, "--port", str(port))
    assert result.returncode == 1
    assert _line(result.stdout, "daemon").startswith("FAIL") and "not running" in result.stdout
    assert _line(result.stdout, "secrets").startswith("FAIL") and "no local token" in result.stdout
    assert _line(result.stdout, "autostart").startswith("warn")
    assert "broken: secrets, daemon" in result.stdout


def test_a_missing_model_fails_with_the_pull_command(tmp_path: Path) -> None:
    result = _doctor(tmp_path, ALLY_CACHE_DIR=str(tmp_path / "empty-cache"))
    assert result.returncode == 1
    assert _line(result.stdout, "models").startswith("FAIL") and "fix: ally models pull mtcnn" in result.stdout


@pytest.mark.parametrize("mode,status", [("background", "FAIL"), ("none", "warn"), ("startup", "warn")])
def test_autostart_state_from_the_installers_record(tmp_path: Path, mode: str, status: str) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / "install.json").write_text(f'{{"autostart": "{mode}"}}')
    result = _doctor(tmp_path)
    assert _line(result.stdout, "autostart").startswith(status), result.stdout  # background: supervisor not running
