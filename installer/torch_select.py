#!/usr/bin/env python3
"""Which torch build to install: detected from the machine, not guessed. Standard library only (it runs before
Ally's venv exists, from install.sh and install.ps1).

    python3 installer/torch_select.py            prints a JSON choice: {"kind", "index_url", "reason", ...}

``choose(probes)`` is a pure function of what was probed (tested with faked probes for every platform);
``probe()`` does the probing: the OS and CPU, ``nvidia-smi``'s CUDA driver version, ROCm's version file.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass

TORCH_VERSION = "2.13.0"
INDEX = "https://download.pytorch.org/whl"
# PyTorch's CUDA wheel indexes, newest first, with the lowest driver CUDA version each needs.
CUDA_BUILDS = (("cu130", (13, 0)), ("cu128", (12, 8)), ("cu126", (12, 6)), ("cu118", (11, 8)))
ROCM_BUILDS = (("rocm7.0", (7, 0)), ("rocm6.4", (6, 4)), ("rocm6.3", (6, 3)))


@dataclass(frozen=True)
class Probes:
    system: str  # platform.system(): Linux | Darwin | Windows
    machine: str  # platform.machine(): x86_64 | AMD64 | arm64 | aarch64
    cuda_driver: tuple[int, int] | None = None  # from nvidia-smi's "CUDA Version"
    rocm: tuple[int, int] | None = None  # from /opt/rocm/.info/version (or hipconfig)


@dataclass(frozen=True)
class Choice:
    kind: str  # cuda | rocm | mps | cpu
    index_url: str | None  # None: the default index (PyPI)
    spec: str
    reason: str
    fallback: str  # what to do when index_url cannot be reached, said to the user


def choose(p: Probes) -> Choice:
    spec = f"torch=={TORCH_VERSION}"
    system, machine = p.system, p.machine.lower()
    if system == "Darwin":
        if machine in ("arm64", "aarch64"):
            return Choice("mps", None, spec, "Apple silicon: PyPI's macOS build (Metal, MPS)", "")
        return Choice("cpu", None, spec, "Intel Mac: PyPI's macOS build (CPU)", "")
    cpu_fallback = ("PyPI's default build (on Linux x86_64 that is the CUDA build with its CUDA libraries, "
                    "several GB; it runs on the CPU too)")
    if p.cuda_driver and system in ("Linux", "Windows"):
        for tag, needs in CUDA_BUILDS:
            if p.cuda_driver >= needs:
                return Choice("cuda", f"{INDEX}/{tag}", spec,
                              f"NVIDIA GPU, driver supports CUDA {p.cuda_driver[0]}.{p.cuda_driver[1]}: {tag}",
                              "PyPI's default build" + (" (CUDA on Linux)" if system == "Linux" else " (CPU on Windows)"))
        reason = f"NVIDIA driver too old for PyTorch's CUDA builds (CUDA {p.cuda_driver[0]}.{p.cuda_driver[1]})"
        return Choice("cpu", f"{INDEX}/cpu", spec, reason + "; CPU-only build", cpu_fallback)
    if p.rocm and system == "Linux" and machine in ("x86_64", "amd64"):
        for tag, needs in ROCM_BUILDS:
            if p.rocm >= needs:
                return Choice("rocm", f"{INDEX}/{tag}", spec, f"AMD GPU with ROCm {p.rocm[0]}.{p.rocm[1]}: {tag}",
                              cpu_fallback)
        return Choice("cpu", f"{INDEX}/cpu", spec, f"ROCm {p.rocm[0]}.{p.rocm[1]} is older than PyTorch supports; "
                      "CPU-only build", cpu_fallback)
    return Choice("cpu", f"{INDEX}/cpu", spec, "no NVIDIA or AMD GPU found: PyTorch's CPU-only build", cpu_fallback)


def _version(text: str, pattern: str) -> tuple[int, int] | None:
    m = re.search(pattern, text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def probe() -> Probes:
    """Look at this machine. ``ALLY_TORCH_PROBES`` (JSON of :class:`Probes`' fields) replaces it, for tests."""
    fake = os.environ.get("ALLY_TORCH_PROBES")
    if fake:
        d = json.loads(fake)
        return Probes(d["system"], d["machine"], *(tuple(d[k]) if d.get(k) else None for k in ("cuda_driver", "rocm")))
    cuda = rocm = None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi], capture_output=True, text=True, timeout=20).stdout
            cuda = _version(out, r"CUDA Version:\s*(\d+)\.(\d+)")
        except (OSError, subprocess.SubprocessError):
            cuda = None
    for path in ("/opt/rocm/.info/version", "/opt/rocm/.info/version-dev"):
        try:
            with open(path) as f:
                rocm = _version(f.read(), r"(\d+)\.(\d+)")
                break
        except OSError:
            continue
    if rocm is None and shutil.which("hipconfig"):
        try:
            rocm = _version(subprocess.run(["hipconfig", "--version"], capture_output=True, text=True,
                                           timeout=20).stdout, r"(\d+)\.(\d+)")
        except (OSError, subprocess.SubprocessError):
            rocm = None
    return Probes(platform.system(), platform.machine(), cuda, rocm)


def reachable(url: str, timeout_s: float = 8.0) -> bool:
    """Whether a package index answers (a HEAD of its torch page)."""
    try:
        req = urllib.request.Request(f"{url}/torch/", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 (a fixed https URL)
            return 200 <= r.status < 400
    except (OSError, ValueError):
        return False


def main() -> int:
    choice = choose(probe())
    out = asdict(choice)
    out["reachable"] = reachable(choice.index_url) if choice.index_url and not os.environ.get(
        "ALLY_TORCH_INDEX_UNREACHABLE") else choice.index_url is None
    if "--shell" in sys.argv:  # KEY=VALUE lines for install.sh
        for k, v in out.items():
            print(f"torch_{k}={json.dumps('' if v is None else str(v).lower() if isinstance(v, bool) else v)}")
    else:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
