"""Where the daemon keeps its secrets: the OS keyring, else a file only the user can read.

The OS keyring (macOS Keychain, Windows Credential Locker, the Secret Service on Linux desktops) is used when
``keyring`` finds a secure backend (priority >= 1). Otherwise (a headless Linux box, no D-Bus session) the
secrets go to ``secrets.json`` in the config dir with 0600 permissions; ``ally status`` says which.
``ALLY_SECRET_STORE=file`` forces the file.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Protocol

import keyring
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend
from keyring.errors import KeyringError, PasswordDeleteError

from ..config import config_dir

logger = logging.getLogger(__name__)

SERVICE = "ally"
STORE_ENV = "ALLY_SECRET_STORE"  # "file" forces the file store
SECRETS_FILE = "secrets.json"
# keyring's own scale: OS keyrings rank 5, insecure stand-ins (plaintext files, "fail") rank below 1.
SECURE_PRIORITY = 1.0


class StoreError(RuntimeError):
    """The secret store cannot be read or written (locked keyring, bad permissions, damaged file)."""


class SecretStore(Protocol):
    kind: str  # "keyring" | "file"
    secure: bool  # an OS keyring (encrypted at rest, per-user)

    def describe(self) -> str: ...
    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> None: ...


class KeyringStore:
    """Secrets in a ``keyring`` backend under the service name ``ally``."""

    kind = "keyring"

    def __init__(self, backend: KeyringBackend, *, secure: bool | None = None):
        self.backend = backend
        self.secure = _is_secure(backend) if secure is None else secure

    def describe(self) -> str:
        return f"keyring ({_backend_name(self.backend)})"

    def get(self, name: str) -> str | None:
        try:
            return self.backend.get_password(SERVICE, name)
        except KeyringError as e:
            raise StoreError(f"cannot read {name!r} from the {self.describe()}: {e}") from e

    def set(self, name: str, value: str) -> None:
        try:
            self.backend.set_password(SERVICE, name, value)
        except KeyringError as e:
            raise StoreError(f"cannot write {name!r} to the {self.describe()}: {e}") from e

    def delete(self, name: str) -> None:
        try:
            self.backend.delete_password(SERVICE, name)
        except PasswordDeleteError:
            logger.debug("%s: nothing to delete for %r", self.describe(), name)
        except KeyringError as e:
            raise StoreError(f"cannot delete {name!r} from the {self.describe()}: {e}") from e


class FileStore:
    """Secrets in one JSON file, created 0600, refused if anyone but the owner can read it."""

    kind = "file"
    secure = False

    def __init__(self, path: Path, reason: str = ""):
        self.path = path
        self.reason = reason  # why not the OS keyring

    def describe(self) -> str:
        return f"file {self.path} (mode 0600" + (f"; {self.reason})" if self.reason else ")")

    def _read(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(f"{self.path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):o}); "
                             f"fix it with: chmod 600 {self.path}")
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise StoreError(f"{self.path} is not a JSON object of strings")
        return data

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing tmp file
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write {self.path}: {e}") from e

    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        data = self._read()
        data[name] = value
        self._write(data)

    def delete(self, name: str) -> None:
        data = self._read()
        if data.pop(name, None) is not None:
            self._write(data)


def _backend_name(backend: KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def _is_secure(backend: KeyringBackend) -> bool:
    if isinstance(backend, ChainerBackend):
        return any(_is_secure(b) for b in backend.backends)
    try:
        return float(backend.priority) >= SECURE_PRIORITY
    except Exception as e:  # a backend's priority probes its service and may raise anything
        logger.debug("keyring backend %s is not usable: %s", _backend_name(backend), e)
        return False


def default_store(directory: Path | None = None) -> SecretStore:
    """The OS keyring when a secure backend exists, else the 0600 file in the config dir."""
    path = (directory or config_dir()) / SECRETS_FILE
    if os.environ.get(STORE_ENV, "").lower() == "file":
        return FileStore(path, f"{STORE_ENV}=file")
    backend = keyring.get_keyring()
    if _is_secure(backend):
        return KeyringStore(backend, secure=True)
    logger.info("no secure keyring backend (found %s); using %s", _backend_name(backend), path)
    return FileStore(path, f"no OS keyring backend: keyring offers only {_backend_name(backend)}")
