"""A million events on PostgreSQL from generate_series (SQL, no Python loop), for the
EXPLAIN test (tests/bridge/test_events_explain.py) and bench/events_pg_scale.py: one
tenant, 20 devices, 12 months up to now, the types and JSON members the web pages read."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import Engine

from cloud_bridge.db_schema import write_tx
from cloud_bridge.partitions import current_month, months_back, next_month, partition_name

DEVICES = 20
MEMBERS = 5000
EMPLOYEES = 200
MONTHS = 12

# i runs 1..n; one event every `step` seconds backwards from `end`, so the rows span
# MONTHS months; 80 % decisions, 5 % remote opens, 10 % punches, 5 % receipts
_SEED = """
INSERT INTO {table} (tenant, device, seq, id, ts, type, data, received_at)
SELECT %(tenant)s::text, 'dev' || (i %% {devices}), i / {devices} + 1,
       md5(%(tenant)s::text || i)::uuid,
       to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       CASE WHEN i %% 20 < 16 THEN 'access.decision'
            WHEN i %% 20 = 16 THEN 'access.remote_open'
            WHEN i %% 20 < 19 THEN 'attendance.punch' ELSE 'pos.receipt' END,
       json_build_object('member', 'm' || (i %% {members}), 'granted', i %% 7 <> 0,
                         'direction', CASE WHEN i %% 2 = 0 THEN 'in' ELSE 'out' END,
                         'reason', CASE WHEN i %% 7 = 0 THEN 'expired' ELSE 'ok' END,
                         'employee', 'e' || (i %% {employees})),
       (extract(epoch FROM t) * 1000)::bigint
FROM generate_series(%(lo)s::int, %(hi)s::int) AS i,
     LATERAL (SELECT %(end)s::timestamptz - make_interval(secs => i * %(step)s)) AS s(t)
"""


def seed_events(engine: Engine, tenant: str, n: int,
                now: dt.datetime | None = None) -> dt.datetime:
    """Insert ``n`` events of ``tenant`` ending at ``now``; returns the oldest ts. Each
    month is loaded into a bare table and then attached, so its indexes are built once
    in bulk instead of row by row (what an operator does when loading history too)."""
    end = now or dt.datetime.now(dt.UTC)
    months = [months_back(current_month(end), k) for k in range(MONTHS)][::-1]
    start = _month_start(months[0])
    step = (end - start).total_seconds() / (n + 1)
    with write_tx(engine) as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")  # index builds
        for month in months:
            low, high = _month_start(month), _month_start(next_month(month))
            # event i is at end - i * step: the i of this month
            first = max(1, math.floor((end - high).total_seconds() / step) + 1)
            last = min(n, math.floor((end - low).total_seconds() / step))
            name = partition_name(month)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")  # created empty ahead
            conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS "
                                 "INCLUDING CONSTRAINTS)")
            if last >= first:
                conn.exec_driver_sql(_SEED.format(
                    table=name, devices=DEVICES, members=MEMBERS, employees=EMPLOYEES),
                    {"tenant": tenant, "lo": first, "hi": last, "end": end, "step": step})
            conn.exec_driver_sql(f"ALTER TABLE events ATTACH PARTITION {name} "
                                 f"FOR VALUES FROM ('{month}') TO ('{next_month(month)}')")
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        # a small sample is enough for these uniform rows and saves seconds
        auto.exec_driver_sql("SET default_statistics_target = 20")
        auto.exec_driver_sql("ANALYZE events")
        auto.exec_driver_sql("RESET default_statistics_target")
    return start


def _month_start(month: str) -> dt.datetime:
    return dt.datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=dt.UTC)
