"""Journey: an employee at the wall time clock (800x480), against a real agent process.

Punch in by card (``edge-sim tap`` at the time-clock reader), punch by PIN with a wrong
PIN and then the right one, and cancel a PIN entry; axe on every screen, and the
screenshots ``journey-employee-kiosk-<n>-<step>`` for docs/web.md."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.a11y import assert_accessible, assert_in_viewport, screenshot
from tests.agent_process import edge_sim
from tests.browser import chromium
from tests.cloud_harness import wait_until
from tests.kiosk.conftest import ANA, KioskAgent

JOURNEY = "journey-employee-kiosk"


class Steps:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.n = 0

    def done(self, step: str) -> None:
        """Every control inside the 800x480 window, no serious axe finding, a picture."""
        self.n += 1
        assert_in_viewport(self.page)
        assert_accessible(self.page, f"{JOURNEY} {self.n} {step}")
        screenshot(self.page, f"{JOURNEY}-{self.n}-{step}")


@pytest.fixture
def kiosk(kiosk_agent: KioskAgent) -> Iterator[Page]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 800, "height": 480})
        page.goto(kiosk_agent.url())
        page.wait_for_selector("body[data-ready='1']")
        yield page


def test_employee_punches_by_card_and_by_pin(kiosk: Page, kiosk_agent: KioskAgent) -> None:
    page, steps = kiosk, Steps(kiosk)
    expect(page.get_by_test_id("greeting")).to_have_text("Prislonite kartico")
    steps.done("waiting")

    # 1. arrival by card, tapped with the technician's simulator at the wall reader
    tapped = edge_sim("tap", ANA.uid, "--reader", "wall", config=kiosk_agent.config)
    assert tapped.returncode == 0, tapped.stderr
    assert "Traceback" not in tapped.stderr and "PENDING" in tapped.stdout
    assert "Pozdravljeni, Ana" in tapped.stdout
    expect(page.get_by_test_id("greeting")).to_have_text("Pozdravljeni, Ana")
    expect(page.locator("#types button.suggested")).to_have_text("Prihod")
    steps.done("card-tapped")
    page.get_by_role("button", name="Prihod").click()
    expect(page.get_by_test_id("result")).to_have_text("Prihod zabeležen, Ana")
    steps.done("arrival-recorded")

    # 2. a break by PIN: first a wrong PIN, then the right one
    page.get_by_role("button", name="Vnos s PIN").click()
    for key in ANA.id:
        page.click(f"#keys [data-key='{key}']")
    steps.done("pin-number-typed")
    page.get_by_role("button", name="Naprej").click()
    for key in "1111":
        page.click(f"#keys [data-key='{key}']")
    page.get_by_role("button", name="Potrdi").click()
    expect(page.locator("#pinmsg")).to_have_text("Napačna številka ali PIN")
    steps.done("wrong-pin")
    for key in ANA.pin:
        page.click(f"#keys [data-key='{key}']")
    page.get_by_role("button", name="Potrdi").click()
    expect(page.get_by_test_id("greeting")).to_have_text("Pozdravljeni, Ana")
    expect(page.locator("#types button.suggested")).to_have_text("Odhod")
    page.get_by_role("button", name="Začetek malice").click()
    expect(page.get_by_test_id("result")).to_have_text("Začetek malice zabeležen, Ana")
    steps.done("break-by-pin")

    # 3. someone starts a PIN entry and cancels it: back to the start, nothing typed kept
    page.get_by_role("button", name="Vnos s PIN").click()
    page.click("#keys [data-key='7']")
    steps.done("pin-started")
    page.get_by_role("button", name="Prekliči").click()
    expect(page.get_by_test_id("pinpanel")).to_be_hidden()
    expect(page.get_by_role("button", name="Vnos s PIN")).to_be_visible()
    steps.done("cancelled")

    wait_until(lambda: len(kiosk_agent.punches()) >= 2, what="two punches in the outbox")
    punches = [json.loads(p) for p in kiosk_agent.punches()]
    ana = [(p["type"], p["method"]) for p in punches if p["employee"] == ANA.id]
    assert ana[-2:] == [("arrival", "card"), ("break_start", "pin")]
