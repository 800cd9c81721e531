"""The E-EDC journeys in headless Chromium against a real bridge (uvicorn on a free
loopback port, a SQLite file): the employer adds an employee with a number and a PIN,
records a sick leave and a forgotten arrival (first with mistakes the form shows beside
the fields, then fixed, then the wrong time corrected), and the accountant opens the
timesheet, moves between months, downloads the CSV for Excel, sees the correction and
the absence marked with their reasons and who is at work now. axe-core checks every
page; screenshots ``journey-employer-<n>-<step>`` and ``journey-accountant-<n>-<step>``."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page
from sqlalchemy import Engine

from cloud_bridge.attendance.timesheet import LJUBLJANA
from cloud_bridge.db_schema import make_engine
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import create_tenant
from cloud_bridge.web.auth import WebAuth
from tests.a11y import assert_accessible, assert_no_horizontal_scroll, screenshot
from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events
from tests.browser import chromium
from tests.mqtt_broker import free_port, wait_for_port

PASSWORD = "journey test password"


@dataclass
class Site:
    base: str
    tenant: str
    engine: Engine
    employer: str
    accountant: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    tenant = f"edc{uuid.uuid4().hex[:8]}"
    keys_dir = tmp_path / "keys"
    create_tenant(keys_dir, tenant)
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    engine = make_engine(url)
    bridge = Bridge(BridgeSettings(db_url=url, keys_dir=keys_dir, mqtt=MqttSettings(
        client_id=f"edc-{uuid.uuid4().hex[:8]}")), engine=engine)  # no broker needed
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(bridge.app("token-0123456789", secure_cookies=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    http = threading.Thread(target=server.run, daemon=True)
    http.start()
    wait_for_port(port)
    auth = WebAuth(engine)
    employer, accountant = f"delodajalec@{tenant}.si", f"racunovodja@{tenant}.si"
    auth.create_user(tenant, employer, PASSWORD, "administrator")
    auth.create_user(tenant, accountant, PASSWORD, "accountant")
    try:
        yield Site(f"http://127.0.0.1:{port}", tenant, engine, employer, accountant)
    finally:
        server.should_exit = True
        http.join(10)
        engine.dispose()


def login(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/t/{site.tenant}/**")


def check(page: Page, name: str) -> None:
    assert_accessible(page, name)
    assert_no_horizontal_scroll(page)
    screenshot(page, name)


def field_error(page: Page, name: str) -> str:
    return (page.text_content(f"#e-{name}") or "").strip()


def local(at: datetime) -> tuple[str, str]:
    """A moment as the form takes it: "3. 12. 2026" and "7:30"."""
    t = at.astimezone(LJUBLJANA)
    return f"{t.day}. {t.month}. {t.year}", f"{t.hour}:{t.minute:02d}"


def employer_journey(page: Page, site: Site, wrong: datetime, right: datetime,
                     leave: tuple[str, str]) -> None:
    t = f"{site.base}/t/{site.tenant}"
    login(page, site, site.employer)
    page.goto(f"{t}/employees")
    check(page, "journey-employer-1-no-employees")
    page.click("[data-testid=new-employee]")
    page.fill("#f-number", "10 1")
    page.fill("#f-first_name", "Mojca")
    page.fill("#f-last_name", "Zupan")
    page.fill("#f-pin", "12")
    page.click("#employee-form button[type=submit]")
    assert field_error(page, "number") and field_error(page, "pin")
    assert page.input_value("#f-last_name") == "Zupan" and page.input_value("#f-pin") == ""
    check(page, "journey-employer-2-employee-mistakes")
    page.fill("#f-number", "101")
    page.fill("#f-pin", "4826")
    page.click("#employee-form button[type=submit]")
    page.wait_for_selector("text=Zaposleni je dodan.")
    assert "nastavljen" in page.text_content("tr[data-employee='101']")
    check(page, "journey-employer-3-employee-added")

    page.goto(f"{t}/absences?employee=101")
    page.select_option("#f-kind", "sick_leave")
    page.fill("#f-first_day", leave[1])  # the wrong way round, no reason
    page.fill("#f-last_day", leave[0])
    page.click("#absence-form button[type=submit]")
    assert field_error(page, "note") and page.input_value("#f-first_day") == leave[1]
    page.fill("#f-note", "gripa, bolniški list")
    page.click("#absence-form button[type=submit]")
    assert field_error(page, "last_day") == "Zadnji dan je pred prvim dnem."
    check(page, "journey-employer-4-absence-mistakes")
    page.fill("#f-first_day", leave[0])
    page.fill("#f-last_day", leave[1])
    page.click("#absence-form button[type=submit]")
    page.wait_for_selector("text=Odsotnost je shranjena.")
    check(page, "journey-employer-5-absence-saved")

    page.goto(f"{t}/corrections?employee=101")
    day, hour = local(wrong)
    page.select_option("#f-action", "add")
    page.fill("#f-day", day)
    page.fill("#f-time", "25:70")
    page.select_option("#f-punch_type", "arrival")
    page.click("#correction-form button[type=submit]")
    assert field_error(page, "time") and field_error(page, "reason")
    assert page.input_value("#f-day") == day
    check(page, "journey-employer-6-correction-mistakes")
    page.fill("#f-time", hour)
    page.fill("#f-reason", "pozabila se je prijaviti ob prihodu")
    page.click("#correction-form button[type=submit]")
    page.wait_for_selector("text=Popravek je shranjen.")
    # the time was wrong: change the added punch to the right one
    day, hour = local(right)
    page.select_option("#f-action", "amend")
    page.select_option("#f-punch", index=1)
    page.fill("#f-day", day)
    page.fill("#f-time", hour)
    page.fill("#f-reason", "napačna ura prihoda")
    page.click("#correction-form button[type=submit]")
    page.wait_for_selector("text=Popravek je shranjen.")
    assert page.locator("table[data-testid=corrections] tr").count() == 3
    check(page, "journey-employer-7-corrections")


def accountant_journey(page: Page, site: Site, right: datetime, tmp: Path) -> None:
    login(page, site, site.accountant)
    page.click(f"header a[href='/t/{site.tenant}/timesheets']")
    page.wait_for_selector("[data-testid=present-now]")
    present = page.text_content("[data-testid=present-now]") or ""
    assert "101 Mojca Zupan" in present, present
    now_month = right.astimezone(LJUBLJANA)
    if now_month.month != datetime.now(UTC).astimezone(LJUBLJANA).month:
        page.click("[data-testid=prev-month]")  # the arrival was before midnight of the 1st
    marked = page.text_content("tr.marked") or ""
    assert "spremenjen vpis: napačna ura prihoda" in marked, marked
    assert "dodan vpis: pozabila se je prijaviti ob prihodu" in marked
    assert "popravljen vpis" in (page.text_content("[data-testid=legend]") or "")
    check(page, "journey-accountant-1-timesheet-now")
    page.emulate_media(media="print")  # what the Print button prints
    assert not page.is_visible("header") and not page.is_visible("nav.months")
    assert page.is_visible("tr.marked .note") and page.is_visible("[data-testid=legend]")
    screenshot(page, "journey-accountant-1-timesheet-print")
    page.emulate_media(media="screen")

    page.click("[data-testid=prev-month]")
    page.wait_for_selector("section[data-employee='101']")
    section = page.text_content("section[data-employee='101']") or ""
    assert "bolniška odsotnost: gripa, bolniški list" in section
    assert "8:30" in section  # the time clock's 07:00-15:30
    check(page, "journey-accountant-2-previous-month")

    shown = page.input_value("#f-month")
    page.select_option("#f-month", index=0)  # next month, the newest in the list
    page.click(".months button[type=submit]")
    page.wait_for_url("**month=*")
    assert page.input_value("#f-month") != shown
    check(page, "journey-accountant-3-month-picker")
    page.go_back()
    with page.expect_download() as download:
        page.click("[data-testid=csv]")
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Mesec", "Številka zaposlenega", "Ime in priimek"]
    mojca = next(r for r in rows if r[1] == "101")
    assert mojca[4] == "8,50" and rows[-1][1] == "Skupaj"

    page.goto(f"{site.base}/t/{site.tenant}/employees")
    assert "da" in (page.text_content("tr[data-employee='101']") or "")
    check(page, "journey-accountant-4-employees")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{site.base}/t/{site.tenant}/timesheets")
    page.wait_for_selector("[data-testid=present-now]")
    check(page, "journey-accountant-5-phone-timesheet")  # the tables scroll, not the page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("a[href^='/lang/en']")
    page.goto(f"{site.base}/t/{site.tenant}/timesheets")
    assert "At work right now" in (page.text_content("main") or "")
    check(page, "journey-accountant-6-english")


def test_employer_and_accountant_journeys(site: Site, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    right = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
    wrong = right - timedelta(hours=1)
    month = right.astimezone(LJUBLJANA).replace(day=1)
    before = (month - timedelta(days=1)).replace(day=3, hour=7, minute=0)
    punches = [("101", before, "arrival"), ("101", before.replace(hour=15, minute=30),
                                             "departure")]
    ingest(site.engine, chain_events(site.tenant, "clock-1", punches,
                                     Ed25519PrivateKey.generate()))
    leave = (local(before + timedelta(days=7))[0], local(before + timedelta(days=8))[0])
    with chromium() as browser:
        employer = browser.new_page(viewport={"width": 1280, "height": 900})
        employer.set_default_timeout(15_000)
        employer_journey(employer, site, wrong, right, leave)
        accountant = browser.new_page(viewport={"width": 1280, "height": 900})
        accountant.set_default_timeout(15_000)
        accountant_journey(accountant, site, right, tmp_path)
