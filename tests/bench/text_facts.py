"""Stated facts left by the whole protector (explicit pass + search) on the fact files, and every rewrite.

    python tests/bench/text_facts.py [--levels medium,high] [--files stated_facts.txt,held_out_v3.txt] [--out DIR]

``stated_facts.txt`` is the public phrasing file (tuned on); ``held_out_v3.txt`` was written before the v3
rules and is never tuned on; ``held_out_posts.txt`` is the previous issue's held-out file (seen since). Prints,
per file and level, facts left / facts, the posts that leave one, broken a/an, and writes every rewrite to
``DIR/text_facts_<level>.md`` for reading.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ally.levels import Level
from ally.text.eval import FACT_FILES, article_errors, fact_leaks
from ally.text.protector import load_text_protector
from ally_models.cache import default_cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="medium,high")
    ap.add_argument("--files", default="stated_facts.txt,held_out_v3.txt,held_out_posts.txt")
    ap.add_argument("--out", default="/tmp/ally-text-facts")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    protector = load_text_protector(None, default_cache())
    summary = {}
    for lv in args.levels.split(","):
        level = Level.parse(lv)
        lines = [f"# Rewrites at {level.value}", ""]
        for name in args.files.split(","):
            r = fact_leaks(protector, FACT_FILES / name, level)
            arts = sum(article_errors(x["rewrite"]) > article_errors(x["original"]) for x in r["rows"])
            summary[f"{name}@{level.value}"] = {"facts": r["facts"], "left": r["left"], "article_errors": arts}
            print(f"{name} at {level.value}: {r['left']}/{r['facts']} facts left "
                  f"({100 * r['share_left']:.1f}%), new a/an errors {arts}")
            for x in r["left_rows"]:
                print(f"   LEFT {x['left']}: {x['rewrite']!r}")
            lines += [f"## {name}", ""]
            for i, x in enumerate(r["rows"], 1):
                flag = f"  — LEFT {x['left']}" if x["left"] else ""
                lines += [f"{i}. {x['original']}", f"   → {x['rewrite']}{flag}", ""]
        (out / f"text_facts_{level.value}.md").write_text("\n".join(lines))
    (out / "text_facts.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
