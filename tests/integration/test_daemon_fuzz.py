"""Property-based fuzzing of the protocol over a real socket: no input kills a session (Hypothesis, bounded
so that the suite stays fast; the long run is ``tests/bench/daemon_fuzz.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).parents[1] / "bench" / "daemon_fuzz.py"
EXAMPLES = 200  # about 500 messages, 10-20 s here


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("daemon_fuzz", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_no_input_kills_a_session() -> None:
    fuzz = _bench()
    report = fuzz.run_fuzz(EXAMPLES, strict=True)
    print(report.summary())
    assert report.killed == []
    assert report.examples >= EXAMPLES and report.messages > EXAMPLES
    # The fuzz reached the daemon's checks, not only the JSON parser.
    codes = set(report.error_codes)
    assert {100, 101}.issubset(codes) and codes & {105, 106, 108, 208, 500, 501, 502, 503, 506}
