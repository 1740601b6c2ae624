"""The user's own reference embeddings ("protect me"), kept locally: nothing but vectors.

One file, ``me.npz`` in the user config dir (mode 0600): for each reference an id, the date it was added, how
many faces its photo showed and a short note, and one unit vector per surrogate model. Never a photo, a crop,
a box or a file name. The index travels inside the same file (member ``index``, JSON), so that the vectors and
their index are replaced together, atomically. A damaged file is a :class:`MeStoreError` that says how to
recover (``ally me forget --all``), never a silent reset.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import threading
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .config import config_dir

ME_FILE = "me.npz"
MAX_REFERENCES = 50  # a few photos are enough; this bounds the file and the person-level objective's cost
MAX_NOTE_CHARS = 200
_ID_RE = re.compile(r"^[0-9a-f]{8}$")
_UNIT_TOLERANCE = 1e-3


class MeStoreError(ValueError):
    """The store is damaged or full, or an id is unknown; the message says what to do."""


@dataclass(frozen=True)
class Reference:
    """One reference photo's entry (its vectors are in the store, read with ``MeStore.references``)."""

    id: str
    added: str  # ISO 8601, UTC, seconds
    faces: int  # faces the photo showed (the largest was used)
    note: str
    models: tuple[str, ...]  # surrogate model ids it has a vector for

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "added": self.added, "faces": self.faces, "note": self.note,
                "models": list(self.models)}


def me_path() -> Path:
    return config_dir() / ME_FILE


class MeStore:
    """The reference embeddings of the user, in ``path`` (default: ``me.npz`` in the config dir)."""

    def __init__(self, path: Path | None = None):
        self.path = path or me_path()
        self._lock = threading.Lock()

    # -- reading --------------------------------------------------------------------------------------------

    def list(self) -> list[Reference]:
        """Every reference, oldest first."""
        index, _ = self._read()
        return index

    def references(self, model_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """{model id: [R,D] float32 unit rows}, one row per reference that has a vector of that model, for each of
        ``model_ids`` with at least one (a model added after the photos has none: add the photos again)."""
        index, vectors = self._read()
        out: dict[str, np.ndarray] = {}
        for model in model_ids:
            rows = [vectors[(ref.id, model)] for ref in index if (ref.id, model) in vectors]
            if rows:
                out[model] = np.stack(rows).astype(np.float32)
        return out

    # -- writing --------------------------------------------------------------------------------------------

    def add(self, embeddings: Mapping[str, np.ndarray], *, faces: int = 1, note: str = "") -> Reference:
        """Store one reference: ``embeddings`` {model id: [D]} (normalised here), nothing else of the photo."""
        if not embeddings:
            raise MeStoreError("no embedding to store")
        clean: dict[str, np.ndarray] = {}
        for model, vector in embeddings.items():
            v = np.asarray(vector, dtype=np.float32).reshape(-1)
            norm = float(np.linalg.norm(v))
            if not _model_id_ok(model) or v.size == 0 or not np.isfinite(v).all() or norm == 0.0:
                raise MeStoreError(f"not a usable embedding for model {model!r}")
            clean[model] = v / norm
        with self._lock:
            index, vectors = self._read()
            if len(index) >= MAX_REFERENCES:
                raise MeStoreError(f"at most {MAX_REFERENCES} reference photos; forget some first (ally me forget)")
            taken = {ref.id for ref in index}
            rid = secrets.token_hex(4)
            while rid in taken:
                rid = secrets.token_hex(4)
            added = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            ref = Reference(rid, added, int(faces), str(note)[:MAX_NOTE_CHARS], tuple(sorted(clean)))
            vectors.update({(rid, model): v for model, v in clean.items()})
            self._write([*index, ref], vectors)
            return ref

    def forget(self, ref_id: str) -> Reference:
        """Remove one reference; :class:`MeStoreError` if there is none with ``ref_id``."""
        with self._lock:
            index, vectors = self._read()
            found = next((ref for ref in index if ref.id == ref_id), None)
            if found is None:
                known = ", ".join(ref.id for ref in index) or "none"
                raise MeStoreError(f"no reference {ref_id!r} (references: {known})")
            keep = [ref for ref in index if ref.id != ref_id]
            self._write(keep, {k: v for k, v in vectors.items() if k[0] != ref_id})
            return found

    def forget_all(self) -> int:
        """Remove every reference (and the file, even a damaged one); returns how many were listed."""
        with self._lock:
            try:
                count = len(self._read()[0])
            except MeStoreError:
                count = 0
            self.path.unlink(missing_ok=True)
            return count

    # -- the file -------------------------------------------------------------------------------------------

    def _damaged(self, why: str) -> MeStoreError:
        return MeStoreError(f"{self.path} is damaged ({why}); `ally me forget --all` removes it, then add your "
                            "photos again")

    def _read(self) -> tuple[list[Reference], dict[tuple[str, str], np.ndarray]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], {}
        except OSError as e:
            raise MeStoreError(f"cannot read {self.path}: {e.strerror or e}") from None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                members = {name: archive[name] for name in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise self._damaged(f"not a readable archive: {type(e).__name__}") from None
        raw = members.pop("index", None)
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
            raise self._damaged("no index")
        try:
            entries = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._damaged("the index is not JSON") from None
        index: list[Reference] = []
        vectors: dict[tuple[str, str], np.ndarray] = {}
        if not isinstance(entries, list):
            raise self._damaged("the index is not a list")
        for entry in entries:
            ref = _reference(entry)
            if ref is None or any(r.id == ref.id for r in index):
                raise self._damaged("an index entry is malformed")
            for model in ref.models:
                v = members.pop(f"{ref.id}/{model}", None)
                if v is None or v.dtype != np.float32 or v.ndim != 1 or v.size == 0 or not np.isfinite(v).all() \
                        or abs(float(np.linalg.norm(v)) - 1.0) > _UNIT_TOLERANCE:
                    raise self._damaged(f"reference {ref.id} has no valid {model} vector")
                vectors[(ref.id, model)] = v
            index.append(ref)
        if members:
            raise self._damaged("it holds data that no index entry names")
        return index, vectors

    def _write(self, index: list[Reference], vectors: Mapping[tuple[str, str], np.ndarray]) -> None:
        if not index:
            self.path.unlink(missing_ok=True)
            return
        members = {f"{rid}/{model}": v for (rid, model), v in vectors.items()}
        text = json.dumps([ref.as_dict() for ref in index], separators=(",", ":"))
        members["index"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **members)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(buffer.getvalue())
                fp.flush()
                os.fsync(fp.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _model_id_ok(model: object) -> bool:
    return isinstance(model, str) and bool(re.match(r"^[A-Za-z0-9._-]{1,64}$", model))


def _reference(entry: object) -> Reference | None:
    if not isinstance(entry, dict) or set(entry) != {"id", "added", "faces", "note", "models"}:
        return None
    rid, added, faces, note, models = (entry[k] for k in ("id", "added", "faces", "note", "models"))
    if not (isinstance(rid, str) and _ID_RE.match(rid) and isinstance(added, str) and len(added) <= 40
            and isinstance(faces, int) and not isinstance(faces, bool) and faces >= 1
            and isinstance(note, str) and len(note) <= MAX_NOTE_CHARS
            and isinstance(models, list) and models and all(_model_id_ok(m) for m in models)
            and len(set(models)) == len(models)):
        return None
    return Reference(rid, added, faces, note, tuple(models))
