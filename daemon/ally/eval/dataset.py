"""The labelled real photos of ``faces-eval`` (model cache) as probes and galleries for verification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ally_models.cache import ModelCache
from ally_models.registry import load_dataset_labels

DATASET = "faces-eval"
SPLITS = ("tune", "report")
CHIP_PX = 150  # dlib's aligned face chips (150 × 150 files): a probe type of their own

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
    size: tuple[int, int] = (0, 0)  # width, height

    @property
    def kind(self) -> str:
        """Probe type: ``chip`` (dlib's 150 px aligned face chips) or ``photo`` (anything larger)."""
        return "chip" if max(self.size) <= CHIP_PX else "photo"


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

    def split(self, name: str) -> set[str]:
        """The identities of one half: ``tune`` (to choose settings on) or ``report`` (to report on), or ``all``.

        Only people with at least two faces can be measured; sorted by id, they alternate tune, report, tune…
        (fixed by the label file, balanced in count; a photo's other people stay in it as bystanders).
        """
        usable = sorted({f.identity for p in self.photos.values() for f in p.faces if self.gallery(f)})
        if name == "all":
            return set(usable)
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}, all")
        return set(usable[SPLITS.index(name)::2])

    def probes(self, per_identity: int | None, identities: set[str] | None = None) -> list[LabelledPhoto]:
        """Photos to protect: those with a face that has a gallery; at most ``per_identity`` photos per person
        (in label-file order, so the choice is fixed); only people in ``identities`` when given."""
        chosen: list[LabelledPhoto] = []
        counts: dict[str, int] = {}
        for photo in self.photos.values():
            wanted = [f for f in photo.faces if self.gallery(f)
                      and (identities is None or f.identity in identities)
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
        path = files[p["id"] + Path(p["path"]).suffix.lower()]
        with Image.open(path) as im:
            size = im.size
        photos[p["id"]] = LabelledPhoto(p["id"], path, faces, p.get("near_duplicate_of"), size)
    return EvalSet(photos, labels["identities"])
