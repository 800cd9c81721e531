"""The phone punch in headless Chromium against a real bridge (uvicorn, a SQLite file),
with the browser's geolocation emulated: the employee opens their enrolment link, enrols
the phone with their PIN and punches inside the site's fence; outside it the punch is
refused (policy "refuse"), then recorded and marked once the employer switches the site
to "flag"; offline, a punch waits on the phone (IndexedDB) and is sent when the
connection returns. Each step is checked in the stored, chained record. Then the
employee opens their own records and asks for annual leave, which the manager
approves. axe checks the
page; screenshots ``journey-phone-<n>-<step>``."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from playwright.sync_api import BrowserContext, Geolocation, Page
from sqlalchemy import insert, select

from cloud_bridge.attendance.chain_audit import audit_chain
from cloud_bridge.attendance.geofence import Fence, Policy
from cloud_bridge.attendance.phone_enrolment import create_enrolment
from cloud_bridge.attendance.phone_punch import phone_device, set_geofence
from cloud_bridge.attendance.schema import absences, audit, punch_locations
from cloud_bridge.attendance.timesheet import LJUBLJANA
from cloud_bridge.db_schema import events, members, read_tx, write_tx
from contracts.pin_hash import hash_pin
from contracts.punch_chain import PUNCH_EVENT
from tests.a11y import assert_accessible, screenshot
from tests.browser import chromium
from tests.web.test_journeys_edc import Site, login, site  # noqa: F401 - the fixture, by name

OFFICE: Geolocation = {"latitude": 46.0569, "longitude": 14.5058, "accuracy": 12}
AWAY: Geolocation = {"latitude": 46.0569, "longitude": 14.5200, "accuracy": 12}  # ~1.1 km east


def _setup(site: Site) -> str:  # noqa: F811
    now = int(time.time())
    with write_tx(site.engine) as conn:
        conn.execute(insert(members).values(tenant=site.tenant, id="e7", first_name="Nina",
                                            last_name="Kos", blocked=False,
                                            pin_hash=hash_pin("5931"), created_at=now,
                                            updated_at=now))
        set_geofence(conn, site.tenant, Fence("office", Policy.REFUSE, 30, 46.0569,
                                              14.5058, 120.0), site.employer)
        return create_enrolment(conn, site.tenant, "e7", site.employer, site="office")


def _punches(site: Site) -> list[dict[str, object]]:  # noqa: F811
    with read_tx(site.engine) as conn:
        return [dict(r.data) for r in conn.execute(
            select(events.c.data).where(events.c.tenant == site.tenant,
                                        events.c.type == PUNCH_EVENT).order_by(events.c.seq))]


def _status(page: Page, text: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('[data-testid=status]').textContent === t", arg=text)


def _enrol_and_punch_inside(page: Page, site: Site, token: str) -> None:  # noqa: F811
    page.goto(f"{site.base}/phone/{site.tenant}#t={token}")
    page.fill("#pin", "1111")
    page.click("#enrol-form button[type=submit]")
    _status(page, "Napačna koda PIN.")
    assert_accessible(page, "journey-phone-1-wrong-pin")
    screenshot(page, "journey-phone-1-wrong-pin")
    page.fill("#pin", "5931")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#punch:not([hidden])")
    assert "#t=" not in page.url  # the link's token is not kept in the address
    page.click("[data-punch=arrival]")
    _status(page, "Zabeleženo.")
    assert_accessible(page, "journey-phone-2-arrival")
    screenshot(page, "journey-phone-2-arrival")
    (arrival,) = _punches(site)
    assert arrival["type"] == "arrival" and arrival["method"] == "phone"
    assert arrival["location"] == "inside" and arrival["flags"] == []


def _outside(page: Page, context: BrowserContext, site: Site) -> None:  # noqa: F811
    context.set_geolocation(AWAY)
    page.click("[data-punch=break_start]")
    _status(page, "Zavrnjeno: niste na delovnem mestu.")
    screenshot(page, "journey-phone-3-refused-outside")
    assert len(_punches(site)) == 1
    with write_tx(site.engine) as conn:  # the employer relaxes the site's policy
        set_geofence(conn, site.tenant, Fence("office", Policy.FLAG, 30, 46.0569,
                                              14.5058, 120.0), site.employer)
    page.click("[data-punch=break_start]")
    _status(page, "Zabeleženo z oznako: zunaj delovnega mesta.")
    flagged = _punches(site)[-1]
    assert flagged["location"] == "outside" and flagged["flags"] == ["outside_fence"]
    with write_tx(site.engine) as conn:  # the site's policy: record only, no judgement
        set_geofence(conn, site.tenant, Fence("office", Policy.RECORD, 30, 46.0569,
                                              14.5058, 120.0), site.employer)
    page.click("[data-punch=break_end]")
    _status(page, "Zabeleženo.")
    assert _punches(site)[-1]["location"] == "recorded"


def _offline_then_online(page: Page, context: BrowserContext, site: Site) -> None:  # noqa: F811
    context.set_geolocation(OFFICE)
    context.set_offline(True)
    page.click("[data-punch=departure]")
    _status(page, "Ni povezave: vpis je shranjen na telefonu in bo poslan pozneje.")
    assert page.text_content("[data-testid=queued]") == "1"
    screenshot(page, "journey-phone-4-offline-queued")
    assert len(_punches(site)) == 3
    context.set_offline(False)
    _status(page, "Shranjeni vpisi so poslani.")
    assert page.text_content("[data-testid=queued]") == "0"
    screenshot(page, "journey-phone-5-sent")


def _my_records_and_leave(page: Page, site: Site, manager: Page) -> None:  # noqa: F811
    """The employee opens their records (the past month's notice first, then this month
    with today's phone punches), asks for two days of annual leave; the manager
    approves it; the employee sees the decision."""
    page.click("[data-testid=my-records]")
    page.wait_for_selector("[data-testid=monthly-notice]")
    page.click("text=Naslednji mesec")
    today = datetime.now(LJUBLJANA)
    row = page.locator("tr", has_text=f"{today.day}. {today.month}. {today.year}").first
    cells = [c.strip() for c in row.locator("td").all_text_contents()]
    assert re.fullmatch(r"\d{1,2}:\d\d", cells[1]), cells  # the phone arrival's time
    first = (datetime.now(LJUBLJANA) + timedelta(days=20)).date()
    page.select_option("#r-kind", "annual_leave")
    page.fill("#r-first_day", first.isoformat())
    page.fill("#r-last_day", (first - timedelta(days=1)).isoformat())
    page.click("#request-form button[type=submit]")
    assert page.text_content("#re-last_day") == "Zadnji dan je pred prvim dnem."
    page.fill("#r-last_day", (first + timedelta(days=1)).isoformat())
    page.fill("#r-note", "družinski dopust")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("text=Vaša prošnja je poslana vodji.")
    assert "čaka na vodjo" in (page.text_content("[data-testid=my-requests]") or "")
    assert_accessible(page, "journey-phone-6-my-records")
    screenshot(page, "journey-phone-6-my-records")

    login(manager, site, site.employer)
    manager.goto(f"{site.base}/t/{site.tenant}/absence-requests")
    assert_accessible(manager, "journey-phone-7-requests")
    manager.click("tr[data-request] button:has-text('Odobri')")
    manager.wait_for_selector("text=Odsotnost je odobrena in vpisana.")
    screenshot(manager, "journey-phone-7-approved")
    page.reload()
    assert "odobril" in (page.text_content("[data-testid=my-requests]") or "")
    with read_tx(site.engine) as conn:
        (absence,) = conn.execute(select(absences).where(absences.c.tenant == site.tenant)
                                  ).mappings().all()
        decided = conn.execute(select(audit.c.action).where(
            audit.c.tenant == site.tenant,
            audit.c.action == "absence_request_approved")).all()
    assert absence["kind"] == "annual_leave" and absence["first_day"] == first.isoformat()
    assert absence["created_by"] == site.employer and len(decided) == 1


def test_phone_punch_journey(site: Site) -> None:  # noqa: F811
    token = _setup(site)
    with chromium() as browser:
        context = browser.new_context(geolocation=OFFICE, permissions=["geolocation"],
                                      locale="sl-SI", viewport={"width": 390, "height": 844})
        page = context.new_page()
        _enrol_and_punch_inside(page, site, token)
        _outside(page, context, site)
        _offline_then_online(page, context, site)
        _my_records_and_leave(page, site, browser.new_context().new_page())
        context.close()
    kinds = [p["type"] for p in _punches(site)]
    assert kinds == ["arrival", "break_start", "break_end", "departure"]
    with read_tx(site.engine) as conn:
        chain = audit_chain(conn, site.tenant, phone_device("e7"))
        kept = conn.execute(select(punch_locations.c.seq).where(
            punch_locations.c.tenant == site.tenant)).all()
    assert chain.ok and chain.punches == 4
    assert len(kept) == 4  # one location per accepted punch, none for the refused one
