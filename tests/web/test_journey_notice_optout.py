"""Chromium (real server): a member opens the link at the end of a notice e-mail, sees
that they get messages, stops them and starts them again; the page runs under its own
Content-Security-Policy, a wrong link says so, and the page passes axe."""

from __future__ import annotations

import pytest

from cloud_bridge.db_schema import write_tx
from cloud_bridge.member_notices import OptoutLinks
from cloud_bridge.member_qr_links import load_link_key
from cloud_bridge.notice_optouts import opted_out
from tests.a11y import assert_accessible, assert_no_horizontal_scroll
from tests.browser import chromium
from tests.web.test_journeys_gym import Served, served  # noqa: F401 - fixture

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_the_member_stops_and_restores_messages(served: Served) -> None:  # noqa: F811
    from cloud_bridge.api_models import MemberIn
    from cloud_bridge.membership_ops import create_member

    site, tenant = served.site, served.tenant
    with write_tx(site.engine) as conn:
        ana, _ = create_member(conn, tenant, MemberIn(first_name="Ana",
                                                      email="ana@example.si"))
    link = OptoutLinks(served.base, load_link_key(site.keys_dir)).url(tenant, ana)
    with chromium() as browser:
        phone = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
        phone.set_default_timeout(10_000)
        phone.goto(link)
        phone.wait_for_selector("#toggle:has-text('Ne pošiljajte mi sporočil')")
        assert "Prejemate naša sporočila" in (phone.text_content("#state") or "")
        phone.click("#toggle")
        phone.wait_for_selector("#state:has-text('Od nas ne prejemate sporočil')")
        with site.engine.connect() as conn:
            assert opted_out(conn, tenant, ana, "membership_expiring")
        phone.reload()  # the choice is the server's, not the page's
        phone.wait_for_selector("#toggle:has-text('Spet mi pošiljajte sporočila')")
        phone.click("#toggle")
        phone.wait_for_selector("#state:has-text('Prejemate naša sporočila')")
        with site.engine.connect() as conn:
            assert not opted_out(conn, tenant, ana)

        wrong = phone.context.new_page()  # a changed fragment alone would not reload
        wrong.goto(link.replace("#k=", "#k=x"))
        wrong.wait_for_selector("#state.refused")
        assert "Ta povezava ni veljavna" in (wrong.text_content("#state") or "")
        assert wrong.is_hidden("#toggle")

        checked = browser.new_context(bypass_csp=True,
                                      viewport={"width": 360, "height": 740}).new_page()
        checked.goto(link)
        checked.wait_for_selector("#toggle:not([hidden])")
        assert_accessible(checked, "member notice page")
        assert_no_horizontal_scroll(checked)
