"""The staff page in Chromium (real server): a receptionist issues a gift voucher, an
error is shown beside its field with what was typed kept, the ticket's page shows the QR
and links the printable PDF. Each view passes axe."""

from __future__ import annotations

import pytest

from tests.a11y import assert_accessible
from tests.browser import chromium
from tests.web.conftest import engine, site  # noqa: F401 - fixtures
from tests.web.test_journeys_gym import Served, served, sign_in  # noqa: F401 - fixture

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_issue_a_voucher_and_see_its_qr_and_pdf(served: Served) -> None:  # noqa: F811
    t = f"{served.base}/t/{served.tenant}"
    clerk = served.site.user(served.tenant, "reception")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        sign_in(page, served.base, clerk)
        page.goto(f"{t}/tickets")
        assert_accessible(page, "tickets page")
        page.select_option("#f-kind", "value")
        page.fill("#f-label", "Za rojstni dan")
        page.fill("#f-price", "25")
        page.fill("#f-valid_from", "1. 12. 2026")
        page.click("#issue-ticket button[type=submit]")
        # no amount for a value voucher: told beside the field, the rest kept
        page.wait_for_selector(".field.invalid #f-value")
        assert page.input_value("#f-label") == "Za rojstni dan"
        assert "potrebuje znesek" in (page.text_content("#issue-ticket") or "")
        page.fill("#f-value", "25,00")
        page.click("#issue-ticket button[type=submit]")
        page.wait_for_selector("p.notice")
        assert "Vstopnica je izdana." in (page.text_content("p.notice") or "")
        assert (page.text_content("#ticket-balance") or "").strip().startswith("25,00")
        page.wait_for_function(
            "document.querySelector('#ticket-qr').complete"
            " && document.querySelector('#ticket-qr').naturalWidth > 100")
        assert_accessible(page, "ticket page")
        href = page.get_attribute("#ticket-pdf", "href")
        assert href and href.endswith("/ticket.pdf")
        pdf = page.request.get(served.base + href)
        assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF")
        page.goto(f"{t}/tickets")
        assert "Za rojstni dan" in (page.text_content("table.tickets") or "")
        assert "25,00" in (page.text_content("#liabilities") or "")
