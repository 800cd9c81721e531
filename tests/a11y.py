"""Accessibility and layout checks the browser tests run on every page they open.

``assert_accessible(page)`` injects axe-core (from npm: scripts/setup.sh installs it
under .cache/npm) into the page and fails on any serious or critical violation, with
the rule, its help text and the elements. ``assert_in_viewport`` checks that every
visible control lies wholly inside the window (kiosk screens are 800x480 and up).
``assert_no_horizontal_scroll`` checks a phone-width page. ``screenshot`` keeps a PNG
as a test artifact (TEST_ARTIFACTS, default test-artifacts/)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
BLOCKING = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run scripts/setup.sh (npm install axe-core)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return list(result)


def assert_accessible(page: Page, what: str = "") -> None:
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    listing = "\n".join(f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}"
                        for v in blocking)
    assert not blocking, f"axe on {what or page.url}:\n{listing}"


_CONTROLS = "button, a[href], input:not([type=hidden]), select, textarea, [role=button]"


def controls_outside_viewport(page: Page, selector: str = _CONTROLS) -> list[str]:
    """The visible controls whose box is not wholly inside the window."""
    return list(page.evaluate("""(sel) => {
        const w = window.innerWidth, h = window.innerHeight, out = [];
        for (const el of document.querySelectorAll(sel)) {
            const r = el.getBoundingClientRect(), s = getComputedStyle(el);
            if (s.display === 'none' || s.visibility === 'hidden' || r.width === 0) continue;
            if (el.closest('[hidden]')) continue;
            if (r.left < 0 || r.top < 0 || r.right > w + 0.5 || r.bottom > h + 0.5)
                out.push((el.id || el.textContent || el.name || el.tagName).trim().slice(0, 40)
                         + ` [${Math.round(r.left)},${Math.round(r.top)},`
                         + `${Math.round(r.right)},${Math.round(r.bottom)}]`);
        }
        return out;
    }""", selector))


def assert_in_viewport(page: Page, selector: str = _CONTROLS) -> None:
    size = page.viewport_size
    outside = controls_outside_viewport(page, selector)
    assert not outside, f"outside the {size} window: {outside}"


def assert_no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"


def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page PNG under the artifacts folder (``name`` like 'gym-manager-1')."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
