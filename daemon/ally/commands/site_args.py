"""``ally protect``'s serve-size options: --site, --max-edge, --full-size (the sites: ``ally/sites.json``)."""

from __future__ import annotations

import argparse

from ..sites import MIN_EDGE, load_sites


def _edge(value: str) -> int:
    try:
        edge = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of pixels") from None
    if edge < MIN_EDGE:
        raise argparse.ArgumentTypeError(f"the long edge must be at least {MIN_EDGE} px")
    return edge


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --site NAME, and --max-edge N or --full-size."""
    sites = load_sites()
    names = ", ".join(sites)
    parser.add_argument("--site", choices=list(sites), metavar="NAME",
                        help=f"the site the photo goes to ({names}): resize it to the size the site serves before "
                             "cloaking (never up), and write a JPEG at or above the site's quality")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--max-edge", type=_edge, metavar="N", help="resize so that the long edge is at most N px")
    size.add_argument("--full-size", action="store_true",
                      help="with --site: keep the full size (the site will shrink it, and the cloak with it)")


def check_site_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--full-size goes with --site."""
    if getattr(args, "full_size", False) and not getattr(args, "site", None):
        parser.error("--full-size goes with --site (without a site nothing is resized)")
