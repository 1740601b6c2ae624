"""Rewrites to read: ``n`` held-out blog posts (a seed other than `ally eval text`'s, so that the posts read to
fix rules and the posts read to report are different) protected at each level, written as a numbered list.

    python tests/bench/text_read.py [--seed 5] [-n 50] [--levels medium,high] [--out docs/text-rewrites.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ally.levels import Level
from ally.text.eval import article_errors, eval_posts
from ally.text.fixed_phrases import broken_phrases
from ally.text.protector import load_text_protector
from ally_models.cache import default_cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--levels", default="medium,high")
    ap.add_argument("--out", default="/tmp/ally-text-read.md")
    args = ap.parse_args()
    cache = default_cache()
    protector = load_text_protector(None, cache)
    posts = eval_posts(cache, 400, seed=args.seed)
    lines = [f"# Rewrites read (held-out blog posts, seed {args.seed}; only posts the protector changed)", ""]
    for lv in args.levels.split(","):
        level = Level.parse(lv)
        rows = []
        for p in posts:
            r = protector.protect(p.text, level)
            if r.changes:
                rows.append(r)
            if len(rows) == args.n:
                break
        arts = sum(article_errors(r.text) > article_errors(r.original) for r in rows)
        broken = [b for r in rows for b in broken_phrases(r.original, r.text)]
        lines += [f"## {level.value}: {len(rows)} rewrites; new a/an errors {arts}; idioms broken (automatic) "
                  f"{len(broken)}", ""]
        for i, r in enumerate(rows, 1):
            lines += [f"{i}. {r.original}", f"   → {r.text}", ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
