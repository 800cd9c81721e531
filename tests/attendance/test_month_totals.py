"""Acceptance: a month of punches of 50 employees on three time clocks (October 2026:
the DST night of 24/25 October, night shifts across midnight into the work-free Sunday
1 November, the work-free Saturday 31 October, Sundays, leave, sick leave, forgotten
departures) gives the totals counted independently from the generator's plan — read
from the bridge's events table on SQLite and PostgreSQL, through the report, the CSV
and the JSON API."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cloud_bridge.api import ApiContext, create_app
from cloud_bridge.attendance.absences import AbsenceIn, create_absence
from cloud_bridge.attendance.reports import company_csv, month_report, report_html
from cloud_bridge.attendance.timesheet import AbsenceKind
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.i18n import use_language
from tests.attendance.conftest import API_TOKEN, FakePublisher, ingest
from tests.attendance.punch_plan import Expected, MonthPlan, make_plan, plan_events

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)


def hm_seconds(text: str) -> float:
    """'1234:05' (hours and minutes, as the CSV prints them) -> seconds."""
    h, m = text.split(":")
    return (int(h) * 60 + int(m)) * 60.0


def load(engine: Engine, tenant: str) -> tuple[MonthPlan, dict[str, Expected]]:
    plan = make_plan(50)
    keys = {f"clock-{i}": Ed25519PrivateKey.generate() for i in range(3)}
    ingest(engine, plan_events(plan, tenant, keys))
    with write_tx(engine) as conn:
        for emp, kind, first, last in plan.absences:
            create_absence(conn, tenant, AbsenceIn(emp, AbsenceKind(kind), first, last,
                                                   "admin:test"))
    return plan, plan.expected()


def test_month_of_50_employees_matches_the_plan(engine: Engine, tenant: str,
                                                artifacts_dir: Path) -> None:
    plan, expected = load(engine, tenant)
    t0 = time.perf_counter()
    with read_tx(engine) as conn:
        report = month_report(conn, tenant, 2026, 10, as_of=AS_OF)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"month report took {elapsed:.1f} s"
    got = {e.employee: e.sheet.totals for e in report.employees}
    assert sorted(got) == plan.employees
    for emp, exp in expected.items():
        t = got[emp]
        assert (t.worked_s, t.overtime_s, t.night_s, t.sunday_s, t.holiday_s, t.break_s,
                t.trip_s, t.private_s) == (exp.worked, exp.overtime, exp.night, exp.sunday,
                                           exp.holiday, exp.breaks, exp.trip, exp.private), emp
        assert t.days_worked == exp.days_worked, emp
        assert t.alerts == exp.alerts, emp
        assert t.absences == exp.absences, emp
    # running totals: the first week reaches back into September, the month does not
    for e in report.employees[:5]:
        days = {d.day: d for d in e.sheet.days}
        assert days[date(2026, 10, 4)].week_worked_s == plan.week_worked(
            e.employee, date(2026, 9, 28)), e.employee
        assert days[date(2026, 10, 25)].week_worked_s == plan.week_worked(
            e.employee, date(2026, 10, 19)), e.employee
        assert days[date(2026, 10, 31)].month_worked_s == expected[e.employee].worked
    # the plan really covers what it is meant to
    assert sum(e.night for e in expected.values()) > 0
    assert sum(e.holiday for e in expected.values()) > 0
    assert sum(e.alerts for e in expected.values()) >= 3
    night_worker = report.employees[3].sheet  # e003 works 22-06
    dst = next(d for d in night_worker.days if d.day.day == 24)
    assert dst.worked_s == 9 * 3600  # the 25-hour day's night
    last = next(d for d in night_worker.days if d.day.day == 31)
    assert last.worked_s == 8 * 3600 and last.holiday_s == 8 * 3600  # 31 Oct + 1 Nov

    # the company CSV carries the same figures, and the total row adds up
    rows = list(csv.DictReader(io.StringIO(company_csv(report))))
    total = rows[-1]
    assert total["employee"] == "TOTAL"
    assert hm_seconds(total["worked_h"]) == sum(e.worked for e in expected.values())
    assert hm_seconds(total["night_h"]) == sum(e.night for e in expected.values())
    assert hm_seconds(total["overtime_h"]) == sum(e.overtime for e in expected.values())
    assert int(total["alerts"]) == sum(e.alerts for e in expected.values())
    html = report_html(report)
    assert html.count('class="employee"') == 50 and "manjka odhod" in html  # Slovenian
    with use_language("en"):
        assert "missing departure" in report_html(report)
    (artifacts_dir / f"attendance-2026-10-{engine.dialect.name}.html").write_text(html)
    print(f"\nmonth report, 50 employees, {engine.dialect.name}: {elapsed * 1000:.0f} ms")


def test_report_through_the_api(engine: Engine, tenant: str, keys_dir: Path,
                                published: FakePublisher) -> None:
    _plan, expected = load(engine, tenant)
    keys = TenantKeyStore(keys_dir)
    ctx = ApiContext(engine, keys, ChangeFeed(keys, published, "es/v1"), published, "es/v1",
                     API_TOKEN)
    base = f"/api/v1/tenants/{tenant}/attendance"
    with TestClient(create_app(ctx)) as anon:
        assert anon.get(f"{base}/report?month=2026-10").status_code == 401
    with TestClient(create_app(ctx), headers={"Authorization": f"Bearer {API_TOKEN}"}) as c:
        assert c.get("/api/v1/tenants/nobody/attendance/report?month=2026-10"
                     ).status_code == 404
        assert c.get(f"{base}/report?month=2026-13").status_code == 422
        body = c.get(f"{base}/report?month=2026-10").json()
        assert body["totals"]["worked_min"] * 60 == sum(e.worked for e in expected.values())
        assert body["rules"]["overtime_basis"] == "week"
        sheet = c.get(f"{base}/timesheets/e003?month=2026-10").json()
        assert sheet["totals"]["night_min"] * 60 == expected["e003"].night
        oct24 = sheet["days"][23]
        assert oct24["arrival"].startswith("2026-10-24T22:00:00+02:00")
        assert oct24["departure"].startswith("2026-10-25T06:00:00+01:00")
        alerts = c.get(f"{base}/alerts?month=2026-10").json()
        assert sum(a["missing_departure"] for a in alerts) == sum(
            e.alerts for e in expected.values())
        csv_text = c.get(f"{base}/report?month=2026-10&format=csv").text
        assert csv_text.splitlines()[0].startswith("month,employee,name,days_worked")
        company = c.get(f"{base}/report?month=2026-10&format=html").text
        assert company.count('class="employee"') == 50
        per_day = c.get(f"{base}/report?month=2026-10&format=csv-days").text.splitlines()
        assert len(per_day) == 1 + 50 * 32
        assert c.get(f"{base}/report?month=2026-10&format=pdf").status_code == 422
        page = c.get(f"{base}/timesheets/e001/html?month=2026-10")
        assert page.headers["content-type"].startswith("text/html")
        assert "e001" in page.text


def test_report_cli(engine: Engine, db_url: str, tenant: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cloud_bridge.cli import app

    _plan, expected = load(engine, tenant)
    runner = CliRunner()
    base = ["attendance", "report", "--tenant", tenant, "--month", "2026-10", "--db", db_url]
    out = runner.invoke(app, [*base, "--format", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 51 and rows[-1]["employee"] == "TOTAL"
    assert hm_seconds(rows[-1]["sunday_h"]) == sum(e.sunday for e in expected.values())
    detail = runner.invoke(app, [*base, "--detail", "--employee", "e003"])
    days = list(csv.DictReader(io.StringIO(detail.stdout)))
    assert len(days) == 32 and days[23]["arrival"] == "22:00"
    assert days[23]["departure"] == "06:00" and days[23]["worked_h"] == "9:00"
    page = tmp_path / "report.html"
    html = runner.invoke(app, [*base, "--format", "html", "-o", str(page)])
    assert html.exit_code == 0 and page.read_text().count('class="employee"') == 50
    assert runner.invoke(app, [*base, "--format", "pdf"]).exit_code == 2
