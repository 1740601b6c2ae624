"""The installer's torch choice (installer/torch_select.py): a pure function of faked probes, one per platform."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "installer" / "torch_select.py"
spec = importlib.util.spec_from_file_location("torch_select", PATH)
ts = importlib.util.module_from_spec(spec)
sys.modules["torch_select"] = ts
spec.loader.exec_module(ts)
Probes = ts.Probes


@pytest.mark.parametrize("probes,kind,index", [
    (Probes("Linux", "x86_64", cuda_driver=(12, 9)), "cuda", "cu128"),
    (Probes("Linux", "x86_64", cuda_driver=(13, 1)), "cuda", "cu130"),
    (Probes("Linux", "x86_64", cuda_driver=(12, 6)), "cuda", "cu126"),
    (Probes("Windows", "AMD64", cuda_driver=(12, 4)), "cuda", "cu118"),
    (Probes("Linux", "x86_64", cuda_driver=(11, 4)), "cpu", "cpu"),  # driver too old for any CUDA build
    (Probes("Linux", "x86_64", rocm=(6, 4)), "rocm", "rocm6.4"),
    (Probes("Linux", "x86_64", rocm=(7, 1)), "rocm", "rocm7.0"),
    (Probes("Linux", "x86_64", rocm=(5, 7)), "cpu", "cpu"),
    (Probes("Linux", "aarch64", rocm=(6, 4)), "cpu", "cpu"),  # no ROCm wheels for ARM
    (Probes("Linux", "x86_64"), "cpu", "cpu"),
    (Probes("Linux", "aarch64"), "cpu", "cpu"),
    (Probes("Windows", "AMD64"), "cpu", "cpu"),
])
def test_gpu_and_plain_machines(probes, kind: str, index: str) -> None:
    choice = ts.choose(probes)
    assert choice.kind == kind
    assert choice.index_url == f"https://download.pytorch.org/whl/{index}"
    assert choice.spec == f"torch=={ts.TORCH_VERSION}"
    assert choice.fallback  # what happens when that index cannot be reached is always said


@pytest.mark.parametrize("machine,kind", [("arm64", "mps"), ("x86_64", "cpu")])
def test_macs_take_pypis_build(machine: str, kind: str) -> None:
    choice = ts.choose(Probes("Darwin", machine, cuda_driver=(12, 0)))  # an eGPU driver does not matter on macOS
    assert (choice.kind, choice.index_url) == (kind, None)


def test_cpu_fallback_warns_about_pypis_cuda_build_on_linux() -> None:
    assert "CUDA build" in ts.choose(Probes("Linux", "x86_64")).fallback


def _run(**env: str) -> dict:
    out = subprocess.run([sys.executable, str(PATH)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env}, check=True).stdout
    return json.loads(out)


def test_the_script_probes_and_reports_reachability() -> None:
    fake = json.dumps({"system": "Linux", "machine": "x86_64", "cuda_driver": [12, 8]})
    out = _run(ALLY_TORCH_PROBES=fake, ALLY_TORCH_INDEX_UNREACHABLE="1")
    assert out["kind"] == "cuda" and out["index_url"].endswith("/cu128") and out["reachable"] is False


def test_version_parsing_from_tool_output() -> None:
    smi = "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4     |"
    assert ts._version(smi, r"CUDA Version:\s*(\d+)\.(\d+)") == (12, 4)
    assert ts._version("6.4.1-120", r"(\d+)\.(\d+)") == (6, 4)
