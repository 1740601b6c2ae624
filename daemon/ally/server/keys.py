"""The application's typed keys (``web.AppKey``) and the small mutable settings object.

The sessions' key, ``SESSIONS``, lives with the registry it holds, in ``session.py`` (a layer above this one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..levels import Level
from ..me import MeStore
from ..protections import DEFAULT_PROTECTIONS
from .engines import Engines
from .imagecheck import HeaderChecks
from .jobs import JobManager
from .limits import Limits
from .pairing import PairingBroker, PairingRegistry


@dataclass
class DaemonSettings:
    """What the daemon runs with; ``level`` can change at run time (``settings`` method)."""

    level: Level = Level.MEDIUM
    extension_ids: tuple[str, ...] = ()  # when set, only these extensions may pair or connect
    protect: frozenset[str] = DEFAULT_PROTECTIONS  # a protect.image request without ``protect`` gets these
    only_me: bool = False  # "protect me": cloak only the user's own face (the config's only_me; settable)
    on_change: Callable[[DaemonSettings], None] | None = None  # persists a change (the config file)
    started: float = field(default_factory=time.monotonic)


LIMITS = web.AppKey("ally.limits", Limits)
SETTINGS = web.AppKey("ally.settings", DaemonSettings)
ENGINES = web.AppKey("ally.engines", Engines)
JOBS = web.AppKey("ally.jobs", JobManager)
PAIRINGS = web.AppKey("ally.pairings", PairingRegistry)
BROKER = web.AppKey("ally.broker", PairingBroker)
LOCAL_TOKEN = web.AppKey("ally.local_token", str)
CHECKS = web.AppKey("ally.checks", HeaderChecks)
ME = web.AppKey("ally.me", MeStore)  # the user's reference embeddings ("protect me")
