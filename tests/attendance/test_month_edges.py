"""Issue 23: the stored path (ingest, corrections, absences, month report, CSV, HTML and
JSON API) at the month's edges — long shifts across a month boundary, absences that share
a day, rounding to whole minutes, the overtime rule per employer, two corrections of one
punch, and a paid holiday that a night shift runs into. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from cloud_bridge.api import ApiContext, create_app
from cloud_bridge.attendance.schema import absences
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import write_tx
from cloud_bridge.tenant_keys import TenantKeyStore
from tests.attendance.conftest import API_TOKEN, FakePublisher, ingest
from tests.attendance.punch_plan import LJ, chain_events

KEY = Ed25519PrivateKey.generate()
Punches = list[tuple[str, datetime, str]]
ADMIN = {"author": "admin:maja"}


def at(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=LJ)


@pytest.fixture
def client(engine: Engine, tenant: str, keys_dir: Path,
           published: FakePublisher) -> Iterator[TestClient]:
    keys = TenantKeyStore(keys_dir)
    ctx = ApiContext(engine, keys, ChangeFeed(keys, published, "es/v1"), published, "es/v1",
                     API_TOKEN)
    with TestClient(create_app(ctx), headers={"Authorization": f"Bearer {API_TOKEN}"},
                    base_url=f"http://t/api/v1/tenants/{tenant}/attendance/") as c:
        yield c


def load(engine: Engine, tenant: str, punches: Punches, device: str = "clock-1") -> None:
    ingest(engine, chain_events(tenant, device, sorted(punches, key=lambda p: p[1]), KEY,
                                head_every=50))


def sheet(c: TestClient, employee: str, month: str) -> dict[str, Any]:
    r = c.get(f"timesheets/{employee}", params={"month": month})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def days_csv(c: TestClient, month: str) -> list[dict[str, str]]:
    text = c.get("report", params={"month": month, "format": "csv-days"}).text
    return list(csv.DictReader(io.StringIO(text)))


def hm(text: str) -> int:
    """'8:08' -> 488 minutes; blank -> 0."""
    if not text:
        return 0
    h, m = text.split(":")
    return int(h) * 60 + int(m)


# -- 1. shifts across the month's edges -------------------------------------------------

def test_a_shift_across_the_months_end_belongs_to_the_month_of_its_arrival(
        client: TestClient, engine: Engine, tenant: str) -> None:
    load(engine, tenant, [
        # the case: Saturday 31 October 23:30 to Sunday 1 November 17:30 (18 h)
        ("e1", at(2026, 10, 31, 23, 30), "arrival"),
        ("e1", at(2026, 11, 1, 10), "break_start"),
        ("e1", at(2026, 11, 1, 10, 30), "break_end"),
        ("e1", at(2026, 11, 1, 17, 30), "departure"),
        # however long: 41 h from Friday 30 October 20:00
        ("e2", at(2026, 10, 30, 20), "arrival"),
        ("e2", at(2026, 11, 1, 13), "departure"),
        # the mirror case: Sunday 31 May 06:30 to Monday 1 June 00:30
        ("e3", at(2026, 5, 31, 6, 30), "arrival"),
        ("e3", at(2026, 6, 1, 0, 30), "departure"),
        # a stray departure in June stays a stray
        ("e3", at(2026, 6, 2, 16), "departure"),
    ])
    oct31 = sheet(client, "e1", "2026-10")["days"][30]
    assert oct31["worked_min"] == 18 * 60  # the 30 paid break minutes included
    assert oct31["break_min"] == 30 and oct31["departure"].startswith("2026-11-01T17:30")
    assert [a[:31] for a in oct31["alerts"]] == ["departure 18.0 h after the arri"]
    assert not any(d["alerts"] or d["worked_min"] for d in sheet(client, "e1", "2026-11")["days"])
    e2 = sheet(client, "e2", "2026-10")
    assert e2["days"][29]["worked_min"] == 41 * 60 and e2["totals"]["worked_min"] == 41 * 60
    nov = {a["employee"] for a in client.get("alerts", params={"month": "2026-11"}).json()}
    assert nov == set()

    may = sheet(client, "e3", "2026-05")
    assert may["days"][30]["worked_min"] == 18 * 60
    june = client.get("alerts", params={"month": "2026-06"}).json()
    assert [(a["date"], a["alert"]) for a in june] == [
        ("2026-06-02", "departure without an arrival: ignored")]
    # the CSV and HTML show the same row
    row = next(r for r in days_csv(client, "2026-10")
               if r["employee"] == "e1" and r["date"] == "2026-10-31")
    assert (row["arrival"], row["departure"], row["worked_h"]) == ("23:30", "17:30", "18:00")
    html = client.get("timesheets/e1/html", params={"month": "2026-10"}).text
    assert "<td>23:30</td><td>17:30</td><td>18:00</td>" in html


def test_a_shift_from_before_the_first_week_is_not_a_stray(
        client: TestClient, engine: Engine, tenant: str) -> None:
    """November 2026 reads from Monday 26 October; a 30-hour shift from Sunday 25 October
    belongs to that Sunday, so its departure on the 27th is neither counted nor a stray."""
    load(engine, tenant, [("e1", at(2026, 10, 25, 8), "arrival"),
                          ("e1", at(2026, 10, 26, 14), "departure"),
                          ("e1", at(2026, 11, 2, 7), "arrival"),
                          ("e1", at(2026, 11, 2, 15), "departure")])
    nov = sheet(client, "e1", "2026-11")
    assert nov["totals"]["alerts"] == 0 and nov["totals"]["worked_min"] == 8 * 60
    assert nov["days"][1]["week_to_date_min"] == 8 * 60  # Monday 2 November


# -- 2. absences that share a day ------------------------------------------------------

def test_absences_share_a_day_only_as_parts_of_it(client: TestClient) -> None:
    def post(kind: str, first: str, last: str, hours: float | None = None) -> Any:
        return client.post("absences", json={**ADMIN, "employee": "e1", "kind": kind,
                                             "first_day": first, "last_day": last,
                                             "hours_per_day": hours})

    assert post("other", "2026-11-10", "2026-11-10", 4).status_code == 201
    assert post("other", "2026-11-10", "2026-11-10", 2).status_code == 201
    leave = post("annual_leave", "2026-11-16", "2026-11-20")
    assert leave.status_code == 201
    twice = post("annual_leave", "2026-11-19", "2026-11-19")
    assert twice.status_code == 422
    assert f"already has absence {leave.json()['id']}" in twice.json()["detail"]
    assert post("other", "2026-11-10", "2026-11-10", 3).status_code == 422  # 4 + 2 + 3 > 8
    assert post("sick_leave", "2026-11-13", "2026-11-16").status_code == 422  # the 16th
    # a weekend day is no working day: nothing overlaps there
    assert post("other", "2026-11-21", "2026-11-22").status_code == 201

    s = sheet(client, "e1", "2026-11")
    assert s["days"][9]["absences_min"] == {"other": 360}
    assert s["totals"]["absences_min"] == {"annual_leave": 40 * 60, "other": 360}
    row = next(r for r in days_csv(client, "2026-11") if r["date"] == "2026-11-10")
    assert row["other_absence_h"] == "6:00"
    html = client.get("timesheets/e1/html", params={"month": "2026-11"}).text
    assert "druga odsotnost 6:00" in html


def test_overlapping_rows_stored_before_the_rule_agree_everywhere(
        client: TestClient, engine: Engine, tenant: str) -> None:
    """Rows entered before overlaps were refused: every output shows their sum."""
    with write_tx(engine) as conn:
        for _ in range(2):
            conn.execute(insert(absences).values(
                tenant=tenant, employee="e1", kind="annual_leave", first_day="2026-11-10",
                last_day="2026-11-10", hours_per_day=None, note="", created_by="legacy",
                created_at=0))
    s = sheet(client, "e1", "2026-11")
    assert s["days"][9]["absences_min"] == {"annual_leave": 16 * 60}
    assert s["totals"]["absences_min"] == {"annual_leave": 16 * 60}
    row = next(r for r in days_csv(client, "2026-11") if r["date"] == "2026-11-10")
    total = next(r for r in days_csv(client, "2026-11") if r["departure"] == "TOTAL")
    assert row["annual_leave_h"] == total["annual_leave_h"] == "16:00"


# -- 3. rounding: whole minutes, rows add up to the totals ------------------------------

def test_minutes_are_rounded_half_up_and_rows_add_up(
        client: TestClient, engine: Engine, tenant: str) -> None:
    load(engine, tenant, [
        # exactly 8.125 h = 487.5 minutes -> 488 (8:08), not 8.12
        ("e1", at(2026, 11, 3, 7), "arrival"), ("e1", at(2026, 11, 3, 15, 7, 30), "departure"),
        # 20 + 20 + 20 + 7.2 minutes: rows 0:20 0:20 0:20 0:07, total 1:07
        *[(p, at(2026, 11, d, 9), "arrival") for p, d in (("e2", 3), ("e2", 4), ("e2", 5))],
        *[(p, at(2026, 11, d, 9, 20), "departure") for p, d in (("e2", 3), ("e2", 4),
                                                                  ("e2", 5))],
        ("e2", at(2026, 11, 6, 9), "arrival"), ("e2", at(2026, 11, 6, 9, 7, 12), "departure"),
    ])
    e1 = sheet(client, "e1", "2026-11")
    assert e1["days"][2]["worked_min"] == 488 and e1["totals"]["worked_min"] == 488
    rows = [r for r in days_csv(client, "2026-11") if r["employee"] == "e2"]
    assert [r["worked_h"] for r in rows[2:6]] == ["0:20", "0:20", "0:20", "0:07"]
    assert rows[-1]["worked_h"] == "1:07"
    assert sheet(client, "e2", "2026-11")["totals"]["worked_min"] == 67


COLUMNS = ("worked", "overtime", "night", "sunday", "holiday", "break", "trip", "private")


def _random_month(rng: random.Random, employees: int) -> Punches:
    out: Punches = []
    for i in range(employees):
        emp = f"r{i}"
        day = date(2026, 11, 1) - timedelta(days=2)
        while day < date(2026, 12, 2):
            day += timedelta(days=rng.choice((1, 1, 1, 2)))
            start = at(day.year, day.month, day.day, rng.randrange(0, 24), rng.randrange(60),
                       rng.randrange(60))
            t = start
            out.append((emp, t, "arrival"))
            for opens, closes in rng.sample([("break_start", "break_end"),
                                             ("trip_start", "trip_end"),
                                             ("private_start", "private_end")],
                                            rng.randrange(0, 3)):
                t += timedelta(seconds=rng.randrange(600, 4 * 3600))
                out.append((emp, t, opens))
                t += timedelta(seconds=rng.randrange(60, 3600))
                out.append((emp, t, closes))
            out.append((emp, t + timedelta(seconds=rng.randrange(600, 11 * 3600)),
                        "departure"))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_random_months_print_rows_that_add_up_in_csv_html_and_json(
        client: TestClient, engine: Engine, tenant: str, seed: int) -> None:
    load(engine, tenant, _random_month(random.Random(seed), 4))
    rows = days_csv(client, "2026-11")
    html = client.get("report", params={"month": "2026-11", "format": "html"}).text
    for emp in (f"r{i}" for i in range(4)):
        mine = [r for r in rows if r["employee"] == emp]
        days, total = mine[:-1], mine[-1]
        assert len(days) == 30 and total["departure"] == "TOTAL"
        js = sheet(client, emp, "2026-11")
        for col in COLUMNS:
            printed = [hm(r[f"{col}_h"]) for r in days]
            assert sum(printed) == hm(total[f"{col}_h"]), (emp, col)
            assert [d[f"{col}_min"] for d in js["days"]] == printed, (emp, col)
            assert js["totals"][f"{col}_min"] == hm(total[f"{col}_h"]), (emp, col)
        assert hm(days[-1]["month_to_date_h"]) == hm(total["worked_h"])
        # the HTML day rows of this employee carry the same worked figures
        section = html.split(f'data-employee="{emp}"')[1].split("</section>")[0]
        cells = re.findall(r'<td class="l">\d{1,2}\. \d{1,2}\. \d{4} \w+</td>\n'
                           r"<td>([\d:]*)</td><td>([\d:]*)</td><td>([\d:]*)</td>", section)
        assert [hm(w) for _a, _d, w in cells] == [hm(r["worked_h"]) for r in days]
        assert (f"<td>{total['worked_h']}</td>\n<td>{total['overtime_h']}</td>"
                in section)


# -- 4. the overtime rule --------------------------------------------------------------

def test_overtime_by_the_week_by_default_or_by_the_day_per_employer(
        client: TestClient, engine: Engine, tenant: str) -> None:
    week: Punches = []
    for d in range(2, 8):  # Monday 2 to Saturday 7 November: six 8-hour days
        week += [("e1", at(2026, 11, d, 7), "arrival"), ("e1", at(2026, 11, d, 15),
                                                         "departure")]
    week += [("e1", at(2026, 11, 9, 7), "arrival"), ("e1", at(2026, 11, 9, 17), "departure")]
    load(engine, tenant, week)
    assert client.get("rules").json() == {"overtime_basis": "week", "daily_hours": 8.0,
                                          "weekly_hours": 40.0, "uneven_schedule": False}
    s = sheet(client, "e1", "2026-11")
    assert [d["overtime_min"] for d in s["days"][1:9]] == [0, 0, 0, 0, 0, 480, 0, 0]
    assert s["totals"]["overtime_min"] == 480  # 48 h in the week; the 10-h Monday is not
    assert client.put("rules", json={**ADMIN, "overtime_basis": "day"}).status_code == 200
    s = sheet(client, "e1", "2026-11")
    assert s["totals"]["overtime_min"] == 120  # only the 10-hour Monday 9th
    html = client.get("timesheets/e1/html", params={"month": "2026-11"}).text
    assert "nadure nad 8 ur na dan" in html
    bad = client.put("rules", json={**ADMIN, "overtime_basis": "week", "weekly_hours": 45})
    assert bad.status_code == 422
    assert client.put("rules", json={**ADMIN, "overtime_basis": "month"}).status_code == 422
    trail = client.get("audit").json()
    assert [t["action"] for t in trail] == ["rules.set"]
    assert client.get("report", params={"month": "2026-11"}).json()["rules"][
        "overtime_basis"] == "day"
    # ZDR-1 art. 155(2): an uneven schedule, set through the same API
    assert client.put("rules", json={**ADMIN, "overtime_basis": "day",
                                     "uneven_schedule": True}).json()["uneven_schedule"]


def test_weekly_overtime_across_the_months_start(
        client: TestClient, engine: Engine, tenant: str) -> None:
    """The week of Monday 27 April 2026 runs into May: 4 x 10 h in April, then Friday
    1 May is a work-free day worked 8 h: all 8 hours are May's overtime."""
    ps: Punches = []
    for d in (27, 28, 29, 30):
        ps += [("e1", at(2026, 4, d, 6), "arrival"), ("e1", at(2026, 4, d, 16), "departure")]
    ps += [("e1", at(2026, 5, 1, 6), "arrival"), ("e1", at(2026, 5, 1, 14), "departure")]
    load(engine, tenant, ps)
    assert sheet(client, "e1", "2026-04")["totals"]["overtime_min"] == 0
    may = sheet(client, "e1", "2026-05")
    assert may["days"][0]["week_to_date_min"] == 48 * 60
    assert may["days"][0]["overtime_min"] == may["totals"]["overtime_min"] == 480
    assert may["days"][0]["holiday_min"] == 480


# -- 5. two corrections of one punch ----------------------------------------------------

def test_two_corrections_of_one_punch_both_count_and_both_are_kept(
        client: TestClient, engine: Engine, tenant: str) -> None:
    load(engine, tenant, [("e1", at(2026, 11, 3, 7), "arrival"),
                          ("e1", at(2026, 11, 3, 18), "break_start")])  # seq 2
    why = {**ADMIN, "reason": "the employee left at 16:00 and pressed the wrong key"}
    first = client.post("corrections", json={**why, "action": "amend", "ref_device": "clock-1",
                                             "ref_seq": 2, "at": "2026-11-03T16:00:00+01:00"})
    second = client.post("corrections", json={**why, "action": "amend",
                                              "ref_device": "clock-1", "ref_seq": 2,
                                              "punch_type": "departure"})
    assert first.status_code == second.status_code == 201
    day = sheet(client, "e1", "2026-11")["days"][2]
    assert (day["worked_min"], day["alerts"]) == (9 * 60, [])  # the time fix is kept
    assert day["departure"].startswith("2026-11-03T16:00")
    assert day["punches"] == ["clock-1#1", f"clock-1#2~correction#{first.json()['id']}"
                              f"~correction#{second.json()['id']}"]
    assert [c["id"] for c in client.get("corrections").json()] == [first.json()["id"],
                                                                   second.json()["id"]]
    assert [t["action"] for t in client.get("audit").json()] == ["correction.amend"] * 2
    void = client.post("corrections", json={**why, "action": "void", "ref_device": "clock-1",
                                            "ref_seq": 2})
    assert void.status_code == 201
    again = client.post("corrections", json={**why, "action": "amend",
                                             "ref_device": "clock-1", "ref_seq": 2,
                                             "at": "2026-11-03T15:00:00+01:00"})
    assert again.status_code == 422 and "voided" in again.json()["detail"]


# -- 6. a paid holiday that a night shift runs into ---------------------------------------

def test_a_night_shift_into_a_holiday_keeps_the_holidays_compensation(
        client: TestClient, engine: Engine, tenant: str) -> None:
    """Thursday 24 to Friday 25 December 2026 (Božič), 22:00-06:00: the shift is the 24th's
    (6 of its hours are holiday work); the 25th, with no shift of its own, is paid."""
    load(engine, tenant, [("e1", at(2026, 12, 24, 22), "arrival"),
                          ("e1", at(2026, 12, 25, 6), "departure")])
    s = sheet(client, "e1", "2026-12")
    d24, d25 = s["days"][23], s["days"][24]
    assert (d24["worked_min"], d24["holiday_min"], d24["night_min"]) == (480, 360, 420)
    assert d25["worked_min"] == 0 and d25["absences_min"] == {"holiday": 480}
    assert s["totals"]["absences_min"] == {"holiday": 480}  # the 26th is a Saturday
