"""What the installers write for the service managers this machine lacks: the systemd user unit (checked by
``systemd-analyze verify`` when present, and parsed), the launchd agent (parsed with plistlib), and install.ps1
(parsed by PowerShell when ``pwsh`` is installed; PowerShell is in none of the registries this machine reaches —
not in Debian's archive, and PyPI/npm only have wrappers that download it from GitHub — so without it the script
is checked for what it must do)."""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "installer" / "install.sh"
PS1 = REPO / "installer" / "install.ps1"


def _print(what: str, home: Path, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ALLY_")}
    full.update(HOME=str(home), ALLY_HOME=str(home / "prefix"), **env)
    return subprocess.run(["bash", str(INSTALL), f"--print-{what}"], env=full, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def _fake_ally(home: Path) -> Path:
    ally = home / "prefix" / "venv" / "bin" / "ally"
    ally.parent.mkdir(parents=True)
    ally.write_text("#!/bin/sh\nexit 0\n")
    ally.chmod(0o755)
    return ally


def test_systemd_unit_restarts_on_failure_and_starts_at_login(tmp_path: Path) -> None:
    ally = _fake_ally(tmp_path)
    text = _print("unit", tmp_path, ALLY_CACHE_DIR="/srv/models", ALLY_CONFIG_DIR="/srv/ally config")
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(text)
    service = unit["Service"]
    assert service["ExecStart"] == f'"{ally}" serve'
    assert service["Restart"] == "on-failure" and int(service["RestartSec"]) > 0
    assert unit["Install"]["WantedBy"] == "default.target"  # the user's login session
    envs = re.findall(r"^Environment=(.*)$", text, re.M)
    assert envs == ['"ALLY_CONFIG_DIR=/srv/ally config"', '"ALLY_CACHE_DIR=/srv/models"']  # quoted: spaces
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: parsed only")
    check = _verify(tmp_path, text)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def _verify(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze --user verify`` with a private runtime dir (no user manager needs to run)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    path = tmp_path / "ally.service"
    path.write_text(text)
    return subprocess.run(["systemd-analyze", "--user", "verify", str(path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose ExecStart is not executable is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    check = _verify(tmp_path, "[Service]\nExecStart=/nonexistent/ally serve\nRestart=sometimes\n")
    out = check.stdout + check.stderr
    assert check.returncode != 0 and "is not executable" in out and "restart specifier" in out, out


def test_launchd_agent_plist(tmp_path: Path) -> None:
    ally = _fake_ally(tmp_path)
    plist = plistlib.loads(_print("plist", tmp_path, ALLY_CACHE_DIR="/Users/me/models").encode())
    assert plist["Label"] == "org.ally.daemon"
    assert plist["ProgramArguments"] == [str(ally), "serve"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}  # restart on failure
    assert plist["EnvironmentVariables"] == {"ALLY_CACHE_DIR": "/Users/me/models"}
    assert plist["StandardErrorPath"].endswith("daemon.log")


def test_install_ps1() -> None:
    text = PS1.read_text()
    pwsh = shutil.which("pwsh")
    if pwsh:
        script = ("$e = $null; [System.Management.Automation.Language.Parser]::ParseFile("
                  f"'{PS1}', [ref]$null, [ref]$e) | Out-Null; if ($e) {{ $e; exit 1 }}")
        subprocess.run([pwsh, "-NoProfile", "-Command", script], check=True, timeout=120)
    # What it must do, whatever parses it (and the only check where pwsh cannot be installed, as here).
    for needle in ("torch_select.py", "--index-url", "cannot be reached: falling back", "Register-ScheduledTask",
                   "-RestartCount", "AtLogOn", "Start-ScheduledTask", "local_token(create=True)", "models\", \"pull",
                   "install.json", "Unregister-ScheduledTask", "[switch]$Uninstall", "ally pair --confirm CODE"):
        assert needle in text, needle
    assert text.count("{") == text.count("}") and text.count("(") == text.count(")")
