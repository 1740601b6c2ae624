"""The labelled real photos of ``faces-eval`` (model cache) as probes and galleries for verification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ally_models.cache import ModelCache
from ally_models.registry import load_dataset_labels

DATASET = "faces-eval"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledFace:
    photo: str  # photo id
    index: int  # position in the photo's face list
    box: Box
    identity: str

    @property
    def key(self) -> str:
        return f"{self.photo}#{self.index}"


@dataclass(frozen=True)
class LabelledPhoto:
    id: str
    path: Path
    faces: tuple[LabelledFace, ...]
    near_duplicate_of: str | None


@dataclass(frozen=True)
class EvalSet:
    photos: dict[str, LabelledPhoto]
    identities: dict[str, dict]

    def gallery(self, face: LabelledFace) -> list[LabelledFace]:
        """Other photos of the same person: the same identity, not this face, not a near-duplicate shot.

        Faces of one collage (several faces of one identity in one file, e.g. dlib's bald_guys) are separate
        photos, so the other tiles of the same person count.
        """
        mine = self.photos[face.photo]
        out = []
        for photo in self.photos.values():
            if photo.id in (mine.near_duplicate_of,) or photo.near_duplicate_of == mine.id:
                continue
            out.extend(f for f in photo.faces if f.identity == face.identity and f.key != face.key)
        return out

    def probes(self, per_identity: int | None) -> list[LabelledPhoto]:
        """Photos to protect: those with a face that has a gallery; at most ``per_identity`` photos per person
        (in label-file order, so the choice is fixed)."""
        chosen: list[LabelledPhoto] = []
        counts: dict[str, int] = {}
        for photo in self.photos.values():
            wanted = [f for f in photo.faces if self.gallery(f)
                      and (per_identity is None or counts.get(f.identity, 0) < per_identity)]
            if not wanted:
                continue
            chosen.append(photo)
            for identity in {f.identity for f in wanted}:
                counts[identity] = counts.get(identity, 0) + 1
        return chosen


def load_eval_set(cache: ModelCache) -> EvalSet:
    """The labels shipped with the package and the photos from the cache (pulled and verified if needed)."""
    labels = load_dataset_labels(DATASET)
    files = cache.files(DATASET, pull=True)
    photos = {}
    for p in labels["photos"]:
        faces = tuple(LabelledFace(p["id"], i, tuple(map(float, f["box"])), f["identity"])  # type: ignore[arg-type]
                      for i, f in enumerate(p["faces"]))
        photos[p["id"]] = LabelledPhoto(p["id"], files[p["id"] + Path(p["path"]).suffix.lower()], faces,
                                        p.get("near_duplicate_of"))
    return EvalSet(photos, labels["identities"])
