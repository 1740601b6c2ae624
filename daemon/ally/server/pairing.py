"""Pairing: which extensions may use the daemon, their tokens, and the user-confirmed pairing flow.

The store keeps, per paired origin, the SHA-256 of its token (the daemon only ever verifies tokens; the
extension keeps the token itself), plus the local token that lets ``ally`` commands on this machine talk to
the daemon. Tokens are 256-bit random, URL-safe (valid in a websocket subprotocol value), compared in
constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, UTC

from .errors import ErrorCode, ProtocolError
from .store import SecretStore, StoreError

logger = logging.getLogger(__name__)

PAIRINGS_KEY = "pairings"
LOCAL_TOKEN_KEY = "local-token"
TOKEN_BYTES = 32
CODE_DIGITS = 6
# Re-read the store at most this often when verifying (pairings added or revoked by `ally pair` while the
# daemon runs take effect within this delay, without a store read per handshake).
RELOAD_INTERVAL_S = 1.0


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (any characters)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class Pairing:
    origin: str  # chrome-extension://<id> or moz-extension://<uuid>
    name: str
    token_sha256: str
    created: str  # ISO 8601, UTC


class PairingRegistry:
    """The paired origins and the local token, read through to the secret store."""

    def __init__(self, store: SecretStore, *, reload_interval_s: float = RELOAD_INTERVAL_S):
        self.store = store
        self._reload_interval_s = reload_interval_s
        self._cache: dict[str, Pairing] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    # -- pairings -------------------------------------------------------------------------------------------

    def pairings(self, *, fresh: bool = True) -> dict[str, Pairing]:
        """Origin -> pairing. ``fresh=False`` may answer from a cache at most RELOAD_INTERVAL_S old."""
        with self._lock:
            now = time.monotonic()
            if fresh or self._cache is None or now - self._loaded_at > self._reload_interval_s:
                self._cache = self._load()
                self._loaded_at = now
            return dict(self._cache)

    def _load(self) -> dict[str, Pairing]:
        raw = self.store.get(PAIRINGS_KEY)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
            return {p["origin"]: Pairing(**p) for p in data["pairings"]}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise StoreError(f"the pairings in the {self.store.describe()} are damaged ({e}); "
                             "remove them with `ally pair --reset`") from e

    def _save(self, pairings: dict[str, Pairing]) -> None:
        self.store.set(PAIRINGS_KEY, json.dumps({"version": 1, "pairings": [asdict(p) for p in pairings.values()]}))
        self._cache = dict(pairings)
        self._loaded_at = time.monotonic()

    def add(self, origin: str, name: str) -> str:
        """Pair ``origin`` (replacing an older pairing of it); returns the new token, shown only now."""
        token = new_token()
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        with self._lock:
            pairings = self._load()
            pairings[origin] = Pairing(origin, name, token_digest(token), created)
            self._save(pairings)
        logger.info("paired %s (%s)", origin, name)
        return token

    def revoke(self, origin: str) -> bool:
        with self._lock:
            pairings = self._load()
            if pairings.pop(origin, None) is None:
                return False
            self._save(pairings)
        logger.info("revoked the pairing of %s", origin)
        return True

    def reset(self) -> None:
        """Forget every pairing (also a damaged list)."""
        with self._lock:
            self.store.delete(PAIRINGS_KEY)
            self._cache = {}
            self._loaded_at = time.monotonic()

    def verify(self, origin: str, token: str) -> ErrorCode | None:
        """None if ``token`` is ``origin``'s token, else why not (NOT_PAIRED or TOKEN_INVALID)."""
        pairing = self.pairings(fresh=False).get(origin)
        if pairing is None:
            return ErrorCode.NOT_PAIRED
        return None if tokens_equal(token_digest(token), pairing.token_sha256) else ErrorCode.TOKEN_INVALID

    # -- the local token ------------------------------------------------------------------------------------

    def local_token(self, *, create: bool = False) -> str | None:
        """The token of local tools (``ally status``, ``ally pair --confirm``); created on the daemon's start."""
        token = self.store.get(LOCAL_TOKEN_KEY)
        if token is None and create:
            token = new_token()
            self.store.set(LOCAL_TOKEN_KEY, token)
        return token

    def verify_local(self, token: str, expected: str | None) -> bool:
        return expected is not None and tokens_equal(token, expected)


# -- the pairing flow -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class PendingPairing:
    origin: str
    name: str
    code: str
    expires_at: float  # loop time
    on_done: Callable[[str | None, ProtocolError | None], None]  # (token, error)
    timer: asyncio.TimerHandle | None = None
    done: bool = False

    def finish(self, token: str | None, error: ProtocolError | None) -> None:
        if self.done:
            return
        self.done = True
        if self.timer:
            self.timer.cancel()
        self.on_done(token, error)


class PairingBroker:
    """Pending pairing requests, each waiting for the user to confirm its code in a terminal."""

    def __init__(self, registry: PairingRegistry, code_ttl_s: float):
        self.registry = registry
        self.code_ttl_s = code_ttl_s
        self._pending: list[PendingPairing] = []

    def begin(self, origin: str, name: str,
              on_done: Callable[[str | None, ProtocolError | None], None]) -> PendingPairing:
        """A new pending pairing with a fresh 6-digit code; ``on_done`` gets the token or the error."""
        loop = asyncio.get_running_loop()
        taken = {p.code for p in self._pending}
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        while code in taken:
            code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        pending = PendingPairing(origin, name, code, loop.time() + self.code_ttl_s, on_done)
        pending.timer = loop.call_later(self.code_ttl_s, self._expire, pending)
        self._pending.append(pending)
        logger.warning("pairing request from %s (%r): code %s; to allow it run: ally pair --confirm %s",
                       origin, name, code, code)
        return pending

    def _expire(self, pending: PendingPairing) -> None:
        self.withdraw(pending)
        pending.finish(None, ProtocolError(ErrorCode.PAIRING_FAILED, "the pairing code expired; start again"))

    def withdraw(self, pending: PendingPairing) -> None:
        """Forget a pending pairing (its session ended or it expired)."""
        if pending in self._pending:
            self._pending.remove(pending)
        if pending.timer:
            pending.timer.cancel()

    def confirm(self, code: str) -> PendingPairing:
        """Approve the pending pairing showing ``code``: pair its origin and hand its session the token."""
        match = None
        for pending in list(self._pending):  # no early exit: every code is compared
            if hmac.compare_digest(pending.code.encode(), code.encode()):
                match = pending
        if match is None:
            raise ProtocolError(ErrorCode.PAIRING_FAILED, "no pending pairing shows this code (expired or mistyped)")
        self.withdraw(match)
        try:
            token = self.registry.add(match.origin, match.name)
        except StoreError as e:
            error = ProtocolError(ErrorCode.PAIRING_FAILED, f"cannot store the pairing: {e}")
            match.finish(None, error)
            raise error from e
        match.finish(token, None)
        return match

    def pending_count(self) -> int:
        return len(self._pending)
