"""Chromium (real server): a member signs the waiver by drawing on the phone page's
signature pad, under the page's real Content-Security-Policy; reception does the same on
the kiosk page with the mouse. What is stored is the drawn path with its SHA-256. The
views with the pad pass axe."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from cloud_bridge.waivers import waiver_signatures
from tests.a11y import assert_accessible, assert_no_horizontal_scroll
from tests.browser import chromium
from tests.web.test_journeys_gym import Served, served, sign_in  # noqa: F401 - fixture
from tests.web.test_member_phone_link import phone_link

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def draw(page: Page, selector: str) -> None:
    """Two strokes across the canvas, as a finger or a mouse would."""
    box = page.locator(selector).bounding_box()
    assert box is not None
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    for row in (0.3, 0.7):
        page.mouse.move(x0 + w * 0.1, y0 + h * row)
        page.mouse.down()
        for step in range(1, 16):
            page.mouse.move(x0 + w * (0.1 + step * 0.05), y0 + h * (row + 0.1 * (step % 2)))
        page.mouse.up()


def _signature(at: Served, member_id: str) -> dict[str, object]:
    with at.site.engine.connect() as conn:
        return dict(conn.execute(select(waiver_signatures).where(
            waiver_signatures.c.tenant == at.tenant,
            waiver_signatures.c.member_id == member_id)).mappings().one())


def _member(at: Served, client, csrf: str, name: str) -> str:  # type: ignore[no-untyped-def]
    t = f"/t/{at.tenant}"
    loc = client.post(f"{t}/members", data={"csrf_token": csrf, "first_name": name,
                                            "last_name": "Kos"}, follow_redirects=False)
    member_id = str(loc.headers["location"].split("/members/")[1].split("?")[0])
    client.post(f"{t}/members/{member_id}/credentials",
                data={"csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False)
    client.post(f"{t}/members/{member_id}/entitlements",
                data={"csrf_token": csrf, "kind": "punch_card", "entries_total": "10"})
    return member_id


def test_a_drawn_signature_on_the_phone_and_at_the_kiosk(served: Served) -> None:  # noqa: F811
    site, tenant = served.site, served.tenant
    manager = site.user(tenant, "administrator")
    client, csrf = site.login(manager)
    client.post(f"/t/{tenant}/waivers", data={"csrf_token": csrf, "title": "Izjava",
                                              "body": "Vadim na lastno odgovornost."})
    ziva = _member(served, client, csrf, "Živa")
    link = re.sub(r"^https?://[^/]+", served.base, phone_link(client, tenant, ziva))
    with chromium() as browser:
        checked = browser.new_context(bypass_csp=True, viewport={"width": 360, "height": 740},
                                      is_mobile=True).new_page()  # axe needs its script in
        checked.goto(link)
        checked.wait_for_selector("#waiver:not([hidden]) canvas")
        assert_accessible(checked, "phone waiver with the signature pad")
        assert_no_horizontal_scroll(checked)

        phone = browser.new_context(viewport={"width": 360, "height": 740},
                                    has_touch=True).new_page()  # the page's own CSP holds
        phone.set_default_timeout(10_000)
        phone.goto(link)
        phone.wait_for_selector("#waiver:not([hidden])")
        phone.locator("#waiver canvas").scroll_into_view_if_needed()
        draw(phone, "#waiver canvas")
        drawn = phone.input_value("#waiver-drawing")
        assert re.fullmatch(r"M\d+,\d+( [ML]\d+,\d+){8,}", drawn), drawn
        phone.click("#waiver-sign")  # consent missing: told, the drawing kept
        phone.wait_for_selector("#waiver-error:has-text('označite polje')")
        assert phone.input_value("#waiver-drawing") == drawn
        phone.check("#waiver-consent")
        phone.click("#waiver-sign")
        phone.wait_for_selector("#state:has-text('Podpisano')")
        sig = _signature(served, ziva)
        assert (sig["method"], sig["channel"], sig["signed_name"]) == ("drawn", "phone", "")
        assert sig["drawing_svg"] == drawn
        assert sig["drawing_sha256"] == hashlib.sha256(drawn.encode()).hexdigest()

        bor = _member(served, client, csrf, "Bor")
        staff = browser.new_page(viewport={"width": 1280, "height": 900})
        staff.set_default_timeout(10_000)
        sign_in(staff, served.base, manager)
        staff.goto(f"{served.base}/t/{tenant}/members/{bor}/waiver")
        draw(staff, ".signature-pad canvas")
        staff.click(".clear-signature")  # a slip: cleared, drawn again
        assert staff.input_value("#f-drawing") == ""
        draw(staff, ".signature-pad canvas")
        staff.check("#f-consent")
        assert_accessible(staff, "kiosk waiver with the signature pad")
        kiosk_drawn = staff.input_value("#f-drawing")
        staff.click("main form button[type=submit]")
        staff.wait_for_selector("#waiver-state")
        sig = _signature(served, bor)
        assert (sig["method"], sig["channel"]) == ("drawn", "kiosk")
        assert sig["drawing_svg"] == kiosk_drawn
