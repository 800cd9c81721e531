"""The sales-and-use statistics page's queries on a year of events, SQLite and PostgreSQL:
the heatmap, active members and retention per month, plan revenue from the audit log and
voucher liabilities, for the whole year (the page's default period) and for one month.

    .venv/bin/python bench/sales_stats_bench.py [--events 500000] [--repeat 5]
        [--pg "host=127.0.0.1 port=5432 user=postgres"] [--no-pg]

Seeds one tenant: --events events over the last 12 months (80 % access decisions, 5000
members; on PostgreSQL by generate_series into monthly partitions, bench/events_seed.py;
on SQLite the same rows from Python), 20 plans, 2000 plan sales in the audit log and 500
gift vouchers. Prints the seed time and the median of --repeat runs of each statement
group. Temporary databases, removed afterwards. Run ``uptime`` beside it: the figures
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import Connection, Engine, insert

from bench.events_seed import DEVICES, MEMBERS, seed_events
from bench.pg_scratch import pg_database
from cloud_bridge.db_schema import entitlements, events, make_engine, read_tx, write_tx
from cloud_bridge.web.auth_schema import audit_log
from cloud_bridge.web.plan_sales import revenue_by_month
from cloud_bridge.web.plans import plan_prices, plans
from cloud_bridge.web.sales_stats_page import default_period
from cloud_bridge.web.usage_stats import entries_heatmap, monthly_activity
from cloud_bridge.web.voucher_liabilities import entitlement_voucher_liabilities
from cloud_bridge.web.web_app import ensure_web_schema

TENANT = "big"
KINDS = ("membership", "punch_card", "day_ticket", "gift_voucher")


def seed_sqlite_events(engine: Engine, n: int, end: dt.datetime) -> None:
    """The rows bench/events_seed.py makes on PostgreSQL, from Python."""
    start = end - dt.timedelta(days=365)
    step = (end - start).total_seconds() / (n + 1)
    with write_tx(engine) as conn:
        batch = []
        for i in range(1, n + 1):
            t = end - dt.timedelta(seconds=i * step)
            r = i % 20
            kind = ("access.decision" if r < 16 else "access.remote_open" if r == 16
                    else "attendance.punch" if r < 19 else "pos.receipt")
            batch.append({"tenant": TENANT, "device": f"dev{i % DEVICES}",
                          "seq": i // DEVICES + 1, "id": str(uuid.UUID(int=i)),
                          "ts": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "type": kind,
                          "data": {"member": f"m{i % MEMBERS}", "granted": i % 7 != 0,
                                   "direction": "in" if i % 2 == 0 else "out",
                                   "reason": "expired" if i % 7 == 0 else "ok"},
                          "received_at": int(t.timestamp() * 1000)})
            if len(batch) == 10_000:
                conn.execute(insert(events), batch)
                batch = []
        if batch:
            conn.execute(insert(events), batch)
        conn.exec_driver_sql("ANALYZE")


def seed_sales(engine: Engine, end: dt.datetime) -> None:
    """20 plans with prices, 2000 plan sales over the year, 500 gift vouchers."""
    now_ms = int(end.timestamp() * 1000)
    with write_tx(engine) as conn:
        for p in range(20):
            kind = KINDS[p % 4]
            conn.execute(insert(plans).values(
                tenant=TENANT, id=f"p{p}", name=f"Plan {p}", kind=kind, active=True,
                entries_total=10 if kind in ("punch_card", "gift_voucher") else None,
                created_ms=now_ms))
            conn.execute(insert(plan_prices).values(tenant=TENANT, plan_id=f"p{p}",
                                                    price_cents=1000 + p * 250,
                                                    vat_rate_bp=2200))
        conn.execute(insert(audit_log), [
            {"tenant": TENANT, "username": "bench", "action": "entitlement.create",
             "target": f"m{i}", "detail": {"plan": f"p{i % 20}", "version": i + 1},
             "at_ms": now_ms - i * 15_700_000} for i in range(2000)])
        conn.execute(insert(entitlements), [
            {"tenant": TENANT, "id": f"v{i}", "member_id": f"m{i}", "kind": "gift_voucher",
             "entries_total": 10, "used_by_device": {"dev1": i % 12}, "created_at": now_ms}
            for i in range(500)])


def groups(today: dt.date) -> dict[str, Callable[[Connection], Any]]:
    year = default_period(today)
    month = today.replace(day=1)
    now = dt.datetime.now(dt.UTC)
    return {
        "heatmap, 12 months": lambda c: entries_heatmap(c, TENANT, year.first, year.last),
        "heatmap, this month": lambda c: entries_heatmap(c, TENANT, month, today),
        "active + retention, 12 months": lambda c: monthly_activity(
            c, TENANT, year.first, year.last, today),
        "revenue, 12 months": lambda c: revenue_by_month(c, TENANT, year.first, year.last),
        "voucher liabilities": lambda c: entitlement_voucher_liabilities(c, TENANT, now),
    }


def measure(engine: Engine, repeat: int) -> None:
    today = dt.date.today()
    for name, run in groups(today).items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with read_tx(engine) as conn:
                run(conn)
            times.append(time.perf_counter() - t0)
        print(f"  {name:32s} median {statistics.median(times) * 1000:8.1f} ms  "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg", default=os.environ.get("BRIDGE_TEST_PG",
                                                   "host=127.0.0.1 port=5432 user=postgres"))
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    end = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.sqlite3")
        ensure_web_schema(engine)
        t0 = time.perf_counter()
        seed_sqlite_events(engine, args.events, end)
        seed_sales(engine, end)
        print(f"SQLite: seeded {args.events} events in {time.perf_counter() - t0:.1f} s")
        measure(engine, args.repeat)
        engine.dispose()
    if args.no_pg:
        return 0
    url, drop = pg_database(args.pg, "edge_stats_bench")
    try:
        engine = make_engine(url)
        ensure_web_schema(engine)
        t0 = time.perf_counter()
        seed_events(engine, TENANT, args.events, end)
        seed_sales(engine, end)
        print(f"PostgreSQL: seeded {args.events} events in {time.perf_counter() - t0:.1f} s")
        measure(engine, args.repeat)
        engine.dispose()
    finally:
        drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
