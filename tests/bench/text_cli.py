"""Per-post time of ``ally protect-text`` from the command line, start-up included (a fresh process per post).

    python tests/bench/text_cli.py [-n 10] [--level medium]

Posts: the first ``n`` of tests/fixtures/text/held_out_v3.txt. Prints wall-clock and CPU seconds per call
(CPU = user + system of the child: what the call costs on an idle machine) and the load average, since the
wall-clock figure on a shared machine mostly measures the other load. A benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ally.text.facts import read_fact_file


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--level", default="medium")
    args = ap.parse_args()
    posts = [p.text for p in read_fact_file(Path(__file__).parents[1] / "fixtures" / "text" / "held_out_v3.txt")]
    walls, cpus = [], []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        for i, post in enumerate(posts[:args.n]):
            f = Path(d) / f"{i}.txt"
            f.write_text(post + "\n")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ally.cli", "protect-text", "--json", "--level", args.level,
                            str(f)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"{len(walls)} CLI calls at {args.level}: wall per post mean {statistics.fmean(walls):.2f} s, median "
          f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s; CPU per post mean {statistics.fmean(cpus):.2f} s, "
          f"max {max(cpus):.2f} s; load average {load0:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
