"""Issue 17 through the daemon, over a real socket: protect.image with a site comes back at the served size and
quality; its new params are refused at the boundary, one test per rejection; me.add / me.list / me.forget round
trip, and their errors."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from ally.imaging.serve import SERVE_JPEG_QUALITY
from ally.server.client import DaemonError
from ally.server.errors import ErrorCode
from ally.server.limits import Limits
from ally.sites import profile

from daemon_fakes import BEHAVIOUR_NO_FACE, FAKE_SURROGATES, PNG, Daemon, decode, png_bytes, start_daemon

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    limits = Limits(max_image_bytes=16 * 1024 * 1024, max_image_pixels=8_000_000, payload_deadline_s=2.0,
                    job_timeout_s=20.0, progress_interval_s=0.0)
    d = await start_daemon(tmp_path, limits=limits)
    yield d
    await d.server.stop()


def _photo(width: int, height: int, marker: int = 0) -> bytes:
    """A smooth PNG (a photo-like gradient), top-left red value ``marker``."""
    x, y = np.meshgrid(np.linspace(20, 220, width), np.linspace(20, 220, height))
    rgb = np.stack([x, y, (x + y) / 2], axis=2).astype(np.uint8)
    rgb[0, 0, 0] = marker
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


async def _protect(daemon: Daemon, data: bytes, **params: Any) -> Any:
    async with await daemon.connect() as client:
        return await client.request("protect.image", {"image": {"bytes": len(data)}, **params}, binary=data)


# -- protect.image with a site ------------------------------------------------------------------------------


async def test_protect_for_a_site_answers_with_the_served_size_and_quality(daemon: Daemon) -> None:
    reply = await _protect(daemon, _photo(2000, 1500), site="instagram", level="low")
    served = reply.result["served"]
    quality = max(profile("instagram").jpeg_quality, SERVE_JPEG_QUALITY)
    assert served == {"site": "instagram", "width": 1080, "height": 810, "original_width": 2000,
                      "original_height": 1500, "resized": True, "full_size": False, "format": "JPEG",
                      "quality": quality}
    assert reply.result["image"]["type"] == "image/jpeg"
    assert (reply.result["image"]["width"], reply.result["image"]["height"]) == (1080, 810)
    out = Image.open(io.BytesIO(reply.binary))
    assert out.format == "JPEG" and out.size == (1080, 810)
    # the engine cloaked at the served size, and was told the site
    assert daemon.image.sizes == [(1080, 810)] and daemon.image.sites[0].name == "instagram"


async def test_full_size_keeps_the_size_for_the_site(daemon: Daemon) -> None:
    reply = await _protect(daemon, _photo(2000, 1500), site="instagram", full_size=True)
    served = reply.result["served"]
    assert (served["width"], served["height"], served["resized"], served["full_size"]) == (2000, 1500, False, True)
    assert Image.open(io.BytesIO(reply.binary)).size == (2000, 1500)
    assert daemon.image.sizes == [(2000, 1500)]


async def test_without_a_site_nothing_is_resized(daemon: Daemon) -> None:
    reply = await _protect(daemon, _photo(2000, 1500))
    assert reply.result["served"]["site"] is None and not reply.result["served"]["resized"]
    assert reply.result["image"]["type"] == "image/png" and daemon.image.sites == [None]


async def test_a_photo_without_a_face_for_a_site_is_still_sent_at_the_served_size(daemon: Daemon) -> None:
    """Level off leaves the pixels alone (as no face would): the file is still the small one."""
    reply = await _protect(daemon, _photo(2000, 1500), site="facebook", level="off")
    assert Image.open(io.BytesIO(reply.binary)).size == (2000, 1500)  # within Facebook's 2048: untouched size
    reply = await _protect(daemon, _photo(2400, 1200), site="facebook", level="off")
    assert Image.open(io.BytesIO(reply.binary)).size == (2048, 1024)


# -- rejections: one test each, refused before any image is read ----------------------------------------------


async def _refused(daemon: Daemon, params: dict[str, Any], expected: str) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("protect.image", {"image": {"bytes": len(PNG)}, **params})
        assert info.value.code == ErrorCode.INVALID_MESSAGE
        assert expected in str(info.value), str(info.value)
    assert daemon.image.calls == 0
    await daemon.healthy()


async def test_unknown_site(daemon: Daemon) -> None:
    await _refused(daemon, {"site": "myspace"}, "params.site: 'myspace' is not one of ['instagram'")


async def test_site_not_a_name(daemon: Daemon) -> None:
    await _refused(daemon, {"site": 1080}, "params.site: 1080 is not one of")


async def test_full_size_not_a_boolean(daemon: Daemon) -> None:
    await _refused(daemon, {"site": "x", "full_size": "yes"}, "params.full_size: 'yes' is not of type 'boolean'")


# -- protect me ---------------------------------------------------------------------------------------------


async def test_me_add_list_forget_round_trip(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        assert (await client.request("me.list")).result == {"references": [], "only_me": False}
        added = []
        for seed in (1, 2):
            data = png_bytes(32, 32, seed=seed)
            reply = await client.request("me.add", {"image": {"bytes": len(data)}}, binary=data)
            assert reply.binary is None
            added.append(reply.result["reference"])
            assert reply.result["count"] == seed
        ref = added[0]
        assert ref["faces"] == 2 and ref["note"] == "2 faces; the largest was used"
        assert ref["models"] == sorted(FAKE_SURROGATES)
        listed = (await client.request("me.list")).result["references"]
        assert [r["id"] for r in listed] == [a["id"] for a in added]
        # only vectors are kept: one [2, D] matrix per surrogate
        refs = daemon.me.references(FAKE_SURROGATES)
        assert {m: v.shape for m, v in refs.items()} == {m: (2, 4) for m in FAKE_SURROGATES}
        forgot = (await client.request("me.forget", {"id": ref["id"]})).result
        assert forgot == {"forgotten": 1, "references": [added[1]]}
        forgot = (await client.request("me.forget", {"all": True})).result
        assert forgot == {"forgotten": 1, "references": []}
        assert (await client.request("me.list")).result["references"] == []
    assert daemon.image.calls == 0  # enrolment never protects (or returns) the photo


async def test_only_me_setting_round_trip(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        assert (await client.request("settings", {"only_me": True})).result["only_me"] is True
        assert (await client.request("me.list")).result["only_me"] is True
        assert (await client.request("settings")).result["only_me"] is True


async def test_me_add_without_a_face(daemon: Daemon) -> None:
    data = png_bytes(32, 32, marker=BEHAVIOUR_NO_FACE)
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("me.add", {"image": {"bytes": len(data)}}, binary=data)
        assert info.value.code == ErrorCode.NO_FACE and "no face" in str(info.value)
    assert daemon.me.list() == []
    await daemon.healthy()


async def test_me_add_not_an_image(daemon: Daemon) -> None:
    data = b"this is not a photo at all"
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("me.add", {"image": {"bytes": len(data)}}, binary=data)
        assert info.value.code == ErrorCode.NOT_AN_IMAGE
    assert daemon.me.list() == []


async def test_me_add_too_large(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("me.add", {"image": {"bytes": daemon.limits.max_image_bytes + 1}})
        assert info.value.code == ErrorCode.IMAGE_TOO_LARGE
    await daemon.healthy()


async def test_me_forget_unknown_id(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("me.forget", {"id": "0badc0de"})
        assert info.value.code == ErrorCode.UNKNOWN_REFERENCE


async def test_me_forget_needs_exactly_one_of_id_and_all(daemon: Daemon) -> None:
    async with await daemon.connect() as client:
        for params in ({}, {"id": "0badc0de", "all": True}, {"all": False}, {"id": "../../etc"}):
            with pytest.raises(DaemonError) as info:
                await client.request("me.forget", params)
            assert info.value.code == ErrorCode.INVALID_MESSAGE, params


async def test_me_list_with_a_damaged_store(daemon: Daemon) -> None:
    daemon.me.path.write_bytes(b"garbage")
    async with await daemon.connect() as client:
        with pytest.raises(DaemonError) as info:
            await client.request("me.list")
        assert info.value.code == ErrorCode.ME_STORE and "ally me forget --all" in str(info.value)
        assert (await client.request("me.forget", {"all": True})).result["references"] == []
    assert not daemon.me.path.exists()
