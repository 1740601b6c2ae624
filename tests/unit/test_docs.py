"""The README stays a user's page, and the documentation keeps every figure and link it points to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
FIGURES = REPO / "tests" / "bench" / "figures"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text(encoding="utf-8"))
            if not re.match(r"[a-z]+:", target) and not target.startswith("#")]


def test_the_readme_is_short_and_keeps_its_sections() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for heading in ("## Two commands", "## How well it works today", "## Limits", "### Load the extension"):
        assert f"\n{heading}\n" in text, heading  # installer/install.sh and `ally doctor` point at the last one


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    missing = [t for t in _links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


def test_no_figure_is_lost() -> None:
    """Every figure in tests/bench/figures is shown by the README or a page in docs/."""
    shown = {(page.parent / t).resolve() for page in [README, *DOCS] for t in _links(page)}
    figures = sorted(FIGURES.glob("*.png"))
    assert figures
    assert [f.name for f in figures if f.resolve() not in shown] == []
