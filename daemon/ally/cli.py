"""The ``ally`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ally_models.cache import CacheError, default_cache

from . import __version__
from .config import ConfigError
from .levels import Level
from .protections import EXPRESSION_TARGETS, PROTECTIONS, ProtectionsError, parse_protections

EXIT_FAILED = 1
LEVEL_HELP = "off | low | medium | high (off: only scrub metadata; default: the config's level)"
PROTECT_HELP = (f"what to protect, comma-separated, from: {', '.join(PROTECTIONS)} (faces: the face cloak; emotion: "
                "also hide the facial expression; metadata: remove EXIF/GPS/XMP; default: the config's, "
                "faces,metadata)")
EXPRESSION_TARGET_HELP = ("with emotion: push the expression away from the face's own (away) or toward neutral "
                          "(default: the config's, away)")


def _protections(value: str) -> frozenset[str]:
    try:
        return parse_protections(value)
    except ProtectionsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _level(value: str) -> Level:
    try:
        return Level.parse(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ally", description="Protect photos from face recognition, locally.")
    parser.add_argument("--version", action="version", version=f"ally {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("protect", help="cloak the faces in photos and remove their metadata")
    p.add_argument("photos", nargs="+", type=Path,
                   help="photos to protect (JPEG, PNG, WebP, TIFF, BMP; a still GIF is written as PNG)")
    p.add_argument("-o", "--output-dir", type=Path, help="write here, same file names (default: beside "
                   "each photo as NAME.ally.EXT)")
    p.add_argument("--level", type=_level, help=LEVEL_HELP)
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where to compute")
    p.add_argument("--protect", type=_protections, metavar="LIST", help=PROTECT_HELP)
    p.add_argument("--expression-target", choices=EXPRESSION_TARGETS, help=EXPRESSION_TARGET_HELP)
    from .commands.site_args import add_site_arguments  # issue 17: serve-size protection

    add_site_arguments(p)

    d = sub.add_parser("demo", help="pull the models and protect a bundled sample photo")
    d.add_argument("-o", "--output-dir", type=Path, default=Path("ally-demo"))
    d.add_argument("--level", type=_level, default=Level.MEDIUM, help="off | low | medium | high (default: medium)")
    d.add_argument("--protect", type=_protections, metavar="LIST", help=PROTECT_HELP)
    d.add_argument("--expression-target", choices=EXPRESSION_TARGETS, help=EXPRESSION_TARGET_HELP)

    m = sub.add_parser("models", help="the model cache: list | pull | verify | rm")
    m.add_argument("action", choices=["list", "pull", "verify", "rm"])
    m.add_argument("ids", nargs="*", help="model ids (default: all for list/pull/verify)")

    e = sub.add_parser("eval", help="measure protection against held-out models")
    e.add_argument("what", choices=["faces", "emotion", "text"])
    e.add_argument("--levels", default="low,medium,high")
    e.add_argument("--out", type=Path, default=Path("artifacts/eval"))
    e.add_argument("-n", "--n", type=int, default=200, help="text: how many held-out posts to protect")
    e.add_argument("--per-identity", type=int, default=4,
                   help="faces: at most this many probe photos per person (0 = every photo; slow)")
    e.add_argument("--evaluators", default="dlib-resnet,faceapi-resnet", help="faces: held-out recognizers")
    e.add_argument("--tables", default="current",
                   help="faces: level tables on the same photos: current, v2, v1 (the levels before issue 9), fawkes")
    e.add_argument("--chips-only", action="store_true", help="faces: only the 150 px face chips (fast)")
    e.add_argument("--person-level", action="store_true",
                   help="faces: each person has enrolled up to 3 other photos of themselves (ally me add)")
    e.add_argument("--decoys", choices=["person", "photo", "none"], default="person",
                   help="faces: one decoy per person (uploads agree), per photo (uploads drift apart), or none")
    e.add_argument("--split", choices=["tune", "report", "all"], default="all",
                   help="faces: which half of the people (tune on one, report on the other)")
    e.add_argument("--quick", action="store_true",
                   help="faces, emotion: a small fixed subset (3 photos), for development")
    e.add_argument("--variants", default="cloak,joint,joint-longer,chained",
                   help="emotion: cloak (faces alone), joint (faces + emotion, one search), joint-longer (10 more "
                        "steps), chained (the cloak, then a 10-step second stage from it: the cost of "
                        "joint-longer), emotion-only")
    e.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])

    s = sub.add_parser("serve", help="run the local daemon for the browser extension (127.0.0.1 only)")
    s.add_argument("--port", type=int, help="port on 127.0.0.1 (default: the config's port, 28417)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where to compute")
    s.add_argument("-v", "--verbose", action="store_true", help="debug logging (never logs user content)")

    st = sub.add_parser("status", help="is the daemon running: device, models, queue, pairing")
    st.add_argument("--port", type=int, help="the daemon's port (default: the running daemon's)")

    pa = sub.add_parser("pair", help="browser extensions allowed to use the daemon: list | confirm | add | revoke")
    pg = pa.add_mutually_exclusive_group()
    pg.add_argument("--confirm", metavar="CODE", help="approve the pairing request showing this 6-digit code")
    pg.add_argument("--origin", help="pair this extension origin now and print its token (manual pairing)")
    pg.add_argument("--revoke", metavar="ORIGIN", help="forget this extension's pairing")
    pg.add_argument("--reset", action="store_true", help="forget every pairing")
    pa.add_argument("--name", default="browser extension", help="a label for --origin")
    pa.add_argument("--port", type=int, help="the daemon's port (for --confirm)")

    t = sub.add_parser("protect-text", help="rewrite text so age, gender and region cannot be read from it")
    t.add_argument("file", nargs="?", type=Path, help="text file (default: standard input)")
    t.add_argument("--level", type=_level, help=LEVEL_HELP)
    t.add_argument("--private", action="append", default=[], metavar="WORD", help="a private word to hide")
    t.add_argument("--safe", action="append", default=[], metavar="NAME", help="a name never to change")
    t.add_argument("--diff", action="store_true", help="print the changes as a word diff to standard error")
    t.add_argument("--json", action="store_true", help="print the result as JSON")

    dr = sub.add_parser("doctor", help="check the installation: venv, torch, models, keyring, daemon, autostart")
    dr.add_argument("--port", type=int, help="the daemon's port (default: the running daemon's, else the config's)")
    dr.add_argument("--quick", action="store_true", help="check model files' presence, not their sha256")

    b = sub.add_parser("bench", help="seconds and peak memory per photo, per level")
    b.add_argument("--levels", default="low,medium,high")
    b.add_argument("--repeat", type=int, default=1)
    b.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    b.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    b.add_argument("--table", default="current", choices=["current", "v2", "v1", "fawkes"], help="level table")
    b.add_argument("--site", help="bring each photo to what this site serves first, as `ally protect --site` does")
    b.add_argument("--no-visibility", action="store_true", help="skip SSIMULACRA2 / Butteraugli (slow at 12 MP)")
    b.add_argument("--cases", default="1MP-1face,1MP-5faces,12MP-1face,12MP-5faces", help="photo cases to run")
    b.add_argument("--protect", default="faces,metadata",
                   help="what to protect, e.g. faces,emotion,metadata (to compare the cost of hiding expressions)")
    from .commands.me import add_me_parser  # issue 17: "protect me"

    add_me_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "models":
            from .commands.models import run_models

            return run_models(args, default_cache())
        if args.command == "protect":
            from .commands.protect import run_protect
            from .commands.site_args import check_site_arguments

            check_site_arguments(parser, args)

            return run_protect(args)
        if args.command == "demo":
            from .commands.protect import run_demo

            return run_demo(args)
        if args.command == "eval" and args.what == "text":
            from .text.eval import run_eval_text

            return run_eval_text(args)
        if args.command == "eval" and args.what == "emotion":
            from .eval.emotion import run_eval_emotion

            return run_eval_emotion(args)
        if args.command == "eval":
            from .eval.faces import run_eval_faces

            return run_eval_faces(args)
        if args.command == "serve":
            from .commands.serve import run_serve

            return run_serve(args)
        if args.command == "status":
            from .commands.status import run_status

            return run_status(args)
        if args.command == "pair":
            from .commands.pair import run_pair

            return run_pair(args)
        if args.command == "protect-text":
            from .commands.text import run_protect_text

            return run_protect_text(args)
        if args.command == "doctor":
            from .commands.doctor import run_doctor

            return run_doctor(args)
        if args.command == "bench":
            from .bench import run_bench

            return run_bench(args)
        if args.command == "me":
            from .commands.me import run_me

            return run_me(args)
    except (ConfigError, CacheError) as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("ally: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
