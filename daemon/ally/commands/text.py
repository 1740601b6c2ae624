"""``ally protect-text``: protect a post read from a file or standard input; the result goes to standard out."""

from __future__ import annotations

import argparse
import json
import sys

from ally_models.cache import default_cache

from ..config import config_for

EXIT_OK, EXIT_FAILED = 0, 1


def run_protect_text(args: argparse.Namespace) -> int:
    from ..text.eval import word_diff
    from ..text.protector import load_text_protector

    config = config_for(args)
    level = args.level or config.level
    text = args.file.read_text(encoding="utf-8") if args.file else sys.stdin.read()
    print("loading text models", file=sys.stderr)
    training = []

    def log(line: str) -> None:  # called only while the classifiers are being fitted (the first run)
        if not training:
            training.append(True)
            print("first run: training the text classifiers on this machine (about a minute, once)", file=sys.stderr)
        print("  " + line, file=sys.stderr)

    protector = load_text_protector(config, default_cache(), log=log,
                                    private_words=args.private, safe_names=args.safe)
    result = protector.protect(text, level)
    if args.json:
        print(json.dumps({
            "text": result.text, "level": result.level.value, "similarity": result.similarity,
            "changed_fraction": result.changed_fraction, "goal_reached": result.goal_reached,
            "seconds": result.seconds, "readings": result.readings, "report": result.report(),
            "changes": [{"span": list(c.span), "old": c.old, "new": c.new, "reason": c.reason}
                        for c in result.changes],
        }, indent=2, ensure_ascii=False))
        return EXIT_OK
    sys.stdout.write(result.text if result.text.endswith("\n") or not text.endswith("\n") else result.text + "\n")
    if args.diff:
        print(word_diff(result.original, result.text), file=sys.stderr)
    print(f"{len(result.changes)} change(s) at {result.level.value}; meaning similarity {result.similarity:.3f}, "
          f"{100 * result.changed_fraction:.0f}% of words changed, {result.seconds:.2f} s", file=sys.stderr)
    report = result.report()
    print("GOAL REACHED" if report["goal_reached"] else "GOAL NOT REACHED", file=sys.stderr)
    for note in report["notes"]:
        print("  " + note, file=sys.stderr)
    return EXIT_OK
