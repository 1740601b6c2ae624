"""installer/install.sh for real, in a throw-away HOME: a running daemon, `ally doctor` green, a photo protected
through the daemon, a second run that upgrades in place and keeps config, pairing secret and models, and
``--uninstall`` that leaves the prefix clean.

Reuses what this machine has: pip's configured indexes (here the local CPU torch wheel) and the model cache
(``ALLY_CACHE_DIR`` points at the one tests/run.sh pulled), so the first install takes ~2 minutes on 2 cores and
the second well under one. The systemd/launchd/PowerShell checks of the same installer: tests/unit/test_installer_files.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "installer" / "install.sh"

pytestmark = [pytest.mark.real_models, pytest.mark.installer]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Install:
    def __init__(self, root: Path, cache: Path, port: int):
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.cache, self.port = cache, port
        self.prefix = self.home / ".local" / "share" / "ally"
        self.bin = self.home / ".local" / "bin" / "ally"
        self.config = self.home / ".config" / "ally"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLY_", "VIRTUAL_ENV", "XDG_"))}
        env.update(HOME=str(self.home), ALLY_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1")
        env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
        self.env = env

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(INSTALL), *args], env=self.env, cwd=self.home, capture_output=True,
                              text=True, timeout=timeout)

    def ally(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin), *args], env=self.env, capture_output=True, text=True, timeout=300)

    def venv_python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.prefix / "venv" / "bin" / "python"), "-c", code], env=self.env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, real_model: Callable[[str], dict],
              model_cache) -> Iterator[tuple[Install, subprocess.CompletedProcess[str]]]:
    for mid in ("mtcnn", "faceres", "faceres-deep", "mobileface", "mobilefacenet", "dlib-resnet", "faceapi-samples"):
        real_model(mid)
    inst = Install(tmp_path_factory.mktemp("install"), model_cache.root, _free_port())
    first = inst.run("--port", str(inst.port))
    try:
        yield inst, first
    finally:
        if inst.prefix.exists():
            inst.run("--uninstall", timeout=120)


def _out(p: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in (p.stdout + p.stderr).splitlines() if not line.startswith("WARNING: Location"))


def test_first_install_leaves_a_running_daemon_and_doctor_green(installed) -> None:
    inst, first = installed
    assert first.returncode == 0, _out(first)
    out = _out(first)
    assert "torch: no NVIDIA or AMD GPU found" in out  # detected, not guessed
    # This machine reaches only PyPI: the CPU index is not reachable, and the installer says what it does.
    assert "cannot be reached: falling back to PyPI's default build" in out
    assert "autostart: background" in out and "no systemd user manager here" in out  # no systemd as PID 1 here
    assert "is not on your PATH" in out and "export PATH=" in out
    assert "ally pair --confirm CODE" in out and "ally doctor" in out  # the next step
    assert inst.bin.is_symlink() and (inst.prefix / "venv" / "bin" / "ally").is_file()
    torch_build = inst.venv_python("import torch; print(torch.__version__, torch.version.cuda)")
    assert torch_build.stdout.split() == ["2.13.0+cpu", "None"], torch_build
    doctor = inst.ally("doctor")
    assert doctor.returncode == 0, _out(doctor)
    lines = {line.split()[1]: line.split()[0] for line in doctor.stdout.splitlines() if line[:4].strip() in
             ("ok", "warn", "FAIL")}
    assert lines["venv"] == lines["torch"] == lines["models"] == lines["daemon"] == "ok", doctor.stdout
    assert lines["autostart"] == "warn" and "no systemd user manager" in doctor.stdout  # degraded, and said so
    assert lines["extension"] == "warn"  # nothing paired yet: the next step
    assert f"running on 127.0.0.1:{inst.port}" in doctor.stdout


def test_a_photo_is_protected_through_the_installed_daemon(installed) -> None:
    inst, _ = installed
    photo = inst.cache / "faceapi-samples" / "sample1.jpg"
    script = textwrap.dedent(f"""
        import asyncio, json
        from ally.server.client import DaemonClient
        from ally.server.pairing import PairingRegistry
        from ally.server.store import default_store
        from ally.imaging.metadata import metadata_report
        async def main():
            token = PairingRegistry(default_store()).local_token()
            photo = open({str(photo)!r}, "rb").read()
            async with await DaemonClient.connect({inst.port}, token=token) as c:
                r = await c.request("protect.image", {{"image": {{"bytes": len(photo)}}, "level": "off"}},
                                    binary=photo)
                print(json.dumps({{"faces": r.result["faces"], "type": r.result["image"]["type"],
                                  "left": metadata_report(r.binary)["identifying"]}}))
        asyncio.run(main())
    """)
    result = inst.venv_python(script)
    assert result.returncode == 0, _out(result)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"faces": 3, "type": "image/jpeg", "left": []}


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "daemon.json"}


def test_second_run_upgrades_in_place_and_keeps_config_pairing_and_models(installed) -> None:
    inst, _ = installed
    kept_config = _digests(inst.config)
    assert "config.toml" in kept_config and "secrets.json" in kept_config  # the local token: file store here
    cache_before = {p: p.stat().st_mtime_ns for p in inst.cache.rglob("*") if p.is_file()}
    second = inst.run()  # no --port: the config's port is kept
    assert second.returncode == 0, _out(second)
    out = _out(second)
    assert "upgrading in place" in out and "already installed (2.13.0 cpu)" in out
    assert "everything was already there" in out
    assert _digests(inst.config) == kept_config
    assert {p: p.stat().st_mtime_ns for p in inst.cache.rglob("*") if p.is_file()} == cache_before
    doctor = inst.ally("doctor")
    assert doctor.returncode == 0 and f"127.0.0.1:{inst.port}" in doctor.stdout, _out(doctor)


def test_uninstall_removes_what_it_added_and_nothing_else(installed) -> None:
    inst, _ = installed
    pid_file = inst.prefix / "ally-daemon.pid"
    supervisor = int(pid_file.read_text())
    gone = inst.run("--uninstall", timeout=120)
    assert gone.returncode == 0, _out(gone)
    assert not inst.prefix.exists() and not inst.bin.exists() and not inst.bin.parent.exists()
    assert not (inst.home / ".config" / "autostart").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(supervisor, 0)
    with pytest.raises(ConnectionRefusedError):  # the daemon is stopped: nothing listens on its port
        socket.create_connection(("127.0.0.1", inst.port), timeout=5).close()
    assert (inst.config / "config.toml").is_file() and (inst.config / "secrets.json").is_file()  # the user's
    assert inst.cache.is_dir() and any(inst.cache.iterdir())
