"""The E-EDC timesheets page of the web modules: a month of a time clock's punches as the
printable report and CSV, for accountants and administrators of the tenant only."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events
from tests.web.conftest import WebSite

LJ = ZoneInfo("Europe/Ljubljana")


def test_accountant_sees_the_month_and_other_tenants_do_not(site: WebSite) -> None:
    a, b = site.tenants
    day = [("emp-7", datetime(2026, 11, 3, 7, 0, tzinfo=LJ), "arrival"),
           ("emp-7", datetime(2026, 11, 3, 15, 30, tzinfo=LJ), "departure")]
    ingest(site.engine, chain_events(a, "clock-1", day, Ed25519PrivateKey.generate()))

    accountant, _ = site.login(site.user(a, "accountant"))
    page = accountant.get(f"/t/{a}/timesheets", params={"month": "2026-11"})
    assert page.status_code == 200
    assert "emp-7" in page.text
    assert "8:30" in page.text  # 07:00-15:30, no break punched (hours:minutes)
    csv = accountant.get(f"/t/{a}/timesheets.csv", params={"month": "2026-11"})
    assert csv.status_code == 200 and "emp-7" in csv.text
    assert accountant.get(f"/t/{a}/timesheets", params={"month": "11/2026"}).status_code == 422

    reception, _ = site.login(site.user(a, "reception"))
    assert reception.get(f"/t/{a}/timesheets").status_code == 403
    other, _ = site.login(site.user(b, "administrator"))
    assert other.get(f"/t/{a}/timesheets", params={"month": "2026-11"}).status_code == 404
    own = other.get(f"/t/{b}/timesheets", params={"month": "2026-11"})
    assert own.status_code == 200 and "emp-7" not in own.text
