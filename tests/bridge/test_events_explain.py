"""The web pages' queries on events stay on indexes at a million events (PostgreSQL).

One tenant's million events over 12 monthly partitions (tests/bridge/events_seed.py).
The real page functions run against it while their SQL is captured; each statement is then
EXPLAINed (FORMAT JSON) with the same parameters: no Seq Scan on a month partition, and a
time-bounded query reads only the partitions of its months (partition pruning)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bench.events_seed import seed_events
from cloud_bridge.attendance.corrections import corrected_punches
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.attendance.shift_punches import _stored_span
from cloud_bridge.db_schema import events, make_engine, read_tx
from cloud_bridge.partitions import current_month, months_back, partition_name
from cloud_bridge.web.entry_stats import (
    decisions_since,
    hourly_and_daily,
    latest_decisions,
    today_figures,
)
from cloud_bridge.web.members_pages import member_events

pytestmark = pytest.mark.slow

TENANT = "big"
# the 20th of this month, so that "today" is a day of a well-filled current partition
# whatever day the test runs (on the 2nd, the current partition holds two days and a
# sequential scan of it is the right plan)
NOW = dt.datetime.now(dt.UTC).replace(day=20, hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def big_engine() -> Iterator[Engine]:
    from bench.pg_scratch import pg_database
    from tests.bridge.conftest import PG_ADMIN

    try:
        url, drop = pg_database(PG_ADMIN, "edge_explain")
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    engine = make_engine(url)
    create_attendance_schema(engine)
    seed_events(engine, TENANT, 1_000_000, NOW)
    yield engine
    engine.dispose()
    drop()


def captured(engine: Engine, run: Any) -> list[tuple[str, Any]]:
    """The SELECTs on events that ``run(conn)`` issues, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and " events" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with read_tx(engine) as conn:
            run(conn)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert seen, "the page function ran no query on events"
    return seen


def plan_of(engine: Engine, statement: str, params: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar()
    doc = raw if isinstance(raw, list) else json.loads(raw)
    return dict(doc[0]["Plan"])


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


LARGE = 10_000  # rows: a sequential scan of an empty or tiny partition costs nothing


def large_partitions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {str(name) for name, rows in conn.exec_driver_sql(
            "SELECT relname, reltuples FROM pg_class WHERE relname LIKE 'events\\_%%' "
            "AND relkind = 'r'").all() if rows > LARGE}


def check(engine: Engine, run: Any, months: set[str] | None = None) -> list[str]:
    """Every captured statement: no sequential scan of a large partition; with ``months``
    only those months' partitions (and the empty default) are read. Returns the node
    types seen, for the record."""
    kinds: list[str] = []
    large = large_partitions(engine)
    assert len(large) >= 11, large
    for statement, params in captured(engine, run):
        plan = plan_of(engine, statement, params)
        scanned = {n["Relation Name"] for n in nodes(plan) if "Relation Name" in n}
        for n in nodes(plan):
            kinds.append(n["Node Type"])
            rel = n.get("Relation Name", "")
            assert not (n["Node Type"] == "Seq Scan" and rel in large), \
                f"sequential scan of {rel} in\n{statement}\n{json.dumps(plan, indent=1)}"
        if months is not None:
            allowed = {partition_name(m) for m in months} | {"events_default"}
            month_parts = {r for r in scanned if r.startswith("events_")}
            assert month_parts <= allowed, f"not pruned: {sorted(month_parts - allowed)}"
    return kinds


def test_live_list_reads_the_newest_events_by_index(big_engine: Engine) -> None:
    after = int(NOW.timestamp() * 1000) - 60_000
    kinds = check(big_engine, lambda c: latest_decisions(c, TENANT, None))
    kinds += check(big_engine, lambda c: decisions_since(c, TENANT, None, after))
    kinds += check(big_engine, lambda c: latest_decisions(c, TENANT, ["dev1", "dev2"]))
    assert any("Index" in k for k in kinds)


def test_today_and_statistics_read_only_their_months(big_engine: Engine) -> None:
    today = NOW.date()
    this = current_month(NOW)
    # local midnight may fall on the previous UTC day, hence the month before
    near = {this, months_back(this, 1)}
    kinds = check(big_engine, lambda c: today_figures(c, TENANT, None, today), near)
    first = today - dt.timedelta(days=6)
    kinds += check(big_engine, lambda c: hourly_and_daily(c, TENANT, first, today), near)
    assert any("Index" in k for k in kinds)


def test_member_page_finds_a_members_entries_by_index(big_engine: Engine) -> None:
    kinds = check(big_engine, lambda c: member_events(c, TENANT, "m42"))
    assert any("Index" in k for k in kinds)


def test_attendance_month_reads_one_month_of_punches(big_engine: Engine) -> None:
    month = months_back(current_month(NOW), 2)
    start = dt.datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=dt.UTC)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    # the report reads a margin around the month: the months on both sides at most
    around = {months_back(month, 1), month, months_back(month, -1)}
    kinds = check(big_engine, lambda c: corrected_punches(c, TENANT, start, end), around)
    kinds += check(big_engine, lambda c: _stored_span(c, TENANT))
    assert any("Index" in k for k in kinds)


def test_api_events_listing_and_one_event_by_index(big_engine: Engine) -> None:
    # the statements of api.py's /events and /events/{device}/{seq}, as written there
    listing = select(events).where(events.c.tenant == TENANT, events.c.seq > 0,
                                   events.c.device == "dev3").order_by(
        events.c.device, events.c.seq).limit(100)
    everything = select(events).where(events.c.tenant == TENANT, events.c.seq > 40_000
                                      ).order_by(events.c.device, events.c.seq).limit(100)
    one = select(events).where(events.c.tenant == TENANT, events.c.device == "dev3",
                               events.c.seq == 1234)
    kinds: list[str] = []
    for stmt in (listing, everything, one):
        kinds += check(big_engine, lambda c, s=stmt: c.execute(s).all())
    assert any("Index" in k for k in kinds)


def test_the_seed_is_a_million_events_in_twelve_months(big_engine: Engine) -> None:
    with big_engine.connect() as conn:
        per_part = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1").all())
    assert sum(per_part.values()) == 1_000_000
    assert len([p for p in per_part if p.startswith("events_y")]) == 12
