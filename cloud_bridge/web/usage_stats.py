"""Use of the gym over a period: entries per weekday and hour (the heatmap), and active
members per month with their retention into the next month (docs/statistics.md).

An entry is a granted access decision that is not an exit (``entry_stats.entries_sql``).
Days, hours and months are local (Europe/Ljubljana)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection

from cloud_bridge.db_schema import MEMBER_OF_EVENT
from cloud_bridge.web.entry_stats import entries_sql, entry_params, granted_entries_by_hour


def entries_heatmap(conn: Connection, tenant: str, first: date, last: date
                    ) -> list[list[int]]:
    """Entries on local days first..last as 7 rows (Monday first) of 24 hours."""
    grid = [[0] * 24 for _ in range(7)]
    for local_hour, n in granted_entries_by_hour(conn, tenant, first, last):
        grid[local_hour.weekday()][local_hour.hour] += n
    return grid


@dataclass(frozen=True, slots=True)
class MonthActivity:
    month: date  # the first day of the local month
    active: int  # members with at least one entry in the month (within the period)
    # of those, members with an entry in the next (whole) month too; None until that
    # month is over
    retained: int | None

    @property
    def retention(self) -> float | None:
        if self.retained is None or not self.active:
            return None
        return self.retained / self.active


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def active_members(conn: Connection, tenant: str, first: date, last: date) -> set[str]:
    """Members with at least one entry on local days first..last."""
    member = MEMBER_OF_EVENT[conn.dialect.name]  # the index's third column
    stmt = entries_sql(conn, f"DISTINCT {member}", f"AND {member} IS NOT NULL")
    return {str(m) for (m,) in conn.execute(stmt, entry_params(tenant, first, last))}


def monthly_activity(conn: Connection, tenant: str, first: date, last: date,
                     today: date) -> list[MonthActivity]:
    """Per local month touched by first..last: active members (counted within the period,
    so a period that starts mid-month counts that month's part only) and how many of them
    came again in the whole next month (None until that month is over)."""
    months: list[date] = []
    m = month_start(first)
    while m <= last:
        months.append(m)
        m = next_month(m)
    active = {m: active_members(conn, tenant, max(m, first),
                                min(next_month(m) - timedelta(days=1), last))
              for m in months}
    out = []
    for m in months:
        following = next_month(m)
        if next_month(following) > today:  # the next month is not over yet
            out.append(MonthActivity(m, len(active[m]), None))
            continue
        if following in active and next_month(following) - timedelta(days=1) <= last:
            later = active[following]
        else:
            later = active_members(conn, tenant, following,
                                   next_month(following) - timedelta(days=1))
        out.append(MonthActivity(m, len(active[m]), len(active[m] & later)))
    return out
