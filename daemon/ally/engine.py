"""The protection engine: models loaded once and kept warm, photos in, protected photos out.

The CLI and the daemon both go through ``Engine``; neither knows how a protection is composed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from ally_models.cache import ModelCache, default_cache
from ally_models.dlib_runtime import DlibFaceRecognizer

from .config import Config
from .device import best_device
from .enrol import Enrolment, embed_face, largest_face
from .faces.detect import Face, FaceDetector
from .me import MeStore
from .imaging.io import LoadedImage, load_image, save_image
from .levels import FACE_CLOAK, CloakSettings, Level
from .eval.evaluators import DlibEvaluator
from .expressions import EXPRESSION_SURROGATES, HELD_OUT_READER, BoxReader, load_reader
from .protect import receipt
from .protect.face_cloak import FaceCloak, FaceReport
from .protect.receipt import ExpressionReceipt, FaceReceipt
from .protections import DEFAULT_PROTECTIONS, EMOTION, FACES
from .sites import SiteProfile
from .surrogates import AlignedRecognizer, decoy_embeddings, load_aligned

Progress = Callable[[str, float], None]  # (stage, fraction done of the whole photo in [0, 1])


@dataclass(frozen=True)
class PhotoProtection:
    rgb: np.ndarray  # uint8 H×W×3, upright
    level: Level
    faces: list[Face]
    reports: list[FaceReport] = field(default_factory=list)
    receipts: list[FaceReceipt] = field(default_factory=list)  # per cloaked face: a held-out recognizer's check
    protections: frozenset[str] = DEFAULT_PROTECTIONS  # what was asked for: faces, emotion, metadata
    expression_receipts: list[ExpressionReceipt] = field(default_factory=list)  # per face, with emotion
    site: SiteProfile | None = None  # the site the photo goes to (already resized to its size by the caller)

    @property
    def still_matched(self) -> int:
        """Faces the receipt's recognizer still matches to the original after the site's JPEG and resize."""
        return sum(r.matched for r in self.receipts)

    @property
    def still_read(self) -> int:
        """Faces whose clean expression a held-out expression reader still reads after the site."""
        return sum(r.found and not r.changed for r in self.expression_receipts)

    @property
    def cloaked(self) -> bool:
        return bool(self.reports)


def written_pixels(like: LoadedImage, fmt: str | None = None, quality: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The round trip through the encoder the protected photo will be written with (``ally protect``, the
    daemon): the visibility floor is checked on these pixels, not on the ones before encoding."""

    def written(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        save_image(rgb, like, buf, quality=quality, format=fmt or ("PNG" if like.format == "GIF" else None))
        return load_image(buf.getvalue()).rgb

    return written


class Engine:
    """Holds the detector and the surrogate ensemble; thread-safe for one protection at a time per engine."""

    def __init__(self, config: Config, cache: ModelCache | None = None, device: torch.device | None = None,
                 levels: Mapping[Level, CloakSettings] = FACE_CLOAK):
        self.config = config
        self.cache = cache or default_cache()
        self.device = device or best_device(config.device)
        self.levels = levels  # the level table; benchmarks pass others (e.g. Fawkes' published settings)
        self._lock = threading.Lock()

    @cached_property
    def detector(self) -> FaceDetector:
        files = self.cache.files("mtcnn", pull=True)
        return FaceDetector(files["pnet.pt"], files["rnet.pt"], files["onet.pt"])

    @cached_property
    def surrogates(self) -> list[AlignedRecognizer]:
        return [load_aligned(mid, self.cache, self.device) for mid in self.config.surrogates]

    @cached_property
    def decoys(self) -> list[torch.Tensor] | None:
        if not self.config.decoy:
            return None
        return decoy_embeddings(self.config.decoy_seed, self.surrogates, self.device)

    references: list[torch.Tensor] | None | bool = True  # True: read the user's store at each photo (see below)

    def user_references(self) -> list[torch.Tensor] | None:
        """The user's enrolled reference embeddings ("protect me", ``ally me add``), one [R,D] per surrogate; None
        when there are none for some surrogate (photos added before it was: they must be added again). Read at
        each photo, so that ``ally me`` and the daemon's ``me.*`` take effect at once. ``references`` set to a
        list (or None) overrides the store (the evaluation enrols each person's own photos)."""
        if self.references is not True:
            return self.references  # type: ignore[return-value]
        refs = MeStore().references(s.model_id for s in self.surrogates)
        if not refs or any(s.model_id not in refs for s in self.surrogates):
            return None
        return [torch.from_numpy(refs[s.model_id]).float().to(self.device) for s in self.surrogates]

    @cached_property
    def receipt_recognizer(self) -> DlibEvaluator | None:
        """dlib's recognizer in its own runtime, or None where dlib is not installed (then no receipt)."""
        files = self.cache.files(receipt.RECEIPT_MODEL, pull=True)
        try:  # dlib itself is imported when the runtime is built
            return DlibEvaluator(DlibFaceRecognizer(files["recognizer.dat"], files["shape5.dat"]))
        except ImportError:
            return None

    @cached_property
    def expression_readers(self) -> list[BoxReader]:
        """The surrogate expression readers (attacked when the expression is hidden)."""
        return [load_reader(mid, self.cache, self.device) for mid in EXPRESSION_SURROGATES]

    @cached_property
    def receipt_reader(self) -> BoxReader:
        """An expression reader of another lineage, never attacked: the emotion receipt's."""
        return load_reader(HELD_OUT_READER, self.cache, self.device)

    def warm_up(self) -> None:
        """Load every model now rather than on the first photo."""
        _ = self.detector, self.surrogates, self.decoys, self.receipt_recognizer
        _ = self.expression_readers, self.receipt_reader

    def enrol(self, image: LoadedImage) -> Enrolment:
        """The user's reference for "protect me": the largest face of ``image`` embedded by every surrogate (unit
        vectors, ``.embeddings``: {model id: [D]}); ``.faces`` says how many were found. Raises
        ``ally.enrol.NoFaceError`` when there is no face. Nothing of the photo is kept."""
        with self._lock:
            faces = self.detector.detect(image.rgb)
            face = largest_face(faces)
            embeddings = embed_face(image.rgb, face, self.surrogates, self.device)
            return Enrolment(embeddings, len(faces), face.box)

    def protect(self, image: LoadedImage, level: Level, progress: Progress | None = None, *,
                with_receipt: bool = True, protections: frozenset[str] = DEFAULT_PROTECTIONS,
                site: SiteProfile | None = None, written: Callable[[np.ndarray], np.ndarray] | None = None,
                only_me: bool | None = None) -> PhotoProtection:
        """Cloak every face found in ``image`` (upright RGB) as ``protections`` asks: against face recognition
        (``faces``), emotion recognition (``emotion``), or both with one perturbation; with no face, or neither,
        return the pixels unchanged (``metadata`` is the writer's job).

        With ``with_receipt``, each cloaked face is checked by a recognizer and, with ``emotion``, by an expression
        reader outside the ensembles (see ``ally.protect.receipt``). ``site``: where the photo goes, already
        resized to the site's size (``ally.imaging.serve.prepare``); kept on the result. ``written``: the round trip
        through the encoder the photo will be written with (``ally.imaging.serve.round_trip``; default: the image's
        own format), on which the visibility floor is checked. ``only_me``: cloak only the faces that match the
        user's references (default: the config's ``only_me``)."""
        with self._lock:
            if progress:
                progress("detecting faces", 0.0)
            faces = self.detector.detect(image.rgb)
            if level is Level.OFF or not faces or not protections & {FACES, EMOTION}:
                return PhotoProtection(image.rgb, level, faces, protections=protections, site=site)
            identity, emotion = FACES in protections, EMOTION in protections
            references = self.user_references() if identity else None
            only_me = self.config.only_me if only_me is None else only_me
            cloak = FaceCloak(
                self.surrogates if identity else [], self.levels[level], decoys=self.decoys, device=self.device,
                readers=self.expression_readers if emotion else (), identity=identity,
                expression=self.config.expression_target if emotion else None,
                references=references, only_me=references is not None and bool(only_me),
            )

            def on_step(_face: int, count: int, step: int, steps: int) -> None:
                if progress:
                    noun = "face" if count == 1 else "faces"
                    progress(f"cloaking {count} {noun}", step / steps)

            result = cloak.protect(image.rgb, faces, on_step, written=written or written_pixels(image))
            receipts, expression_receipts = [], []
            if with_receipt and identity and self.receipt_recognizer is not None:
                if progress:
                    progress("checking with a held-out recognizer", 1.0)
                receipts = receipt.check(self.receipt_recognizer, DlibFaceRecognizer.THRESHOLD, image.rgb, result.rgb,
                                         faces, result.faces)
            if with_receipt and emotion:
                if progress:
                    progress("checking with a held-out expression reader", 1.0)
                expression_receipts = receipt.check_expressions(self.receipt_reader, self.detector.detect, image.rgb,
                                                                result.rgb, faces)
            return PhotoProtection(result.rgb, level, faces, result.faces, receipts, protections, expression_receipts,
                                   site)
