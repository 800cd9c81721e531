"""Journeys through the gym's pages in headless Chromium against a real uvicorn server on
SQLite: the manager (sign in, switch the language both ways, a plan typed wrong and then
right, a new member, the plan sold, the fleet, the statistics), the receptionist (find a
member, see their entries, be refused the users page with a page in their language) and
the member's phone (the QR page at 390 px wide). axe-core checks every page opened
(tests/a11y.py); screenshots are named journey-<role>-<n>-<step>."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Page

from tests.a11y import assert_accessible, assert_no_horizontal_scroll, screenshot
from tests.browser import chromium
from tests.mqtt_broker import free_port, wait_for_port
from tests.web.conftest import PASSWORD, WebSite
from tests.web.seed import add_events, decision, ok_redirect, report_device

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass
class Served:
    base: str
    site: WebSite
    tenant: str


@pytest.fixture
def served(site: WebSite) -> Iterator[Served]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield Served(f"http://127.0.0.1:{port}", site, site.tenants[0])
    finally:
        server.should_exit = True
        thread.join(10)


class Journey:
    """Numbered steps of one role: each opened page is checked by axe and kept."""

    def __init__(self, page: Page, role: str) -> None:
        self.page, self.role, self.n = page, role, 0

    def step(self, name: str) -> None:
        self.n += 1
        assert_accessible(self.page, f"{self.role} {name}")
        screenshot(self.page, f"journey-{self.role}-{self.n}-{name}")


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")


def test_gym_manager_journey(served: Served) -> None:
    base, t = served.base, f"{served.base}/t/{served.tenant}"
    report_device(served.site.engine, served.tenant, "gate-1")
    manager = served.site.user(served.tenant, "administrator")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        journey = Journey(page, "gym-manager")
        page.goto(f"{base}/login")
        assert page.get_attribute("html", "lang") == "sl"
        journey.step("login")
        sign_in(page, base, manager)
        page.wait_for_url(f"{t}/fleet")
        assert page.text_content("h1") == "Naprave"
        journey.step("fleet-sl")

        page.click("nav.lang a[lang=en]")
        page.wait_for_url(f"{t}/fleet")
        assert page.text_content("h1") == "Fleet" and page.get_attribute("html", "lang") == "en"
        journey.step("fleet-en")
        page.click("nav.lang a[lang=sl]")
        page.wait_for_selector("html[lang=sl]")
        assert page.text_content("h1") == "Naprave"

        page.goto(f"{t}/plans")
        page.fill("#f-name", "Mesečna")
        page.select_option("#f-kind", "membership")
        page.fill("#f-duration_days", "trideset")
        page.fill("#f-price", "39,90")
        page.select_option("#f-vat_rate_bp", "2200")
        page.click("#new-plan button[type=submit]")
        error = page.wait_for_selector("#e-duration_days")
        assert "celo število" in error.text_content()
        assert page.input_value("#f-name") == "Mesečna"  # what was typed is kept
        assert page.input_value("#f-price") == "39,90"
        journey.step("plan-mistake")
        page.fill("#f-duration_days", "30")
        page.click("#new-plan button[type=submit]")
        row = page.wait_for_selector("table.plans tr:has-text('Mesečna')")
        assert "39,90" in row.text_content() and "30 dni" in row.text_content()
        journey.step("plan-created")

        page.goto(f"{t}/members/new")
        page.fill("#f-first_name", "Ana")
        page.fill("#f-last_name", "Novak")
        page.fill("#f-waiver_signed_on", "1. 12. 2026")
        page.click("#new-member button[type=submit]")
        page.wait_for_selector("text=Član je dodan.")
        member_id = page.url.split("/members/")[1].split("?")[0]
        assert member_id.isdigit()  # typed on a kiosk's digit pad
        assert "1. 12. 2026" in page.text_content("#waiver-state")
        journey.step("member-created")
        page.fill("#add-from-plan #f-start", "1. 12. 2026")
        page.click("#add-from-plan button[type=submit]")
        page.wait_for_selector("text=Pravica je dodana.")
        assert "Članarina" in page.text_content("table.entitlements")
        journey.step("plan-sold")

        page.goto(f"{t}/fleet")
        page.wait_for_selector("tr[data-device='gate-1'] button:has-text('Odpri g1')")
        journey.step("fleet")
        page.goto(f"{t}/stats")
        page.wait_for_selector("svg.chart", state="attached")
        journey.step("statistics")


def test_receptionist_journey(served: Served) -> None:
    base, t = served.base, f"{served.base}/t/{served.tenant}"
    admin, csrf = served.site.login(served.site.user(served.tenant, "administrator"))
    loc = ok_redirect(admin.post(f"/t/{served.tenant}/members", data={
        "csrf_token": csrf, "first_name": "Maja", "last_name": "Novak"},
        follow_redirects=False))
    member_id = loc.split("/members/")[1].split("?")[0]
    add_events(served.site.engine, served.tenant, "gate-1",
               [decision(member_id, True, "granted"), decision(member_id, False, "expired")])
    receptionist = served.site.user(served.tenant, "reception")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.set_default_timeout(10_000)
        journey = Journey(page, "receptionist")
        sign_in(page, base, receptionist)
        page.wait_for_url(f"{t}/fleet")
        page.goto(f"{t}/members")
        page.fill("#q", "nov")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_selector("table.members a:has-text('Novak Maja')")
        journey.step("search")
        page.click("table.members a:has-text('Novak Maja')")
        page.wait_for_selector("table.recent td.denied")
        recent = page.text_content("table.recent")
        assert "Članarina je potekla" in recent or "potekla" in recent
        assert "expired" not in recent  # no raw reason codes
        journey.step("entries")
        response = page.goto(f"{t}/users")
        assert response is not None and response.status == 403
        assert "text/html" in (response.headers.get("content-type") or "")
        assert page.get_attribute("html", "lang") == "sl" and "dostop" in page.text_content("main")
        journey.step("users-refused")


def test_member_on_the_phone_journey(served: Served) -> None:
    tenant = served.tenant
    staff, csrf = served.site.login(served.site.user(tenant, "reception"))
    links = {}
    for first, with_pass in (("Živa", True), ("Brez", False)):
        loc = ok_redirect(staff.post(f"/t/{tenant}/members", data={
            "csrf_token": csrf, "first_name": first}, follow_redirects=False))
        member_id = loc.split("/members/")[1].split("?")[0]
        if with_pass:
            ok_redirect(staff.post(f"/t/{tenant}/members/{member_id}/entitlements", data={
                "csrf_token": csrf, "kind": "punch_card", "entries_total": "10"},
                follow_redirects=False))
        ok_redirect(staff.post(f"/t/{tenant}/members/{member_id}/credentials", data={
            "csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False))
        page_html = staff.get(f"/t/{tenant}/members/{member_id}").text
        link = re.search(r'class="phone-link" type="text" readonly value="([^"]+)"', page_html)
        assert link
        links[first] = link.group(1).replace("http://testserver", served.base)
    with chromium() as browser:
        # the page's own scripts run under its Content-Security-Policy
        strict = browser.new_page(viewport={"width": 390, "height": 844})
        blocked: list[str] = []
        strict.on("console", lambda m: blocked.append(m.text)
                  if "Content Security Policy" in m.text else None)
        strict.goto(links["Živa"])
        strict.wait_for_selector("#qr svg", timeout=10_000)
        assert not blocked, blocked
        # axe-core is injected as a script, which that policy rightly refuses: the
        # checked pages bypass it
        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    bypass_csp=True).new_page()
        phone.set_default_timeout(10_000)
        journey = Journey(phone, "member-phone")
        phone.goto(links["Živa"])
        phone.wait_for_selector("#qr svg")
        assert phone.inner_text("#hello") == "Živa"
        assert "Nova koda čez" in phone.inner_text("#state")
        assert_no_horizontal_scroll(phone)
        journey.step("code")
        phone.goto(links["Brez"])
        phone.wait_for_selector("#state.refused")
        state = phone.inner_text("#state")
        assert "nimate veljavne članarine" in state and "Brez povezave" not in state
        assert_no_horizontal_scroll(phone)
        journey.step("no-valid-membership")
