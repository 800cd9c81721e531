"""The kiosk page of a real agent in Chromium: every control inside the window at the
three terminal sizes on each screen, the site's clock whatever the browser's zone, the
PIN pad's labels, cancel and letters page, and the page's languages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.a11y import assert_accessible, assert_in_viewport, screenshot
from tests.browser import chromium
from tests.kiosk.conftest import ANA, OLD_ID, UNKNOWN_UID, KioskAgent, start_kiosk_agent

SIZES = [(800, 480), (1024, 600), (1280, 800)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def open_kiosk(browser: Browser, agent: KioskAgent, width: int = 800, height: int = 480,
               path: str = "/kiosk/t1", timezone_id: str | None = None) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  timezone_id=timezone_id)
    page = context.new_page()
    page.goto(agent.url(path))
    page.wait_for_selector("body[data-ready='1']")
    return page


def check(page: Page, what: str) -> None:
    assert_in_viewport(page)
    assert_accessible(page, what)
    screenshot(page, "kiosk-" + what)


def type_on_pad(page: Page, text: str) -> None:
    for ch in text:
        if ch.isalpha() or ch == "-":
            if page.locator("#keys [data-key=letters]").count():
                page.click("#keys [data-key=letters]")
        elif page.locator("#keys [data-key=digits]").count():
            page.click("#keys [data-key=digits]")
        page.click(f"#keys [data-key='{ch}']")


@pytest.mark.parametrize(("width", "height"), SIZES, ids=lambda v: str(v))
def test_every_screen_fits_the_terminal(browser: Browser, kiosk_agent: KioskAgent,
                                        width: int, height: int) -> None:
    page = open_kiosk(browser, kiosk_agent, width, height)
    expect(page.get_by_test_id("greeting")).to_have_text("Prislonite kartico")
    check(page, f"main screen {width}x{height}")
    page.get_by_role("button", name="Vnos s PIN").click()
    expect(page.get_by_label("Številka zaposlenega")).to_be_visible()
    check(page, f"PIN pad {width}x{height}")
    page.click("#keys [data-key=letters]")
    check(page, f"PIN pad letters {width}x{height}")
    page.get_by_role("button", name="Prekliči").click()
    kiosk_agent.tap(ANA.uid)
    expect(page.get_by_test_id("greeting")).to_have_text("Pozdravljeni, Ana")
    assert page.locator("#types button").count() == 8
    check(page, f"pending screen {width}x{height}")
    page.click("#types button[data-type=break_start]")
    expect(page.get_by_test_id("result")).to_have_text("Začetek malice zabeležen, Ana")
    check(page, f"result screen {width}x{height}")
    kiosk_agent.tap(UNKNOWN_UID)
    expect(page.get_by_test_id("result")).to_have_text("Neznana kartica")
    check(page, f"refusal screen {width}x{height}")
    page.context.close()


@pytest.mark.parametrize("browser_zone", ["America/New_York", "Asia/Tokyo"])
def test_the_clock_shows_the_sites_time_not_the_browsers(
        browser: Browser, kiosk_agent: KioskAgent, browser_zone: str) -> None:
    page = open_kiosk(browser, kiosk_agent, timezone_id=browser_zone)
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone
    shown = page.get_by_test_id("clock").inner_text()
    now = datetime.now(UTC)
    # the site's wall clock (Europe/Ljubljana in the demo config), give or take a tick
    site = {(now + timedelta(seconds=d)).astimezone(ZoneInfo("Europe/Ljubljana"))
            .strftime("%H:%M") for d in (-2, 0, 2)}
    browser_local = now.astimezone(ZoneInfo(browser_zone)).strftime("%H:%M")
    assert shown[:5] in site and shown[:5] != browser_local, (shown, site, browser_local)
    page.context.close()


def test_pin_pad_labels_cancel_and_a_wrong_then_right_pin(
        browser: Browser, kiosk_agent: KioskAgent) -> None:
    page = open_kiosk(browser, kiosk_agent)
    page.get_by_role("button", name="Vnos s PIN").click()
    employee, pin = page.get_by_label("Številka zaposlenega"), page.get_by_label("PIN", exact=True)
    expect(employee).to_be_visible()
    expect(pin).to_be_visible()
    expect(page.get_by_role("button", name="Izbriši zadnji znak")).to_be_visible()
    type_on_pad(page, "10")
    expect(employee).to_have_value("10")
    page.get_by_role("button", name="Prekliči").click()  # cancel: main screen, input gone
    expect(page.get_by_test_id("pinpanel")).to_be_hidden()
    expect(page.get_by_test_id("greeting")).to_have_text("Prislonite kartico")
    page.get_by_role("button", name="Vnos s PIN").click()
    expect(employee).to_have_value("")
    type_on_pad(page, ANA.id)
    page.get_by_role("button", name="Naprej").click()
    type_on_pad(page, "0000")
    expect(pin).to_have_value("0000")
    page.get_by_role("button", name="Potrdi").click()
    expect(page.locator("#pinmsg")).to_have_text("Napačna številka ali PIN")
    expect(pin).to_have_value("")  # the PIN is cleared, the number kept for another try
    expect(employee).to_have_value(ANA.id)
    type_on_pad(page, ANA.pin)
    page.get_by_role("button", name="Potrdi").click()
    expect(page.get_by_test_id("greeting")).to_have_text("Pozdravljeni, Ana")
    page.context.close()


def test_an_older_letters_id_can_be_typed(browser: Browser, kiosk_agent: KioskAgent) -> None:
    """Ids made before digits-only numbers (m-3f9a0c) are typed on the letters page."""
    page = open_kiosk(browser, kiosk_agent)
    page.get_by_role("button", name="Vnos s PIN").click()
    type_on_pad(page, OLD_ID.id)
    expect(page.get_by_label("Številka zaposlenega")).to_have_value(OLD_ID.id)
    page.get_by_role("button", name="Naprej").click()
    assert page.locator("#keys [data-key=letters]").count() == 0  # a PIN is digits only
    type_on_pad(page, OLD_ID.pin)
    page.get_by_role("button", name="Potrdi").click()
    expect(page.get_by_test_id("greeting")).to_have_text(f"Pozdravljeni, {OLD_ID.name}")
    page.click("#types button.suggested")
    expect(page.get_by_test_id("result")).to_have_text(re.compile(f"zabeležen, {OLD_ID.name}"))
    assert any(json.loads(p)["employee"] == OLD_ID.id for p in kiosk_agent.punches())
    page.context.close()


def test_english_by_switch_and_by_address(browser: Browser, kiosk_agent: KioskAgent) -> None:
    page = open_kiosk(browser, kiosk_agent)
    assert page.evaluate("document.documentElement.lang") == "sl"
    page.get_by_role("button", name="English").click()
    expect(page.get_by_test_id("greeting")).to_have_text("Hold your card to the reader")
    expect(page.get_by_role("button", name="Enter with PIN")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.title() == "Time clock"
    page.get_by_role("button", name="Enter with PIN").click()
    expect(page.get_by_label("Employee number")).to_be_visible()
    check(page, "PIN pad in English")
    page.context.close()
    page = open_kiosk(browser, kiosk_agent, path="/kiosk/t1?lang=en")
    expect(page.get_by_role("button", name="Enter with PIN")).to_be_visible()
    page.context.close()


def test_the_catalog_route_and_an_unknown_terminal(browser: Browser,
                                                   kiosk_agent: KioskAgent) -> None:
    page = browser.new_page()
    sl = page.goto(kiosk_agent.url("/kiosk/i18n/sl"))
    assert sl is not None
    body = sl.json()
    assert body["lang"] == "sl" and body["messages"]["Enter with PIN"] == "Vnos s PIN"
    assert body["messages"]["Unknown card"] == "Neznana kartica"  # reasons domain reused
    assert "n % 100" in body["plural"]
    missing = page.goto(kiosk_agent.url("/kiosk/nope"))
    assert missing is not None and missing.status == 404
    assert "nima terminala" in page.inner_text("body")
    assert_accessible(page, "unknown terminal page")
    page.close()


def test_a_device_set_to_english_starts_its_kiosk_in_english(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    agent = start_kiosk_agent(tmp_path_factory.mktemp("kiosk-en"), "--language", "en")
    try:
        page = open_kiosk(browser, agent)
        expect(page.get_by_test_id("greeting")).to_have_text("Hold your card to the reader")
        assert page.evaluate("document.documentElement.lang") == "en"
        agent.tap(ANA.uid)
        expect(page.get_by_test_id("greeting")).to_have_text("Hello, Ana")
        page.get_by_role("button", name="Slovenščina").click()  # switched for one person
        expect(page.get_by_test_id("greeting")).to_have_text("Pozdravljeni, Ana")
        check(page, "pending screen after switching to Slovenian")
        page.click("#types button.suggested")
        expect(page.get_by_test_id("result")).to_have_text("Prihod zabeležen, Ana")
        # a few seconds after the result the terminal waits for the next person, in the
        # device's language again
        expect(page.get_by_test_id("greeting")).to_have_text(
            "Hold your card to the reader", timeout=15_000)
        assert page.evaluate("document.documentElement.lang") == "en"
        page.context.close()
    finally:
        agent.process.stop()
