"""Warm per-post time of ``TextProtector.protect`` (the daemon's case: models loaded once).

    python tests/bench/text_warm.py [-n 60] [--level medium]

Posts: the held-out eval posts (≤ 280 characters) and tests/fixtures/text/held_out_posts.txt. A benchmark, not a
timed test: the figure depends on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ally.levels import Level
from ally.text.eval import eval_posts
from ally.text.facts import read_fact_file
from ally.text.protector import load_text_protector
from ally_models.cache import default_cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--level", default="medium")
    args = ap.parse_args()
    cache = default_cache()
    t0 = time.perf_counter()
    protector = load_text_protector(None, cache)
    load = time.perf_counter() - t0
    posts = [s.text for s in eval_posts(cache, args.n, seed=3)]
    posts += [p.text for name in ("held_out_posts.txt", "held_out_v3.txt")
              for p in read_fact_file(Path(__file__).parents[1] / "fixtures" / "text" / name)]
    level = Level.parse(args.level)
    protector.protect("warm up the caches", level)
    secs = []
    for p in posts:
        t = time.perf_counter()
        protector.protect(p, level)
        secs.append(time.perf_counter() - t)
    secs.sort()
    print(f"{len(posts)} posts at {level.value}: load {load:.1f} s; warm per post mean {statistics.fmean(secs):.3f} s, "
          f"median {statistics.median(secs):.3f} s, p95 {secs[int(0.95 * (len(secs) - 1))]:.3f} s, max {secs[-1]:.3f} s")


if __name__ == "__main__":
    main()
