"""Layout checks for the extension's pages and overlays: no text is cut off by its box.

``clipped(page, selector)`` (Playwright; the Firefox test runs ``CLIPPED_BODY`` through bidi) lists every element
(in a page, or in an overlay's shadow root) whose content is larger than its box. An element marked
``data-scroll`` is a panel's one scroll area: it may be taller than its box, but only if it scrolls
(``overflow-y: auto | scroll``), so that all of its content can be reached; with ``fully_shown=True`` it must not
need to (the screenshot then shows everything). Form controls and images are left out: their scroll sizes say
nothing about cut text.
"""

from __future__ import annotations

from typing import Any

# The body of a function of ``args = [selector, fullyShown]`` (as Playwright's ``evaluate`` and bidi.Firefox's
# ``evaluate`` both run it): the clipped elements under every match of ``selector`` (in its shadow root, if any).
CLIPPED_BODY = """
  const [selector, fullyShown] = args;
  const skip = new Set(["INPUT", "SELECT", "TEXTAREA", "OPTION", "IMG", "STYLE", "SCRIPT", "HTML", "BODY", "BR"]);
  const out = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.classList.length ? "." + [...el.classList].join(".") : "");
  for (const root of document.querySelectorAll(selector)) {
    for (const el of (root.shadowRoot ?? root).querySelectorAll("*")) {
      if (skip.has(el.tagName) || el.closest("[hidden]") || !el.getClientRects().length) continue;
      const tall = el.scrollHeight > el.clientHeight + 1 && el.clientHeight > 0;
      const wide = el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0;
      if (!tall && !wide) continue;
      const style = getComputedStyle(el);
      if (style.display === "inline") continue;  // an inline box has no client size of its own
      if (el.hasAttribute("data-scroll") && !wide && !fullyShown && ["auto", "scroll"].includes(style.overflowY)) continue;
      out.push(`${name(el)}: content ${el.scrollWidth}x${el.scrollHeight} in a box of ${el.clientWidth}x${el.clientHeight}` +
               ` (overflow ${style.overflowX}/${style.overflowY}): ${JSON.stringify(el.textContent.trim().slice(-60))}`);
    }
  }
  return out;
"""


def clipped(page: Any, selector: str = "body", *, fully_shown: bool = False) -> list[str]:
    """The elements under ``selector`` (its shadow root, if it has one) whose content does not fit their box, in a
    Playwright page. ``selector`` may match several hosts (every overlay on a page): all are checked."""
    return list(page.evaluate(f"async (args) => {{ {CLIPPED_BODY} }}", [selector, fully_shown]))


def in_view(page: Any, host_selector: str, inner: str) -> bool:
    """Whether the element ``inner`` inside the overlay ``host_selector``'s shadow root lies wholly in its scroll
    area and in the window (the last such host, as the tests' ``overlay()``)."""
    return bool(page.evaluate("""([hostSel, inner]) => {
        const hosts = document.querySelectorAll(hostSel);
        const root = hosts[hosts.length - 1].shadowRoot;
        const el = root.querySelector(inner);
        const area = el.closest("[data-scroll]") ?? root.querySelector(".box");
        const r = el.getBoundingClientRect(), a = area.getBoundingClientRect();
        return r.top >= a.top - 1 && r.bottom <= a.bottom + 1 && r.top >= 0 && r.bottom <= window.innerHeight;
    }""", [host_selector, inner]))
