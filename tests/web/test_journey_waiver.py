"""One browser journey (Chromium, real server): the manager publishes a waiver on the
staff page; the member opens their phone link, is asked to sign, is told what is missing,
signs; a new version asks again. Each view passes axe."""

from __future__ import annotations

import re

import pytest

from tests.a11y import assert_accessible, assert_no_horizontal_scroll
from tests.browser import chromium
from tests.web.test_journeys_gym import Served, served, sign_in  # noqa: F401 - fixture
from tests.web.test_member_phone_link import phone_link

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_waiver_published_then_signed_on_the_phone(served: Served) -> None:  # noqa: F811
    site, tenant = served.site, served.tenant
    t = f"{served.base}/t/{tenant}"
    manager = site.user(tenant, "administrator")
    client, csrf = site.login(manager)
    loc = client.post(f"/t/{tenant}/members", data={"csrf_token": csrf, "first_name": "Živa",
                                                    "last_name": "Kos"}, follow_redirects=False)
    member_id = loc.headers["location"].split("/members/")[1].split("?")[0]
    client.post(f"/t/{tenant}/members/{member_id}/credentials",
                data={"csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False)
    client.post(f"/t/{tenant}/members/{member_id}/entitlements",
                data={"csrf_token": csrf, "kind": "punch_card", "entries_total": "10"})
    link = re.sub(r"^https?://[^/]+", served.base, phone_link(client, tenant, member_id))
    with chromium() as browser:
        staff = browser.new_page(viewport={"width": 1280, "height": 900})
        staff.set_default_timeout(10_000)
        sign_in(staff, served.base, manager)
        staff.goto(f"{t}/waivers")
        staff.fill("#f-title", "Izjava o prevzemu odgovornosti")
        staff.fill("#f-body", "Vadim na lastno odgovornost.")
        staff.click("main form button[type=submit]")
        staff.wait_for_selector("p.notice")
        assert "Izjava o prevzemu odgovornosti" in (staff.text_content("main table") or "")
        assert_accessible(staff, "waivers page")

        phone = browser.new_context(bypass_csp=True, viewport={"width": 360, "height": 740},
                                    is_mobile=True).new_page()
        phone.set_default_timeout(10_000)
        phone.goto(link)
        phone.wait_for_selector("#waiver:not([hidden])")
        assert "Vadim na lastno odgovornost." in (phone.text_content("#waiver-text") or "")
        assert "Preberite in podpišite izjavo." in (phone.text_content("#waiver-ask") or "")
        phone.fill("#waiver-name", "Živa Kos")
        phone.click("#waiver-sign")  # consent not ticked: told what is missing
        phone.wait_for_selector("#waiver-error:has-text('označite polje')")
        assert phone.input_value("#waiver-name") == "Živa Kos"
        assert_accessible(phone, "phone waiver")
        assert_no_horizontal_scroll(phone)
        phone.check("#waiver-consent")
        phone.click("#waiver-sign")
        phone.wait_for_selector("#waiver", state="hidden")
        phone.wait_for_selector("#state:has-text('Podpisano')")

        staff.goto(f"{t}/waivers")
        staff.fill("#f-title", "Izjava o prevzemu odgovornosti")
        staff.fill("#f-body", "Vadim na lastno odgovornost. Savna največ 15 minut.")
        staff.click("main form button[type=submit]")
        staff.wait_for_selector("p.notice")
        phone.reload()
        phone.wait_for_selector("#waiver:not([hidden])")
        assert "znova" in (phone.text_content("#waiver-ask") or "")
