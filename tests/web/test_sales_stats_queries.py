"""The queries behind the sales-and-use statistics, on SQLite and PostgreSQL: entries per
local weekday and hour (day edges at Ljubljana midnight, both DST changes), active members
and retention per local month, tenants apart. Every expected figure is counted by hand
from the events the test inserts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from cloud_bridge.db_schema import read_tx
from cloud_bridge.web.usage_stats import MonthActivity, entries_heatmap, monthly_activity
from tests.web.seed import add_events, decision

MON, TUE, SUN = 0, 1, 6


def tenant_name() -> str:
    return f"st{uuid.uuid4().hex[:10]}"


def put(engine: Engine, tenant: str, when: str, member: str | None = "m-1",
        granted: bool = True, direction: str = "in", device: str = "gate-1") -> None:
    """One access decision at a UTC moment ("2026-03-02T23:30")."""
    put.seq += 1  # type: ignore[attr-defined]
    add_events(engine, tenant, device, [decision(member, granted,
                                                 "granted" if granted else "expired",
                                                 direction)],
               start_seq=put.seq,  # type: ignore[attr-defined]
               ts=datetime.fromisoformat(when + ":00+00:00").astimezone(UTC))


put.seq = 0  # type: ignore[attr-defined]


def test_heatmap_counts_local_hours_across_midnight_and_dst(engine: Engine) -> None:
    a, b = tenant_name(), tenant_name()
    # period 3. 3. 2026 .. 25. 10. 2026 (local days, both included)
    put(engine, a, "2026-03-02T22:59")  # 2 March 23:59 CET: the day before, not counted
    put(engine, a, "2026-03-02T23:30")  # 3 March 00:30 CET: Tuesday, hour 0
    put(engine, a, "2026-03-29T00:30")  # 29 March 01:30 CET (before the spring change)
    put(engine, a, "2026-03-29T01:30")  # 29 March 03:30 CEST (02:xx does not exist)
    put(engine, a, "2026-10-25T00:30")  # 25 Oct 02:30 CEST (first 02:xx)
    put(engine, a, "2026-10-25T01:30")  # 25 Oct 02:30 CET (the repeated 02:xx)
    put(engine, a, "2026-10-25T22:30")  # 25 Oct 23:30 CET: last day, counted
    put(engine, a, "2026-10-25T23:00")  # 26 Oct 00:00 CET: after the period
    put(engine, a, "2026-06-01T08:00", granted=False)  # denied: not an entry
    put(engine, a, "2026-06-01T08:10", direction="out")  # an exit: not an entry
    put(engine, b, "2026-06-01T08:20")  # another tenant's
    put(engine, b, "2026-03-02T23:30")
    with read_tx(engine) as conn:
        grid = entries_heatmap(conn, a, date(2026, 3, 3), date(2026, 10, 25))
        grid_b = entries_heatmap(conn, b, date(2026, 3, 3), date(2026, 10, 25))
    expected = [[0] * 24 for _ in range(7)]
    expected[TUE][0] = 1
    expected[SUN][1] = 1
    expected[SUN][3] = 1
    expected[SUN][2] = 2
    expected[SUN][23] = 1
    assert grid == expected
    assert sum(map(sum, grid)) == 6
    b_expected = [[0] * 24 for _ in range(7)]
    b_expected[MON][10] = 1  # 1 June 08:20 UTC = 10:20 CEST, a Monday
    b_expected[TUE][0] = 1
    assert grid_b == b_expected


def test_active_members_and_retention_per_local_month(engine: Engine) -> None:
    a, b = tenant_name(), tenant_name()
    for member, when in (("a", "2026-01-05T10:00"), ("a", "2026-01-06T10:00"),
                         ("b", "2026-01-10T10:00"), ("c", "2026-01-20T10:00"),
                         ("a", "2026-02-03T10:00"), ("b", "2026-02-27T10:00"),
                         ("d", "2026-02-10T10:00"),
                         # 31 Jan 23:30 UTC is 1 February 00:30 in Ljubljana
                         ("e", "2026-01-31T23:30"),
                         ("a", "2026-03-31T21:30")):  # 23:30 CEST, still March
        put(engine, a, when, member=member)
    put(engine, a, "2026-02-12T10:00", member="c", granted=False)  # denied: not active
    put(engine, a, "2026-02-13T10:00", member="c", direction="out")  # exit: not active
    put(engine, a, "2026-03-31T22:30", member="b")  # 1 April 00:30 CEST: April
    put(engine, b, "2026-02-05T10:00", member="c")  # another tenant's
    with read_tx(engine) as conn:
        months = monthly_activity(conn, a, date(2026, 1, 1), date(2026, 3, 31),
                                  today=date(2026, 12, 3))
        early = monthly_activity(conn, a, date(2026, 1, 1), date(2026, 3, 31),
                                 today=date(2026, 4, 15))
        part = monthly_activity(conn, a, date(2026, 2, 10), date(2026, 2, 28),
                                today=date(2026, 12, 3))
    # January {a, b, c}; February {a, b, d, e}; March {a}; April {b}
    assert months == [MonthActivity(date(2026, 1, 1), 3, 2),
                      MonthActivity(date(2026, 2, 1), 4, 1),
                      MonthActivity(date(2026, 3, 1), 1, 0)]
    assert months[0].retention == 2 / 3
    # in mid-April, April is not over: March's retention is not known yet
    assert early[2] == MonthActivity(date(2026, 3, 1), 1, None)
    assert early[2].retention is None
    # a period from 10 February counts February's part only: b (27th) and d (10th)
    assert part == [MonthActivity(date(2026, 2, 1), 2, 0)]
