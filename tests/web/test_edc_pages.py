"""The E-EDC staff pages on a real app (SQLite and PostgreSQL): employees with their
number and PIN, absences and corrections entered with a reason through forms that are
checked on the server (messages beside the fields, typed values kept), the timesheet
marking them, who is at work now, month navigation and the CSV for Slovenian Excel."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud_bridge.db_schema import members
from contracts.pin_hash import check_pin
from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events
from tests.web.conftest import WebSite

LJ = ZoneInfo("Europe/Ljubljana")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<small id="e-{name}" class="field-error">([^<]*)</small>', html)
    return unescape(found.group(1)) if found else ""


def post(c: TestClient, csrf: str, path: str, **data: str) -> object:
    return c.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)


def pin_hash(site: WebSite, tenant: str, number: str) -> str | None:
    with site.engine.connect() as conn:
        return conn.execute(select(members.c.pin_hash).where(
            members.c.tenant == tenant, members.c.id == number)).scalar()


def test_employee_with_number_and_pin(site: WebSite) -> None:
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    assert admin.get(f"/t/{a}/employees/new").status_code == 200
    bad = post(admin, csrf, f"/t/{a}/employees", number="7 7", first_name="Ana",
               last_name="Novak", pin="12")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    html = bad.text  # type: ignore[attr-defined]
    assert field_error(html, "number") and field_error(html, "pin")
    assert 'value="Novak"' in html and 'value="12"' not in html  # a PIN is never sent back
    assert 'maxlength="16"' in html and "4 do 8 števk" in html  # the limits are shown
    ok = post(admin, csrf, f"/t/{a}/employees", number="77", first_name="Ana",
              last_name="Novak", pin="4321")
    assert ok.headers["location"] == f"/t/{a}/employees?saved=created"  # type: ignore[attr-defined]
    stored = pin_hash(site, a, "77")
    assert stored and "4321" not in stored and check_pin("4321", stored)
    listing = admin.get(f"/t/{a}/employees?saved=created").text
    assert "Zaposleni je dodan." in listing and "Ana Novak" in listing and "4321" not in listing
    again = post(admin, csrf, f"/t/{a}/employees", number="77", first_name="Ana", pin="")
    assert again.status_code == 422 and "77 je že zaseden" in again.text  # type: ignore[attr-defined]
    edit = post(admin, csrf, f"/t/{a}/employees/77", first_name="Ana", last_name="Kos",
                pin="98765")
    assert edit.status_code == 303  # type: ignore[attr-defined]
    stored = pin_hash(site, a, "77")
    assert stored and check_pin("98765", stored) and not check_pin("4321", stored)
    post(admin, csrf, f"/t/{a}/employees/77", first_name="Ana", last_name="Kos", remove_pin="1")
    assert pin_hash(site, a, "77") is None
    accountant, acsrf = site.login(site.user(a, "accountant"))
    assert "Ana Kos" in accountant.get(f"/t/{a}/employees").text
    refused = post(accountant, acsrf, f"/t/{a}/employees", number="78", first_name="X")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    other, _ = site.login(site.user(_b, "administrator"))
    assert "Ana" not in other.get(f"/t/{_b}/employees").text


def test_absence_and_correction_are_marked_on_the_timesheet(site: WebSite) -> None:
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    post(admin, csrf, f"/t/{a}/employees", number="5", first_name="Bojan", pin="1111")
    day = [("5", datetime(2026, 11, 3, 7, 0, tzinfo=LJ), "arrival"),
           ("5", datetime(2026, 11, 3, 15, 0, tzinfo=LJ), "departure")]
    ingest(site.engine, chain_events(a, "clock-1", day, Ed25519PrivateKey.generate()))

    missing = post(admin, csrf, f"/t/{a}/absences", employee="5", kind="sick_leave",
                   first_day="10. 11. 2026", last_day="9. 11. 2026", note="")
    assert missing.status_code == 422  # type: ignore[attr-defined]
    html = missing.text  # type: ignore[attr-defined]
    assert field_error(html, "note") == "Vnesite vsaj 3 znake."
    assert 'value="10. 11. 2026"' in html  # typed values kept
    order = post(admin, csrf, f"/t/{a}/absences", employee="5", kind="sick_leave",
                 first_day="10. 11. 2026", last_day="9. 11. 2026", note="gripa")
    assert field_error(order.text, "last_day")  # type: ignore[attr-defined]
    bad_day = post(admin, csrf, f"/t/{a}/absences", employee="5", kind="sick_leave",
                   first_day="31. 11. 2026", last_day="12. 11. 2026", note="gripa")
    assert field_error(bad_day.text, "first_day") == "Ta datum ne obstaja."  # type: ignore[attr-defined]
    saved = post(admin, csrf, f"/t/{a}/absences", employee="5", kind="sick_leave",
                 first_day="10. 11. 2026", last_day="11. 11. 2026", note="gripa")
    assert saved.status_code == 303  # type: ignore[attr-defined]
    twice = post(admin, csrf, f"/t/{a}/absences", employee="5", kind="annual_leave",
                 first_day="11. 11. 2026", last_day="11. 11. 2026", note="dopust")
    assert twice.status_code == 422 and field_error(twice.text, "first_day")  # type: ignore[attr-defined]

    no_reason = post(admin, csrf, f"/t/{a}/corrections?month=2026-11", employee="5",
                     action="amend", punch="clock-1#3", day="3. 11. 2026", time="16:30",
                     reason="x")
    assert no_reason.status_code == 422  # type: ignore[attr-defined]
    assert field_error(no_reason.text, "reason") == "Vnesite vsaj 3 znake."  # type: ignore[attr-defined]
    bad_time = post(admin, csrf, f"/t/{a}/corrections?month=2026-11", employee="5",
                    action="add", day="4. 11. 2026", time="25:70", punch_type="arrival",
                    reason="pozabil")
    assert field_error(bad_time.text, "time") == (  # type: ignore[attr-defined]
        "Vnesite uro kot ure:minute, na primer 7:30.")
    assert 'value="25:70"' in bad_time.text  # type: ignore[attr-defined]
    stranger = post(admin, csrf, f"/t/{a}/corrections?month=2026-11", employee="nobody",
                    action="add", day="4. 11. 2026", time="7:00", punch_type="arrival",
                    reason="pozabil")
    assert stranger.status_code == 422  # type: ignore[attr-defined]
    page = admin.get(f"/t/{a}/corrections", params={"employee": "5", "month": "2026-11"})
    ref = re.search(r'<option value="(clock-1#\d+)">[^<]*odhod', page.text)
    assert ref, page.text
    fixed = post(admin, csrf, f"/t/{a}/corrections?month=2026-11", employee="5",
                 action="amend", punch=ref.group(1), day="3. 11. 2026", time="16:30",
                 reason="pozabil odbiti odhod")
    assert fixed.status_code == 303  # type: ignore[attr-defined]

    sheet = admin.get(f"/t/{a}/timesheets", params={"month": "2026-11"}).text
    assert 'data-marked="2026-11-03"' in sheet and 'data-marked="2026-11-10"' in sheet
    words = text_of(sheet)
    assert "spremenjen vpis: pozabil odbiti odhod" in words
    assert "bolniška odsotnost: gripa" in words and "popravljen vpis" in words  # the legend
    assert "9:30" in words  # 07:00-16:30 after the correction
    admin.cookies.set("lang", "en")
    english = admin.get(f"/t/{a}/timesheets", params={"month": "2026-11"}).text
    assert "changed punch: pozabil odbiti odhod" in text_of(english)


def test_who_is_at_work_now(site: WebSite) -> None:
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    post(admin, csrf, f"/t/{a}/employees", number="9", first_name="Cene", pin="2222")
    post(admin, csrf, f"/t/{a}/employees", number="10", first_name="Dora", pin="3333")
    now = datetime.now(UTC)
    punches = [("9", now - timedelta(hours=2), "arrival"),
               ("10", now - timedelta(hours=3), "arrival"),
               ("10", now - timedelta(minutes=30), "departure")]
    ingest(site.engine, chain_events(a, "clock-2", punches, Ed25519PrivateKey.generate()))
    accountant, _ = site.login(site.user(a, "accountant"))
    sheet = accountant.get(f"/t/{a}/timesheets").text
    present = sheet.split('data-testid="present-now"')[1].split("</section>")[0]
    assert "9 Cene" in present and "Dora" not in present
    listing = accountant.get(f"/t/{a}/employees").text
    row9 = listing.split('data-employee="9"')[1].split("</tr>")[0]
    row10 = listing.split('data-employee="10"')[1].split("</tr>")[0]
    assert ">da<" in row9 and ">ne<" in row10


def test_month_navigation_bad_months_and_csv(site: WebSite) -> None:
    a, _b = site.tenants
    day = [("emp7", datetime(2026, 11, 3, 7, 0, tzinfo=LJ), "arrival"),
           ("emp7", datetime(2026, 11, 3, 15, 30, tzinfo=LJ), "departure")]
    ingest(site.engine, chain_events(a, "clock-1", day, Ed25519PrivateKey.generate()))
    accountant, _ = site.login(site.user(a, "accountant"))
    page = accountant.get(f"/t/{a}/timesheets", params={"month": "11. 2026"})
    assert page.status_code == 200 and "november 2026" in page.text
    assert 'href="?month=2026-10"' in page.text and 'href="?month=2026-12"' in page.text
    assert "/timesheets.csv?month=2026-11" in page.text and "window.print()" in page.text
    assert "@media print" in page.text
    for bad in ("11/2026", "abc", "13. 2026"):
        r = accountant.get(f"/t/{a}/timesheets", params={"month": bad},
                           headers={"accept": "text/html"})
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert "ni mesec" in text_of(r.text) or "Ni meseca" in text_of(r.text), r.text
    r = accountant.get(f"/t/{a}/corrections", params={"employee": "emp7", "month": "abc"})
    assert r.status_code == 422 and "»abc« ni mesec" in text_of(r.text)
    r = accountant.get(f"/t/{a}/timesheets.csv", params={"month": "2026-11"})
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Mesec", "Številka zaposlenega", "Ime in priimek", "Dni dela"]
    assert rows[0][4] == "Opravljene ure (h)"
    assert rows[1][1] == "emp7" and rows[1][4] == "8,50"  # 07:00-15:30 in decimal hours
    assert rows[-1][1] == "Skupaj"
