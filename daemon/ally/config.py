"""The one config loader: ``config.toml`` in the user config dir (``ALLY_CONFIG_DIR`` overrides the dir).

Unknown keys and wrong types are errors, not silently ignored. The per-user decoy seed is created on first
use and written back, so that every photo of one user is pushed toward the same wrong identity.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

import platformdirs

from .levels import Level
from .protections import DEFAULT_PROTECTIONS, EXPRESSION_TARGETS, PROTECTIONS, ProtectionsError, parse_protections

CONFIG_ENV = "ALLY_CONFIG_DIR"
DEFAULT_SURROGATES = ("faceres", "faceres-deep", "mobileface", "mobilefacenet")  # three families
EXPRESSION_SURROGATES = ("fer-minixception", "human-emotion")  # attacked when the expression is hidden
HELD_OUT_READER = "faceapi-expression"  # the emotion receipt's and the eval's reader; never attacked
DEFAULT_PORT = 28417  # the daemon's; below the ephemeral port ranges of Linux (32768+), macOS and Windows


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    level: Level = Level.MEDIUM
    device: str = "auto"  # auto | cpu | cuda | mps
    surrogates: tuple[str, ...] = DEFAULT_SURROGATES
    decoy: bool = True
    decoy_seed: str = ""  # hex; created on first use
    port: int = DEFAULT_PORT  # the daemon's port on 127.0.0.1 (`ally serve --port` overrides)
    extension_ids: tuple[str, ...] = ()  # if set, only these browser extensions may pair with the daemon
    protect: frozenset[str] = DEFAULT_PROTECTIONS  # what a photo gets by default: faces, emotion, metadata
    expression_target: str = "away"  # with emotion: away from the face's own expression, or toward "neutral"
    only_me: bool = False  # "protect me": cloak only the faces that match the user's references (ally me add)


def config_dir() -> Path:
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else Path(platformdirs.user_config_dir("ally"))


def config_path() -> Path:
    return config_dir() / "config.toml"


def _coerce(name: str, value: object) -> object:
    if name == "level":
        if not isinstance(value, str):
            raise ConfigError("level must be a string")
        return Level.parse(value)
    if name == "surrogates":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value) and value):
            raise ConfigError("surrogates must be a non-empty list of model ids")
        return tuple(value)
    if name == "port":
        if not (isinstance(value, int) and not isinstance(value, bool) and 1024 <= value <= 65535):
            raise ConfigError("port must be a whole number from 1024 to 65535")
        return value
    if name == "extension_ids":
        if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise ConfigError("extension_ids must be a list of extension ids")
        return tuple(value)
    if name == "protect":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"protect must be a list of protections, e.g. [\"faces\", \"metadata\"] "
                              f"(choose from: {', '.join(PROTECTIONS)})")
        if len(set(value)) != len(value):
            raise ConfigError("protect names a protection twice")
        try:
            return parse_protections(value)
        except ProtectionsError as e:
            raise ConfigError(f"protect: {e}") from None
    if name == "expression_target":
        if value not in EXPRESSION_TARGETS:
            raise ConfigError(f"expression_target must be one of {', '.join(EXPRESSION_TARGETS)}")
        return value
    if name in ("decoy", "only_me"):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if name in ("device", "decoy_seed"):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string")
        if name == "device" and value not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError("device must be one of auto, cpu, cuda, mps")
        return value
    raise ConfigError(f"unknown setting {name!r}")


def load_config(path: Path | None = None) -> Config:
    """Read the config (defaults where absent), creating the decoy seed if there is none yet."""
    path = path or config_path()
    values: dict[str, object] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from e
        values = {k: _coerce(k, v) for k, v in raw.items()}
    config = Config(**values)
    if not config.decoy_seed:
        config = replace(config, decoy_seed=secrets.token_hex(16))
        save_config(config, path)
    return config


def config_for(args: argparse.Namespace) -> Config:
    """The user's config, with a command's overrides applied (its ``--device``, ``--protect`` and
    ``--expression-target``, where the command has them and they were given)."""
    config = load_config()
    if getattr(args, "device", None):
        config = replace(config, device=args.device)
    if getattr(args, "protect", None):
        config = replace(config, protect=args.protect)
    if getattr(args, "expression_target", None):
        config = replace(config, expression_target=args.expression_target)
    return config


def save_config(config: Config, path: Path | None = None) -> None:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for f in fields(Config):
        v = getattr(config, f.name)
        if isinstance(v, Level):
            lines.append(f'{f.name} = "{v.value}"')
        elif isinstance(v, bool):
            lines.append(f"{f.name} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            lines.append(f"{f.name} = {v}")
        elif isinstance(v, (tuple, frozenset)):
            items = [p for p in PROTECTIONS if p in v] if isinstance(v, frozenset) else v  # canonical order
            lines.append(f"{f.name} = [{', '.join(repr(s).replace(chr(39), chr(34)) for s in items)}]")
        else:
            lines.append(f'{f.name} = "{v}"')
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
