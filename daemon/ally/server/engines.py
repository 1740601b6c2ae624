"""What the daemon computes with, behind small interfaces so that tests inject tiny fakes.

``ImageEngine`` is what :class:`ally.engine.Engine` already is; ``TextProtector`` is the interface the text
protection (``ally.text``) provides. The work functions here turn a request's bytes or text into a job's
output: decode, protect, encode, all inside the worker thread, nothing written anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Protocol

import numpy as np

from ..enrol import Enrolment, NoFaceError
from ..imaging.errors import ImageError
from ..imaging.io import LoadedImage, load_image
from ..imaging.serve import encode_served, prepare, round_trip
from ..levels import Level
from ..me import MeStore, MeStoreError
from ..protections import DEFAULT_PROTECTIONS, METADATA, PROTECTIONS, format_protections
from ..sites import SiteProfile, load_sites
from .errors import ErrorCode, ProtocolError
from .jobs import JobOutput, Progress

logger = logging.getLogger(__name__)

# Where the text protection lives (issue 5): a module with ``create_protector(config) -> TextProtector``.
TEXT_PROTECTOR_FACTORY = ("ally.text", "create_protector")
_OUTPUT_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


class PhotoResult(Protocol):
    @property
    def rgb(self) -> Any: ...  # uint8 H x W x 3

    @property
    def faces(self) -> Sequence[Any]: ...

    @property
    def reports(self) -> Sequence[Any]: ...  # each with .similarity: dict[model id, float]

    @property
    def cloaked(self) -> bool: ...


class ImageEngine(Protocol):
    device: Any  # torch.device or a device name

    def warm_up(self) -> None: ...
    def protect(self, image: LoadedImage, level: Level, progress: Progress | None = None, *,
                protections: frozenset[str] = DEFAULT_PROTECTIONS, site: SiteProfile | None = None,
                written: Callable[[np.ndarray], np.ndarray] | None = None, only_me: bool | None = None) -> PhotoResult: ...
    def enrol(self, image: LoadedImage) -> Enrolment: ...


class TextResult(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def changes(self) -> Sequence[Any]: ...  # dicts or dataclasses, sent as JSON objects


class TextProtector(Protocol):
    device: Any

    def protect(self, text: str, level: Level, progress: Progress | None = None) -> TextResult: ...


def device_name(engine: Any) -> str:
    """The lane an engine's jobs go to: the device type (``cuda``, ``mps``, ``cpu``)."""
    device = getattr(engine, "device", "cpu")
    return str(getattr(device, "type", device))


class LazyEngine:
    """An engine built on first use (the CPU fallback after an out-of-memory), thread-safely, once."""

    def __init__(self, factory: Callable[[], ImageEngine]):
        self._factory = factory
        self._engine: ImageEngine | None = None
        self._lock = threading.Lock()

    def get(self) -> ImageEngine:
        with self._lock:
            if self._engine is None:
                self._engine = self._factory()
            return self._engine


@dataclass
class Engines:
    """The engines of one daemon, their warm-up state and what they can do."""

    image: ImageEngine | None
    text: TextProtector | None = None
    cpu_fallback: LazyEngine | None = None  # for the image engine when it runs out of device memory
    model_ids: tuple[str, ...] = ()
    text_unavailable_reason: str = "no text protector is installed"
    state: str = "loading"  # loading | ready | failed
    error: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def devices(self) -> tuple[str, ...]:
        found = [device_name(e) for e in (self.image, self.text) if e is not None]
        return tuple(dict.fromkeys(found)) or ("cpu",)

    @property
    def device(self) -> str:
        """The main device (the image engine's)."""
        return self.devices[0]

    def warm_up(self) -> None:
        """Load every model now (in a thread), so that the first job does not wait for it.

        The image engine failing fails the daemon (``state``); the text protector failing only makes
        ``protect.text`` unavailable, with the reason, so that photos are still protected.
        """
        warm = getattr(self.image, "warm_up", None)
        if warm is not None:
            warm()
        warm = getattr(self.text, "warm_up", None)
        if warm is not None:
            try:
                warm()
            except Exception as e:  # missing text models, a failed first-use training: reported, not fatal
                self.text, self.text_unavailable_reason = None, f"the text models could not be loaded: {e}"
                logger.error("text protection is unavailable: %s", e)

    async def start(self) -> None:
        """Warm up in a worker thread; jobs wait on ``ready``. A failure is kept and reported, not raised."""
        try:
            await asyncio.to_thread(self.warm_up)
            self.state = "ready"
            logger.info("models ready on %s", self.device)
        except Exception as e:  # any loader failure (missing files, no network, bad device) is reported
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"
            logger.error("loading the models failed: %s", self.error)
        finally:
            self.ready.set()

    def capabilities(self) -> dict[str, dict[str, Any]]:
        def unavailable(reason: str) -> dict[str, Any]:
            return {"available": False, "reason": reason}

        image: dict[str, Any] = unavailable("no image engine") if self.image is None else {
            "available": self.state != "failed", "device": device_name(self.image),
            "levels": [level.value for level in Level], "formats": ["same", *_OUTPUT_FORMATS],
            "protections": list(PROTECTIONS), "sites": list(load_sites())}
        if self.image is not None and self.state == "failed":
            image["reason"] = f"the models could not be loaded: {self.error}"
        text: dict[str, Any] = unavailable(self.text_unavailable_reason) if self.text is None else {
            "available": True, "device": device_name(self.text), "levels": [level.value for level in Level]}
        me: dict[str, Any] = {"available": image.get("available", False)} if self.image is not None else \
            unavailable("no image engine")
        return {"protect.image": image, "protect.text": text, "me": me, "cancel": {"available": True},
                "progress": {"available": True}}

    def check(self, kind: str) -> None:
        """Raise UNSUPPORTED / ENGINE_UNAVAILABLE if ``kind`` ("image" or "text") cannot run now."""
        if kind == "text" and self.text is None:
            raise ProtocolError(ErrorCode.UNSUPPORTED, f"text protection is unavailable: "
                                                       f"{self.text_unavailable_reason}")
        if kind == "image" and self.image is None:
            raise ProtocolError(ErrorCode.UNSUPPORTED, "this daemon has no image engine")
        if self.state == "failed":
            raise ProtocolError(ErrorCode.ENGINE_UNAVAILABLE, f"the models could not be loaded: {self.error}")


def load_text_protector(config: Any) -> tuple[TextProtector | None, str]:
    """The installed text protector and "" , or None and why there is none."""
    module_name, attr = TEXT_PROTECTOR_FACTORY
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            return None, "no text protector is installed"
        raise
    factory = getattr(module, attr, None)
    if factory is None:
        return None, f"{module_name} has no {attr}()"
    return factory(config), ""


# -- work ---------------------------------------------------------------------------------------------------


def output_format(requested: str, source_format: str) -> str | None:
    """Pillow format to write: the source's unless asked otherwise; GIF (read-only) becomes PNG."""
    if requested != "same":
        return _OUTPUT_FORMATS[requested]
    return "PNG" if source_format == "GIF" else None


def image_work(
    engine: Callable[[], ImageEngine], payload: bytes, level: Level, fmt: str,
    protections: frozenset[str] = DEFAULT_PROTECTIONS, site: SiteProfile | None = None, full_size: bool = False,
    only_me: bool = False,
) -> Callable[[Progress], JobOutput]:
    """Decode ``payload``, bring it to ``site``'s served size (unless ``full_size``; ``ally.imaging.serve``, as
    ``ally protect --site`` does), protect it with ``engine()``, encode it; the result for ``protect.image``.

    Without ``metadata`` in ``protections`` the photo keeps its metadata (the original file itself when its pixels
    did not change and it was not resized), as ``ally protect`` does."""
    keep = METADATA not in protections

    def work(progress: Progress) -> JobOutput:
        started = time.monotonic()
        protector = engine()
        try:
            image = load_image(payload)
            served = prepare(image, site=site, full_size=full_size, format=_OUTPUT_FORMATS.get(fmt))
            result = protector.protect(served.image, level, progress, protections=protections, site=site,
                                       written=round_trip(served), only_me=only_me)
            written = encode_served(result.rgb, served, keep_metadata=keep)
        except ImageError as e:
            raise ProtocolError.from_image_error(e) from None
        similarity = [max(r.similarity.values()) for r in result.reports if getattr(r, "similarity", None)]
        return JobOutput(
            {"image": {"bytes": len(written.data), "type": written.mime, "width": served.image.width,
                       "height": served.image.height},
             "level": level.value, "faces": len(result.faces), "cloaked": bool(result.cloaked),
             "similarity": [round(float(s), 4) for s in similarity],
             "receipt": [r.as_dict() for r in getattr(result, "receipts", [])],
             "protect": format_protections(protections).split(","),
             "expression_receipt": [r.as_dict() for r in getattr(result, "expression_receipts", [])],
             "device": device_name(protector),
             "elapsed_ms": round((time.monotonic() - started) * 1000),
             "served": {**served.as_dict(), "format": written.format, "quality": written.quality}},
            written.data,
        )

    return work


def enrol_work(engine: Callable[[], ImageEngine], payload: bytes, store: MeStore) -> Callable[[Progress], JobOutput]:
    """Decode ``payload``, embed its largest face, store only the embeddings; the result for ``me.add``."""

    def work(progress: Progress) -> JobOutput:
        progress("finding your face", 0.0)
        try:
            enrolment = engine().enrol(load_image(payload))
        except ImageError as e:
            raise ProtocolError.from_image_error(e) from None
        except NoFaceError as e:
            raise ProtocolError(ErrorCode.NO_FACE, str(e)) from None
        progress("storing the embeddings", 1.0)
        try:
            ref = store.add(enrolment.embeddings, faces=enrolment.faces, note=enrolment.note)
            count = len(store.list())
        except MeStoreError as e:
            raise ProtocolError(ErrorCode.ME_STORE, str(e)) from None
        return JobOutput({"reference": ref.as_dict(), "count": count})

    return work


def _change(change: Any) -> dict[str, Any]:
    if isinstance(change, dict):
        return change
    if is_dataclass(change) and not isinstance(change, type):
        return asdict(change)
    return {"description": str(change)}


def text_work(protector: TextProtector, text: str, level: Level) -> Callable[[Progress], JobOutput]:
    """Protect ``text``; the result for ``protect.text``."""

    def work(progress: Progress) -> JobOutput:
        started = time.monotonic()
        result = protector.protect(text, level, progress)
        out = {"text": result.text, "level": level.value, "changes": [_change(c) for c in result.changes],
               "device": device_name(protector), "elapsed_ms": round((time.monotonic() - started) * 1000)}
        report = getattr(result, "report", None)
        if callable(report):  # what still shows (issue 11): goal, stated facts left, held-out readers
            out["report"] = report()
        return JobOutput(out)

    return work
