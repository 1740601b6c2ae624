"""The real text protector behind a real socket: ``protect.text`` says what still shows (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ally.server.protocol import validate_result
from ally.text import resources as R
from daemon_fakes import start_daemon

pytestmark = [pytest.mark.real_models, pytest.mark.asyncio]


@pytest.fixture(scope="module")
def warm_text(real_model, model_cache):
    for mid in R.TEXT_MODELS:
        real_model(mid)
    from ally.text.protector import WarmTextProtector

    protector = WarmTextProtector(None, model_cache)
    protector.warm_up()
    return protector


async def test_protect_text_reports_goal_facts_left_and_held_out_readers(tmp_path: Path, warm_text) -> None:
    d = await start_daemon(tmp_path, text=True)
    d.engines.text = warm_text
    try:
        async with await d.connect() as client:
            post = "Cheers mate, I'm 34 and live in Leeds with my wife lol!!!"
            reply = await client.request("protect.text", {"text": post, "level": "medium"})
            validate_result("protect.text", reply.result)
            out, report = reply.result["text"], reply.result["report"]
            for fact in ("34", "Leeds", "wife", "lol", "!!!"):
                assert fact not in out, out
            # medium keeps dialect words: the report names the one left and why
            if "mate" in out:
                assert any(f["text"] == "mate" and "kept at this level" in f["reason"] for f in report["left"]), report
            assert {r["attribute"] for r in report["reader"]} >= {"age", "gender"}
            assert all(0 <= r["after_confidence"] <= 1 for r in report["reader"])
            assert isinstance(report["goal_reached"], bool) and report["notes"]
            if not report["goal_reached"]:
                assert any("Goal not reached" in n for n in report["notes"])

            reply = await client.request("protect.text", {"text": "Cheers mate, see you at uni", "level": "high"})
            assert reply.result["text"] == "Thanks friend, see you at university" or (
                "mate" not in reply.result["text"] and "uni " not in reply.result["text"] + " "), reply.result
            assert not [f for f in reply.result["report"]["left"] if f["category"] == "dialect"]
    finally:
        await d.server.stop()
