"""``ally pair``: list, confirm, add and revoke the browser extensions allowed to use the daemon."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..server.auth import extension_id
from ..server.client import DaemonClient, DaemonError, HandshakeRefused
from ..server.pairing import PairingRegistry
from ..server.store import StoreError, default_store
from .status import daemon_port, describe_pairings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


async def confirm_code(port: int, local_token: str, code: str) -> dict[str, str]:
    async with await DaemonClient.connect(port, token=local_token) as client:
        return dict((await client.request("pair.confirm", {"code": code})).result)


def run_pair(args: argparse.Namespace) -> int:
    try:
        store = default_store()
        registry = PairingRegistry(store)
        if args.confirm:
            return _confirm(args, registry)
        if args.origin:
            if extension_id(args.origin) is None:
                print(f"ally: error: {args.origin!r} is not an extension origin (chrome-extension://<32 letters a-p> "
                      "or moz-extension://<uuid>)", file=sys.stderr)
                return EXIT_USAGE
            token = registry.add(args.origin, args.name)
            print(f"paired {args.origin}; paste this token into the extension's settings (shown only once):")
            print(token)
            return EXIT_OK
        if args.revoke:
            if not registry.revoke(args.revoke):
                print(f"ally: error: {args.revoke} is not paired", file=sys.stderr)
                return EXIT_FAILED
            print(f"revoked {args.revoke} (its open connections end when they reconnect)")
            return EXIT_OK
        if args.reset:
            registry.reset()
            print("forgot every pairing")
            return EXIT_OK
        print("\n".join(describe_pairings(store)))
        return EXIT_OK
    except StoreError as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED


def _confirm(args: argparse.Namespace, registry: PairingRegistry) -> int:
    code = args.confirm.replace("-", "").replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        print("ally: error: the pairing code is 6 digits", file=sys.stderr)
        return EXIT_USAGE
    token = registry.local_token()
    if token is None:
        print("ally: error: the daemon has not run yet (no local token); start it with `ally serve`", file=sys.stderr)
        return EXIT_FAILED
    port = daemon_port(args.port)
    try:
        paired = asyncio.run(confirm_code(port, token, code))
    except (HandshakeRefused, DaemonError) as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print(f"ally: error: the daemon is not running on 127.0.0.1:{port} ({e})", file=sys.stderr)
        return EXIT_FAILED
    print(f"paired {paired['origin']} ({paired['name']})")
    return EXIT_OK
