"""``ally doctor``: check the installation, say how to fix each problem, exit non-zero when something is broken.

Checks: the venv, torch's build and device, the models (sha256), the secret store, the daemon (reachable, its
port free or ours), the autostart the installer set up, and the extension pairing. A warning (``warn``) is
something that works but could be better (secrets in a 0600 file, no extension paired yet); a failure
(``FAIL``) is something that stops protection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1
OK, WARN, FAIL = "ok", "warn", "FAIL"
INSTALL_STATE = "install.json"  # written by installer/install.sh and install.ps1 into ALLY_HOME
HOME_ENV = "ALLY_HOME"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""


def install_home() -> Path:
    """ALLY_HOME, else the installer's layout (this venv's parent), else the default ~/.local/share/ally."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    parent = Path(sys.prefix).parent
    if (parent / INSTALL_STATE).is_file():
        return parent
    import platformdirs

    return Path(platformdirs.user_data_dir("ally", appauthor=False))


def install_state() -> dict | None:
    try:
        return json.loads((install_home() / INSTALL_STATE).read_text())
    except (OSError, ValueError):
        return None


def check_venv() -> Check:
    if sys.prefix == sys.base_prefix:
        return Check("venv", WARN, f"not in a virtual environment ({sys.prefix})",
                     "install with installer/install.sh, which makes Ally its own venv")
    return Check("venv", OK, f"{sys.prefix} (Python {sys.version.split()[0]})")


def check_torch(device_pref: str) -> Check:
    try:
        import torch

        from ..device import best_device
    except ImportError as e:
        return Check("torch", FAIL, f"cannot import torch: {e}", "re-run the installer")
    build = (f"CUDA {torch.version.cuda}" if torch.version.cuda else
             f"ROCm {torch.version.hip}" if getattr(torch.version, "hip", None) else "CPU/MPS")
    try:
        device = best_device(device_pref)
    except RuntimeError as e:
        return Check("torch", FAIL, f"torch {torch.__version__} ({build}): {e}",
                     "set device = \"auto\" in config.toml, or re-run the installer for this machine's build")
    detail = f"torch {torch.__version__} ({build} build), computing on {device}"
    if device.type == "cpu" and shutil.which("nvidia-smi") and not torch.version.cuda:
        return Check("torch", WARN, detail + "; an NVIDIA GPU is here but this torch cannot use it",
                     "re-run the installer: it picks the CUDA build when nvidia-smi reports a driver")
    return Check("torch", OK, detail)


def check_models(model_ids: list[str], quick: bool) -> Check:
    from ally_models.cache import CacheError, default_cache

    try:
        cache = default_cache()
        states = [cache.state(m, quick=quick) for m in model_ids]
    except CacheError as e:
        return Check("models", FAIL, str(e), "ally models pull")
    bad = [f"{s.model_id}: {s.summary}" for s in states if not s.ok]
    how = "present" if quick else "sha256 verified"
    if bad:
        return Check("models", FAIL, "; ".join(bad) + f" (cache {cache.root})", "ally models pull " +
                     " ".join(s.model_id for s in states if not s.ok))
    return Check("models", OK, f"{len(states)} {how} in {cache.root}")


def check_store():
    from ..server.pairing import PairingRegistry
    from ..server.store import StoreError, default_store

    try:
        store = default_store()
        token = PairingRegistry(store).local_token()
    except StoreError as e:
        return Check("secrets", FAIL, str(e), "fix the secret store as the message says"), None, None
    if token is None:
        return (Check("secrets", FAIL, f"{store.describe()}: no local token yet",
                      "re-run the installer, or start the daemon once with `ally serve`"), store, None)
    if not store.secure:
        return (Check("secrets", WARN, f"{store.describe()}: no OS keyring, so a file only you can read",
                      "on a Linux desktop install a Secret Service (gnome-keyring or KeePassXC) and re-run the "
                      "installer; ALLY_SECRET_STORE=file keeps the file on purpose"), store, token)
    return Check("secrets", OK, store.describe()), store, token


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon binds: TIME_WAIT is no conflict
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_daemon(port: int, token: str | None, autostart: str | None) -> Check:
    from ..server.client import daemon_health
    from .status import query_status

    health = asyncio.run(daemon_health(port))
    if health is None:
        if port_in_use(port):
            return Check("daemon", FAIL, f"port {port} on 127.0.0.1 is taken by another program (port conflict)",
                         f"stop that program, or give Ally another port: `port = N` in config.toml "
                         f"(then restart the daemon){_restart_hint(autostart)}")
        return Check("daemon", FAIL, f"not running (nothing answers on 127.0.0.1:{port})",
                     f"start it{_restart_hint(autostart) or ' with `ally serve`'}")
    status, problem = asyncio.run(query_status(port, token))
    if status is None:
        return Check("daemon", FAIL, f"127.0.0.1:{port}: {problem}",
                     "another user's or an old daemon holds the port: stop it, then restart Ally's")
    d = status["daemon"]
    return Check("daemon", OK, f"running on 127.0.0.1:{port} (pid {d['pid']}, ally {d['version']}, "
                 f"device {status['device']}, models {status['models']['state']})")


def _restart_hint(autostart: str | None) -> str:
    return {"systemd": ": systemctl --user restart ally", "launchd": ": launchctl kickstart -k gui/$(id -u)/org.ally.daemon",
            "background": f": {install_home() / 'ally-daemon'} &", "task": ": schtasks /Run /TN Ally"}.get(autostart or "", "")


def check_autostart(state: dict | None) -> Check:
    if state is None:
        return Check("autostart", WARN, f"not installed by the installer (no {install_home() / INSTALL_STATE})",
                     "run installer/install.sh (or install.ps1) to start the daemon at login")
    mode = state.get("autostart")
    if mode == "systemd":
        return _systemd_state()
    if mode == "launchd":
        ok = subprocess.run(["launchctl", "print", f"gui/{os.getuid()}/org.ally.daemon"], capture_output=True)
        if ok.returncode:
            return Check("autostart", FAIL, "launchd agent org.ally.daemon is not loaded",
                         "launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/org.ally.daemon.plist")
        return Check("autostart", OK, "launchd agent org.ally.daemon (at login, restarted on failure)")
    if mode == "background":
        pid_file = install_home() / "ally-daemon.pid"
        alive = False
        try:
            os.kill(int(pid_file.read_text()), 0)
            alive = True
        except (OSError, ValueError):
            alive = False
        detail = ("no systemd user manager on this machine: a background supervisor restarts the daemon on "
                  "failure" + (" (running)" if alive else " (NOT running)") +
                  "; it starts again at a desktop login only")
        fix = "at boot without a desktop: (crontab -l; echo '@reboot " + str(install_home() / "ally-daemon") + \
              "') | crontab -"
        return Check("autostart", WARN if alive else FAIL, detail, fix)
    if mode == "task":
        return Check("autostart", OK, "Task Scheduler task 'Ally' (at logon, restarted on failure)")
    if mode == "startup":
        return Check("autostart", WARN, "a Startup-folder entry (at logon; no restart on failure)",
                     "re-run install.ps1 where Task Scheduler is allowed")
    return Check("autostart", WARN, "off (installed with --autostart none)", "re-run the installer without it")


def _systemd_state() -> Check:
    def ask(what: str) -> str:
        try:
            return subprocess.run(["systemctl", "--user", what, "ally.service"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"
    enabled, active = ask("is-enabled"), ask("is-active")
    if enabled != "enabled" or active != "active":
        return Check("autostart", FAIL, f"systemd user unit ally.service is {enabled}, {active}",
                     "systemctl --user enable --now ally.service; logs: journalctl --user -u ally")
    return Check("autostart", OK, "systemd user unit ally.service (enabled, active, restarted on failure)")


def check_pairing(store) -> Check:
    from ..server.pairing import PairingRegistry

    if store is None:
        return Check("extension", FAIL, "the secret store cannot be read", "see `secrets` above")
    pairings = PairingRegistry(store).pairings()
    if not pairings:
        return Check("extension", WARN, "no browser extension paired yet",
                     "load the extension (README: Load the extension), press Pair in its options, then "
                     "`ally pair --confirm CODE`")
    return Check("extension", OK, "paired: " + ", ".join(f"{p.name} ({p.origin})" for p in pairings.values()))


def run_checks(args: argparse.Namespace) -> list[Check]:
    from ..config import EXPRESSION_SURROGATES, HELD_OUT_READER, ConfigError, load_config
    from .status import daemon_port

    try:
        config = load_config()
    except ConfigError as e:
        return [Check("config", FAIL, str(e), "fix or remove config.toml")]
    state = install_state()
    checks = [check_venv(), check_torch(config.device),
              check_models(["mtcnn", *config.surrogates, *EXPRESSION_SURROGATES, HELD_OUT_READER],
                           getattr(args, "quick", False))]
    store_check, store, token = check_store()
    checks.append(store_check)
    checks.append(check_daemon(daemon_port(getattr(args, "port", None)), token, (state or {}).get("autostart")))
    checks.append(check_autostart(state))
    checks.append(check_pairing(store))
    return checks


def run_doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    for c in checks:
        print(f"{c.status:4} {c.name:10} {c.detail}")
        if c.fix and c.status != OK:
            print(f"{'':4} {'':10} fix: {c.fix}")
    failed = [c.name for c in checks if c.status == FAIL]
    print("broken: " + ", ".join(failed) if failed else "all good" + (
        " (with warnings)" if any(c.status == WARN for c in checks) else ""))
    return EXIT_FAILED if failed else EXIT_OK
