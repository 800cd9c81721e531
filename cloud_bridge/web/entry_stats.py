"""Entry figures from the events table: the newest decisions, occupancy and denied taps
today, daily and hourly counts, and an inline SVG bar chart of them.

Aggregates over a day are cached for a few seconds per process: the live page is opened
on many screens at once and the numbers move with the stream anyway. The cache holds
nothing another process could not recompute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from markupsafe import Markup, escape
from sqlalchemy import Connection, Engine, TextClause, func, select, text

from cloud_bridge.db_schema import ENTRY_EVENT, devices, events, members, read_tx
from cloud_bridge.web.context import LOCAL_TZ
from contracts.i18n import N_, format_number
from contracts.i18n import gettext as _
from contracts.reasons import explain

ACCESS_TYPES = ("access.decision", "access.remote_open")
DIRECTIONS = {"in": N_("in"), "out": N_("out")}
T = TypeVar("T")


def utc_iso(moment: datetime) -> str:
    """The events' ts format (sorts as text): 2026-11-24T19:06:38.195Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def site_devices(conn: Connection, tenant: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in conn.execute(select(devices.c.device, devices.c.state).where(
            devices.c.tenant == tenant)):
        out.setdefault(str((r.state or {}).get("site") or "—"), []).append(r.device)
    return out


def decision_view(row: Any, names: dict[str, str]) -> dict[str, Any]:
    data = row["data"] or {}
    remote = row["type"] == "access.remote_open"
    reason = "remote_open" if remote else data.get("reason")
    granted = True if remote else bool(data.get("granted"))
    direction = data.get("direction")
    return {"key": f"{row['device']}:{row['seq']}", "ts": row["ts"], "device": row["device"],
            "gate": data.get("gate"), "direction": direction,
            "direction_text": _(DIRECTIONS[direction]) if direction in DIRECTIONS else "",
            "granted": granted, "reason": reason,
            "decision": _("Granted") if granted else _("Denied"),
            "why": _("Opened remotely from the office.") if remote else explain(reason),
            "member": data.get("member"), "name": names.get(data.get("member") or "", ""),
            "received_at": row["received_at"]}


def member_names(conn: Connection, tenant: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = conn.execute(select(members.c.id, members.c.first_name, members.c.last_name)
                        .where(members.c.tenant == tenant, members.c.id.in_(sorted(ids))))
    return {r.id: f"{r.first_name} {r.last_name}".strip() for r in rows}


def with_names(conn: Connection, tenant: str, rows: list[Any]) -> list[dict[str, Any]]:
    ids = {(r["data"] or {}).get("member") for r in rows}
    names = member_names(conn, tenant, {i for i in ids if isinstance(i, str)})
    return [decision_view(r, names) for r in rows]


def _access_query(tenant: str, device_ids: list[str] | None) -> Any:
    stmt = select(events.c.device, events.c.seq, events.c.ts, events.c.type, events.c.data,
                  events.c.received_at).where(events.c.tenant == tenant,
                                              events.c.type.in_(ACCESS_TYPES))
    if device_ids is not None:
        stmt = stmt.where(events.c.device.in_(device_ids))
    return stmt


def latest_decisions(conn: Connection, tenant: str, device_ids: list[str] | None,
                     limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(_access_query(tenant, device_ids)
                        .order_by(events.c.received_at.desc()).limit(limit)).mappings().all()
    return with_names(conn, tenant, list(rows))


def decisions_since(conn: Connection, tenant: str, device_ids: list[str] | None,
                    received_after: int, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute(_access_query(tenant, device_ids)
                        .where(events.c.received_at > received_after)
                        .order_by(events.c.received_at).limit(limit)).mappings().all()
    return with_names(conn, tenant, list(rows))


@dataclass(slots=True)
class TodayFigures:
    occupancy: int = 0
    granted: int = 0
    denied: int = 0
    denied_by_reason: dict[str, int] = field(default_factory=dict)


def today_figures(conn: Connection, tenant: str, device_ids: list[str] | None,
                  today: date) -> TodayFigures:
    granted = events.c.data["granted"].as_boolean()
    direction = events.c.data["direction"].as_string()
    reason = events.c.data["reason"].as_string()
    stmt = select(granted, direction, reason, func.count()).where(
        events.c.tenant == tenant, events.c.type == "access.decision",
        events.c.ts >= utc_iso(local_midnight(today)),
        events.c.ts < utc_iso(local_midnight(today + timedelta(days=1))))
    if device_ids is not None:
        stmt = stmt.where(events.c.device.in_(device_ids))
    out = TodayFigures()
    inside = 0
    for ok, way, why, n in conn.execute(stmt.group_by(granted, direction, reason)):
        if ok:
            out.granted += n
            inside += n if way == "in" else -n
        else:
            out.denied += n
            out.denied_by_reason[str(why)] = out.denied_by_reason.get(str(why), 0) + n
    # a counter, not a roll call: people who left by a door without a reader stay "in"
    out.occupancy = max(inside, 0)
    return out


def hourly_and_daily(conn: Connection, tenant: str, first: date, last: date
                     ) -> tuple[dict[date, list[int]], dict[int, list[int]]]:
    """Per local day and per local hour of day: [granted, denied] of access decisions."""
    hour = func.substr(events.c.ts, 1, 13)  # UTC "YYYY-MM-DDTHH"
    granted = events.c.data["granted"].as_boolean()
    stmt = select(hour, granted, func.count()).where(
        events.c.tenant == tenant, events.c.type == "access.decision",
        events.c.ts >= utc_iso(local_midnight(first)),
        events.c.ts < utc_iso(local_midnight(last + timedelta(days=1)))).group_by(hour, granted)
    daily = {first + timedelta(days=i): [0, 0] for i in range((last - first).days + 1)}
    hourly = {h: [0, 0] for h in range(24)}
    for utc_hour, ok, n in conn.execute(stmt):
        local = datetime.fromisoformat(f"{utc_hour}:00:00+00:00").astimezone(LOCAL_TZ)
        slot = 0 if ok else 1
        if local.date() in daily:
            daily[local.date()][slot] += n
        hourly[local.hour][slot] += n
    return daily, hourly


# SQLite prefers ix_events_type_ts (one more equality) to the partial index that holds
# only entries, and reads 2-10 times more rows for it (bench/sales_stats_bench.py)
_ENTRY_INDEX = {"sqlite": " INDEXED BY ix_events_entries_sqlite", "postgresql": ""}


def entries_sql(conn: Connection, columns: str, tail: str = "") -> TextClause:
    """A statement over the entries of one tenant in [:lo, :hi) (``entry_params``): granted
    access decisions into the gym, not exits, which is what the sales-and-use statistics
    count (docs/statistics.md). The condition is the text of the partial index
    ix_events_entries_* (db_schema.ENTRY_EVENT), word for word, so the database reads the
    entries from that index only."""
    dialect = conn.dialect.name
    return text(f"SELECT {columns} FROM events{_ENTRY_INDEX[dialect]} "
                "WHERE tenant = :tenant AND ts >= :lo AND ts < :hi "
                f"AND {ENTRY_EVENT[dialect]} {tail}")


def entry_params(tenant: str, first: date, last: date) -> dict[str, str]:
    """Local days first..last as the events' UTC ts range."""
    return {"tenant": tenant, "lo": utc_iso(local_midnight(first)),
            "hi": utc_iso(local_midnight(last + timedelta(days=1)))}


def granted_entries_by_hour(conn: Connection, tenant: str, first: date, last: date
                            ) -> list[tuple[datetime, int]]:
    """Entries per local hour (the hour's start, aware, Europe/Ljubljana) on local days
    first..last. Grouped by the UTC hour in SQL (the same on SQLite and PostgreSQL) and
    turned local here: Ljubljana's offset is whole hours, so a UTC hour is one local hour,
    and the fall-back night has two 02:00 hours that both count as 02:00. A list, not a
    dict: those two hours are equal as datetimes of one zone (``fold`` is not compared)."""
    stmt = entries_sql(conn, "substr(ts, 1, 13), count(*)", "GROUP BY substr(ts, 1, 13)")
    return [(datetime.fromisoformat(f"{utc_hour}:00:00+00:00").astimezone(LOCAL_TZ), int(n))
            for utc_hour, n in conn.execute(stmt, entry_params(tenant, first, last))]


class TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit and now - hit[0] < self.ttl_s:
                return hit[1]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            if len(self._items) > 1000:
                self._items.clear()
            self._items[key] = (now, value)
        return value


def cached_today(cache: TtlCache, engine: Engine, tenant: str,
                 device_ids: list[str] | None) -> TodayFigures:
    today = datetime.now(LOCAL_TZ).date()

    def compute() -> TodayFigures:
        with read_tx(engine) as conn:
            return today_figures(conn, tenant, device_ids, today)

    return cache.get((tenant, tuple(device_ids or ()), device_ids is None, today), compute)


def bar_chart(bars: list[tuple[str, int, int]], title: str, width: int = 720,
              height: int = 220) -> Markup:
    """Stacked bars (granted below, denied on top) as inline SVG."""
    left, bottom, top = 36, 24, 18
    top_value = max([g + d for _, g, d in bars] + [1])
    slot = (width - left - 8) / max(len(bars), 1)
    scale = (height - bottom - top) / top_value
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{left}" y="12">{escape(title)} '
             f'({escape(_("highest %(n)s") % {"n": format_number(top_value)})})</text>']
    label_every = max(1, len(bars) // 12)
    for i, (label, granted, denied) in enumerate(bars):
        x = left + i * slot + 1
        w = max(slot - 2, 1)
        hg, hd = granted * scale, denied * scale
        base = height - bottom
        parts.append(f'<rect class="granted" x="{x:.1f}" y="{base - hg:.1f}" width="{w:.1f}" '
                     f'height="{hg:.1f}"><title>{escape(label)}: '
                     f'{escape(_("%(n)s granted") % {"n": granted})}</title></rect>')
        parts.append(f'<rect class="denied" x="{x:.1f}" y="{base - hg - hd:.1f}" '
                     f'width="{w:.1f}" height="{hd:.1f}"><title>{escape(label)}: '
                     f'{escape(_("%(n)s denied") % {"n": denied})}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
