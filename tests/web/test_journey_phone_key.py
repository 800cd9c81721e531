"""Chromium (real server): the member app opens the member's phone link with its key and
a proof in the fragment; the member confirms on the page, under its real CSP, and the
phone is enrolled as a contactless key (issue 18, part 3; docs/phone_nfc.md)."""

from __future__ import annotations

import re

import pytest

from cloud_bridge.phone_enrolment import enrolment_message
from tests.browser import chromium
from tests.web.test_journeys_gym import Served, served  # noqa: F401 - fixture
from tests.web.test_phone_key_page import _app_key, _member_with_link, _phones


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_member_confirms_on_the_phone_page(served: Served) -> None:  # noqa: F811
    site, tenant = served.site, served.tenant
    _admin, member, link, _secret = _member_with_link(site, tenant)
    key, public = _app_key()
    proof = key.sign(enrolment_message(tenant, member)).hex()
    app_link = (re.sub(r"^https?://[^/]+", served.base, link)
                + f"&phone_key={public}&proof={proof}")
    with chromium() as browser:
        phone = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
        phone.set_default_timeout(10_000)
        phone.goto(app_link)
        phone.wait_for_selector("#phone-key:not([hidden])")
        assert phone.text_content("#phone-key-enrol") == "Prijavi ta telefon"
        phone.click("#phone-key-enrol")
        phone.wait_for_selector("#phone-key-state:has-text('Ta telefon zdaj odpira vrata.')")
        assert phone.is_hidden("#phone-key-enrol")
        assert len(_phones(site, tenant, member)) == 1
        assert "phone_key" not in phone.url  # the key is taken out of the address
