"""The web pages' queries on a million events in monthly partitions (PostgreSQL), next to
a baseline measured in the same run: the same statements with partition pruning switched
off (``SET enable_partition_pruning = off``), i.e. what they would cost if every month
were read.

    .venv/bin/python bench/events_pg_scale.py [--events 1000000] [--repeat 7]
        [--pg "host=127.0.0.1 port=5432 user=postgres"]

Prints the seed time (generate_series into 12 month tables, attach, ANALYZE), then per
page query: median execution time over --repeat runs with pruning on and off, the plan's
scan nodes and how many partitions it reads. A temporary database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import Connection, Engine, event, select

from bench.events_seed import seed_events
from bench.pg_scratch import pg_database
from cloud_bridge.attendance.corrections import corrected_punches
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.db_schema import events, make_engine, read_tx
from cloud_bridge.web.entry_stats import (
    decisions_since,
    hourly_and_daily,
    latest_decisions,
    today_figures,
)
from cloud_bridge.web.members_pages import member_events

TENANT = "big"


def page_queries(now: dt.datetime) -> dict[str, Callable[[Connection], Any]]:
    today = now.date()
    month_start = (now.replace(day=1) - dt.timedelta(days=40)).replace(day=1)
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
    after = int(now.timestamp() * 1000) - 60_000
    return {
        "live: latest 50": lambda c: latest_decisions(c, TENANT, None),
        "live: since 60 s": lambda c: decisions_since(c, TENANT, None, after),
        "stats: today": lambda c: today_figures(c, TENANT, None, today),
        "stats: 7 days by hour": lambda c: hourly_and_daily(
            c, TENANT, today - dt.timedelta(days=6), today),
        "member page: 30 entries": lambda c: member_events(c, TENANT, "m42"),
        "attendance: one month": lambda c: corrected_punches(
            c, TENANT, month_start, month_end),
        "api: /events?device": lambda c: c.execute(select(events).where(
            events.c.tenant == TENANT, events.c.seq > 0, events.c.device == "dev3")
            .order_by(events.c.device, events.c.seq).limit(100)).all(),
        "api: /events/{device}/{seq}": lambda c: c.execute(select(events).where(
            events.c.tenant == TENANT, events.c.device == "dev3",
            events.c.seq == 1234)).all(),
    }


def statements(engine: Engine, run: Callable[[Connection], Any]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def listen(_c: Any, _cur: Any, stmt: str, params: Any, _x: Any, _m: Any) -> None:
        if stmt.lstrip().upper().startswith("SELECT") and " events" in stmt:
            seen.append((stmt, params))

    event.listen(engine, "before_cursor_execute", listen)
    with read_tx(engine) as conn:
        run(conn)
    event.remove(engine, "before_cursor_execute", listen)
    return seen


def measure(engine: Engine, stmts: list[tuple[str, Any]], repeat: int, pruning: bool
            ) -> tuple[float, list[dict[str, Any]]]:
    """Median ms of the server's own execution time (EXPLAIN ANALYZE) summed over the
    statements, and the last plans."""
    times: list[float] = []
    plans: list[dict[str, Any]] = []
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SET enable_partition_pruning = {'on' if pruning else 'off'}")
        for _ in range(repeat):
            total, plans = 0.0, []
            for stmt, params in stmts:
                doc = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt,
                                           params).scalar()
                total += float(doc[0]["Execution Time"])
                plans.append(doc[0]["Plan"])
            times.append(total)
        conn.rollback()
    return statistics.median(times), plans


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(plan["Node Type"], plan.get("Relation Name", ""))] if "Scan" in plan[
        "Node Type"] else []
    for child in plan.get("Plans", []):
        out += scans(child)
    return out


def print_storage(engine: Engine, n: int) -> None:
    """Bytes on disk per event: the partitions (heap, TOAST, indexes) and the key ledger
    the ingest writes beside them (filled here from the events, as a migration does)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO event_keys (tenant, device, seq, id, ts) "
                             "SELECT tenant, device, seq, id, ts FROM events")
    filled = time.perf_counter() - started
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        parts = conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass").scalar()
        keys = conn.exec_driver_sql("SELECT pg_total_relation_size('event_keys')").scalar()
    print(f"storage per event: partitions {int(parts) / n:.0f} B, key ledger "
          f"{int(keys) / n:.0f} B (ledger filled in {filled:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres")
    args = parser.parse_args()
    print("load:", os.getloadavg())
    url, drop = pg_database(args.pg, "edge_scale")
    engine = make_engine(url)
    try:
        create_attendance_schema(engine)
        now = dt.datetime.now(dt.UTC).replace(day=20, hour=12, minute=0, second=0,
                                             microsecond=0)
        started = time.perf_counter()
        seed_events(engine, TENANT, args.events, now)
        print(f"seed {args.events} events (12 months, attach, ANALYZE): "
              f"{time.perf_counter() - started:.1f} s")
        print(f"{'query':30} {'pruned ms':>10} {'all months ms':>14}  partitions  scans")
        for name, run in page_queries(now).items():
            stmts = statements(engine, run)
            on, plans = measure(engine, stmts, args.repeat, True)
            off, _ = measure(engine, stmts, args.repeat, False)
            found = [s for p in plans for s in scans(p)]
            parts = len({rel for _, rel in found if rel.startswith("events_")})
            kinds = sorted({kind for kind, _ in found})
            print(f"{name:30} {on:10.2f} {off:14.2f}  {parts:10}  {', '.join(kinds)}")
        print_storage(engine, args.events)
        print("load:", os.getloadavg())
    finally:
        engine.dispose()
        drop()


if __name__ == "__main__":
    main()
