"""The sales-and-use statistics page in headless Chromium against a real uvicorn server:
the manager signs in, picks a period, reads the heatmap and its table in Slovenian, and a
mistyped day comes back beside its field. axe-core checks the page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.a11y import assert_accessible, screenshot
from tests.browser import chromium
from tests.web.seed import add_events, decision
from tests.web.test_journeys_gym import Served, served, sign_in  # noqa: F401 - fixture

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_manager_reads_the_heatmap_and_its_table(served: Served) -> None:  # noqa: F811
    engine, tenant = served.site.engine, served.tenant
    # Tuesday 3 November 2026: 06:30 and 06:45 UTC are 07:30 and 07:45 in Ljubljana;
    # Saturday 7 November 17:10 UTC is 18:10; a denied tap does not count
    tue = datetime(2026, 11, 3, 6, 30, tzinfo=UTC)
    add_events(engine, tenant, "gate-1", [decision("m-1", True, "granted")], 1, ts=tue)
    add_events(engine, tenant, "gate-1", [decision("m-2", True, "granted")], 2,
               ts=tue.replace(minute=45))
    add_events(engine, tenant, "gate-1", [decision("m-1", True, "granted")], 3,
               ts=datetime(2026, 11, 7, 17, 10, tzinfo=UTC))
    add_events(engine, tenant, "gate-1", [decision(None, False, "unknown_credential")], 4,
               ts=tue.replace(minute=50))
    manager = served.site.user(tenant, "administrator")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        sign_in(page, served.base, manager)
        page.goto(f"{served.base}/t/{tenant}/sales-stats")
        page.fill("#f-from", "1. 11. 2026")
        page.fill("#f-to", "30. 11. 2026")
        page.click("main form button[type=submit]")
        page.wait_for_url("**/sales-stats?from=*")
        assert page.locator("h1").inner_text() == "Prodaja in obisk"
        heat = page.locator("svg.heatmap")
        assert heat.locator("rect.cell").count() == 7 * 24
        assert (heat.locator("title").first.text_content() or "").startswith(
            "Vstopi po dnevih v tednu in urah, 1. 11. 2026")
        cell = heat.locator('rect.cell[data-day="1"][data-hour="7"]')
        assert cell.get_attribute("data-n") == "2"
        assert cell.locator("title").text_content() == "tor ob 07 h, vstopi: 2"
        assert heat.locator('rect.cell[data-day="5"][data-hour="18"]').get_attribute(
            "data-n") == "1"
        table = page.locator("#table-entries")
        assert table.locator("caption").inner_text() == "Vstopi po dnevih v tednu in urah"
        tuesday = table.locator("tbody tr").nth(1)
        assert tuesday.locator("th").text_content() == "tor"
        assert tuesday.locator("td").nth(7).inner_text() == "2"
        assert tuesday.locator("td").last.inner_text() == "2"
        assert table.locator("tbody tr").nth(5).locator("td").last.inner_text() == "1"
        assert_accessible(page, "sales stats")
        screenshot(page, "sales-stats-1-november")

        page.fill("#f-from", "31. 11. 2026")
        page.click("main form button[type=submit]")
        error = page.locator("#e-from")
        assert error.is_visible() and error.inner_text()
        assert page.locator("#f-from").input_value() == "31. 11. 2026"
        assert page.locator("#f-from").get_attribute("aria-invalid") == "true"
        assert_accessible(page, "sales stats with a mistake")
        screenshot(page, "sales-stats-2-mistake")
