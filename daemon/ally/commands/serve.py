"""``ally serve``: run the local daemon for the browser extension (127.0.0.1 only; see daemon/PROTOCOL.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from ..config import Config, config_dir, config_for, load_config, save_config
from ..server.app import create_app, start_server
from ..server.engines import Engines, LazyEngine, load_text_protector
from ..server.keys import DaemonSettings
from ..server.store import StoreError, default_store

EXIT_OK, EXIT_FAILED = 0, 1
RUNTIME_FILE = "daemon.json"  # pid and port of the running daemon, for `ally status`

logger = logging.getLogger("ally.serve")


def runtime_path() -> Path:
    return config_dir() / RUNTIME_FILE


def build_engines(config: Config) -> Engines:
    """The real engines: faces on the best device (CUDA, then MPS, then CPU), a CPU fallback, text if installed."""
    import torch

    from ally_models.cache import default_cache

    from ..engine import Engine

    cache = default_cache()
    engine = Engine(config, cache)
    fallback = None
    if engine.device.type != "cpu":
        fallback = LazyEngine(lambda: Engine(config, cache, device=torch.device("cpu")))
    text, reason = load_text_protector(config)
    return Engines(engine, text, cpu_fallback=fallback, model_ids=("mtcnn", *config.surrogates),
                   text_unavailable_reason=reason or "")


def _persist(settings: DaemonSettings) -> None:
    save_config(replace(load_config(), level=settings.level, only_me=settings.only_me))


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_for(args)
    port = args.port or config.port
    try:
        store = default_store()
        engines = build_engines(config)
        settings = DaemonSettings(level=config.level, extension_ids=config.extension_ids, protect=config.protect,
                                  only_me=config.only_me, on_change=_persist)
        app = create_app(engines, store, settings=settings)
        return asyncio.run(_serve(app, port, engines, store.describe()))
    except StoreError as e:
        print(f"ally: error: {e}", file=sys.stderr)
        return EXIT_FAILED


async def _serve(app: web.Application, port: int, engines: Engines, store: str) -> int:
    try:
        server = await start_server(app, port)
    except OSError as e:
        print(f"ally: error: cannot listen on 127.0.0.1:{port}: {e.strerror or e} "
              "(is the daemon already running? see `ally status`)", file=sys.stderr)
        return EXIT_FAILED
    runtime = runtime_path()
    runtime.parent.mkdir(parents=True, exist_ok=True)
    runtime.write_text(json.dumps({"pid": os.getpid(), "port": server.port}))
    print(f"ally daemon on {server.url} (device {engines.device}; loading models...)", flush=True)
    print(f"secrets: {store}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # Windows: Ctrl+C cancels the main task instead (asyncio.run)
            logger.debug("no handler for %s on this platform", sig.name)
    try:
        await stop.wait()
    finally:
        print("ally daemon stopping: finishing running jobs...", flush=True)
        await server.stop()
        runtime.unlink(missing_ok=True)
        print("ally daemon stopped", flush=True)
    return EXIT_OK
