"""``ally me``: the user's own reference photos for "protect me" (only their embeddings are kept, locally).

``ally me add PHOTO…`` · ``ally me list`` · ``ally me forget ID|--all`` · ``ally me only-me [on|off]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import config_for, load_config, save_config
from ..me import MeStore, MeStoreError

EXIT_OK, EXIT_FAILED = 0, 1


def add_me_parser(sub: Any) -> None:
    """The ``me`` subcommand and its actions."""
    me = sub.add_parser("me", help="protect me: your own reference photos (only their embeddings are kept)",
                        description="Give Ally a few photos of yourself: it keeps only face embeddings (numbers, "
                                    "never the photos), locally, so that your face is protected as a person in "
                                    "every photo, and, with only-me on, only your face is cloaked.")
    actions = me.add_subparsers(dest="me_action", required=True)
    add = actions.add_parser("add", help="add photos of yourself (the largest face of each is used)")
    add.add_argument("photos", nargs="+", type=Path)
    add.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where to compute")
    actions.add_parser("list", help="list your references: id, date added, faces in the photo")
    forget = actions.add_parser("forget", help="forget one reference, or all of them")
    which = forget.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="the reference's id (see ally me list)")
    which.add_argument("--all", action="store_true", help="forget every reference")
    only = actions.add_parser("only-me", help="cloak only your own face (on) or every face (off, the default)")
    only.add_argument("state", nargs="?", choices=["on", "off"], help="omit to show the current setting")


def run_me(args: argparse.Namespace, store: MeStore | None = None) -> int:
    store = store or MeStore()
    try:
        if args.me_action == "add":
            return _add(args, store)
        if args.me_action == "list":
            return _list(store)
        if args.me_action == "forget":
            if args.all:
                count = store.forget_all()
                print(f"forgot all references ({count})")
            else:
                ref = store.forget(args.id)
                print(f"forgot {ref.id} (added {ref.added})")
            return EXIT_OK
        if args.me_action == "only-me":
            return _only_me(args.state)
    except MeStoreError as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    raise AssertionError(args.me_action)


def _add(args: argparse.Namespace, store: MeStore) -> int:
    from ally_models.cache import default_cache

    from ..engine import Engine
    from ..enrol import NoFaceError
    from ..imaging.errors import ImageError
    from ..imaging.io import load_image

    store.list()  # a damaged store is reported before any model is loaded
    engine = Engine(config_for(args), default_cache())
    failed = 0
    for photo in args.photos:
        try:
            enrolment = engine.enrol(load_image(photo))
        except ImageError as e:
            failed += 1
            print(f"{photo}: error: {e} [{e.code}]", file=sys.stderr)
            continue
        except NoFaceError as e:
            failed += 1
            print(f"{photo}: error: {e}", file=sys.stderr)
            continue
        ref = store.add(enrolment.embeddings, faces=enrolment.faces, note=enrolment.note)
        print(f"added {ref.id} from {photo} ({enrolment.note}); the photo itself is not kept")
    total = len(store.list())
    print(f"{total} reference(s) stored in {store.path}")
    if failed:
        print(f"{failed} of {len(args.photos)} photo(s) not added", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _list(store: MeStore) -> int:
    refs = store.list()
    if not refs:
        print("no references; add photos of yourself with: ally me add PHOTO…")
        return EXIT_OK
    print(f"{'id':10} {'added':22} note")
    for ref in refs:
        print(f"{ref.id:10} {ref.added:22} {ref.note}")
    models = ", ".join(sorted({m for r in refs for m in r.models}))
    print(f"{len(refs)} reference(s) in {store.path} (embeddings only: {models})")
    return EXIT_OK


def _only_me(state: str | None) -> int:
    config = load_config()
    if state is not None:
        config = replace(config, only_me=state == "on")
        save_config(config)
    print(f"only-me is {'on: only your face is cloaked' if config.only_me else 'off: every face is cloaked'}")
    return EXIT_OK
