"""The protection selection over a real socket (issue 12): ``protect.image``'s ``protect`` reaches the engine,
the result says what was applied and carries the expression receipt (validated by the schema), and the photo's
metadata follows the selection as in ``ally protect``. Refusals of a bad ``protect``: test_daemon_rejections.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ally.imaging.metadata import metadata_report
from ally.protections import EMOTION, FACES, METADATA
from ally.server.keys import DaemonSettings
from ally.server.protocol import validate_result

from daemon_fakes import BEHAVIOUR_STILL_READS, FAKE_READER, PNG, Daemon, decode, png_bytes, start_daemon

pytestmark = pytest.mark.asyncio


def _params(data: bytes, **extra: object) -> dict[str, object]:
    return {"image": {"bytes": len(data)}, **extra}


def _jpeg_with_gps() -> bytes:
    rgb = np.random.default_rng(7).integers(40, 220, (48, 64, 3), dtype=np.uint8)
    rgb[:8, :8] = 128  # the fake engine's behaviour marker (top-left red) stays "none" through JPEG
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


async def test_protect_reaches_the_engine_and_the_result_says_what_was_applied(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        reply = await client.request("protect.image", _params(PNG, protect=["metadata", "emotion", "faces"]),
                                     binary=PNG)
    assert daemon.image.protections[-1] == {FACES, EMOTION, METADATA}
    validate_result("protect.image", reply.result)
    assert reply.result["protect"] == ["faces", "emotion", "metadata"]  # canonical order
    [receipt] = reply.result["expression_receipt"]
    assert receipt == {"reader": FAKE_READER, "condition": "JPEG 75 + 1080 px", "found": True, "clean": "happy",
                       "clean_confidence": 0.91, "after": "neutral", "after_confidence": 0.12, "changed": True}
    assert reply.binary is not None and (decode(reply.binary) == 255 - decode(PNG)).all()


async def test_without_emotion_there_is_no_expression_receipt(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        reply = await client.request("protect.image", _params(PNG, protect=["faces"]), binary=PNG)
    assert daemon.image.protections[-1] == {FACES}
    validate_result("protect.image", reply.result)
    assert reply.result["protect"] == ["faces"] and reply.result["expression_receipt"] == []


async def test_a_face_whose_expression_is_still_read_is_reported(daemon: Daemon) -> None:
    data = png_bytes(marker=BEHAVIOUR_STILL_READS)
    async with await daemon.connect() as client:
        reply = await client.request("protect.image", _params(data, protect=["faces", "emotion"]), binary=data)
    validate_result("protect.image", reply.result)
    [receipt] = reply.result["expression_receipt"]
    assert receipt["found"] and not receipt["changed"] and receipt["after"] == receipt["clean"] == "happy"


async def test_absent_protect_is_the_daemons_configured_default(tmp_path: Path, small_limits) -> None:  # type: ignore
    d = await start_daemon(tmp_path, limits=small_limits,
                           settings=DaemonSettings(protect=frozenset({EMOTION, METADATA})))
    try:
        async with await d.connect() as client:
            reply = await client.request("protect.image", _params(PNG), binary=PNG)
        assert d.image.protections == [{EMOTION, METADATA}]
        validate_result("protect.image", reply.result)
        assert reply.result["protect"] == ["emotion", "metadata"] and len(reply.result["expression_receipt"]) == 1
    finally:
        await d.server.stop()


async def test_default_without_a_configured_selection_is_faces_and_metadata(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        reply = await client.request("protect.image", _params(PNG), binary=PNG)
    assert daemon.image.protections[-1] == {FACES, METADATA}
    assert reply.result["protect"] == ["faces", "metadata"] and reply.result["expression_receipt"] == []


async def test_metadata_not_selected_keeps_it_with_changed_pixels(daemon: Daemon) -> None:
    data = _jpeg_with_gps()
    async with await daemon.connect() as client:
        kept = await client.request("protect.image", _params(data, protect=["faces"]), binary=data)
        removed = await client.request("protect.image", _params(data, protect=["faces", "metadata"]), binary=data)
    assert kept.binary is not None and removed.binary is not None
    report = metadata_report(kept.binary)
    assert report["gps"]["GPSLatitude"] == [48.0, 51.0, 24.0] and report["exif"]["Make"] == "PhoneMaker"
    assert not metadata_report(removed.binary)["identifying"]
    assert np.abs(decode(kept.binary).astype(int) - (255 - decode(data).astype(int))).mean() < 8  # inverted


async def test_metadata_not_selected_and_pixels_unchanged_returns_the_original_file(daemon: Daemon) -> None:
    data = _jpeg_with_gps()
    async with await daemon.connect() as client:
        # emotion at level off: nothing changes the pixels, nothing removes the metadata
        same = await client.request("protect.image", _params(data, protect=["emotion"], level="off"), binary=data)
        only_metadata = await client.request("protect.image", _params(data, protect=["metadata"]), binary=data)
    assert daemon.image.protections[-2:] == [{EMOTION}, {METADATA}]
    assert same.binary == data
    assert only_metadata.binary is not None and not metadata_report(only_metadata.binary)["identifying"]
    assert np.array_equal(decode(only_metadata.binary), decode(data))  # neither faces nor emotion: pixels kept
