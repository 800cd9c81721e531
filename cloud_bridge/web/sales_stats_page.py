"""Sales and use statistics for the gym's manager (issue 18): revenue per ticket type and
month, entries per weekday and hour, active members and retention, gift-voucher
liabilities; each table as CSV. Definitions and sources: docs/statistics.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, cast

from babel.dates import format_date
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import Engine

from cloud_bridge.attendance.labels import WEEKDAYS
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web import stat_charts
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import LOCAL_TZ
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entry_stats import TtlCache
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.plan_form import KIND_LABELS
from cloud_bridge.web.plan_sales import RevenueRow, revenue_by_month
from cloud_bridge.web.rendering import render
from cloud_bridge.web.stat_tables import Money, Share, StatTable, html_cell, table_csv
from cloud_bridge.web.usage_stats import MonthActivity, entries_heatmap, monthly_activity
from cloud_bridge.web.voucher_liabilities import (
    LiabilitySource,
    VoucherLiabilities,
    all_voucher_liabilities,
)
from contracts.i18n import babel_locale, format_day, format_money, parse_day
from contracts.i18n import gettext as _

MAX_DAYS = 731  # two years: a year of entries is what the queries are measured for
DayText = Annotated[str, Query(max_length=20)]
FromText = Annotated[str, Query(alias="from", max_length=20)]
router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("sales.view"))]
_SOURCE_KEY = "voucher_liabilities"


def liability_source(request: Request) -> LiabilitySource:
    """Where voucher liabilities come from: gift-voucher entitlements and the ticket
    ledger, unless the app was given another source (``app.state.voucher_liabilities``)."""
    return cast(LiabilitySource, getattr(request.app.state, _SOURCE_KEY,
                                         all_voucher_liabilities))


Liabilities = Annotated[LiabilitySource, Depends(liability_source)]


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date


def default_period(today: date) -> Period:
    """The current month and the eleven before it."""
    first = today.replace(day=1)
    for _i in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return Period(first, today)


def read_period(from_text: str, to_text: str, today: date
                ) -> tuple[Period, dict[str, str], dict[str, str]]:
    """The period typed (days, both included), the values to show back and the errors
    beside their fields; with errors the default period is shown."""
    default = default_period(today)
    errors: dict[str, str] = {}
    days = {}
    for name, text, fallback in (("from", from_text, default.first),
                                 ("to", to_text, default.last)):
        try:
            days[name] = parse_day(text) if text.strip() else fallback
        except ValueError as exc:
            errors[name] = str(exc)
    if not errors and days["from"] > days["to"]:
        errors["to"] = _("The end must not be before the start.")
    elif not errors and (days["to"] - days["from"]).days + 1 > MAX_DAYS:
        errors["to"] = _("Choose at most %(n)s days.") % {"n": MAX_DAYS}
    values = {name: text if name in errors else format_day(days.get(name))
              for name, text in (("from", from_text), ("to", to_text))}
    period = default if errors else Period(days["from"], days["to"])
    return period, values, errors


_CACHE_KEY = "sales_stats_cache"
CACHE_S = 60.0


def figures_cache(request: Request) -> TtlCache:
    """Per app: the figures of a (tenant, period) for CACHE_S, so the CSV links under the
    tables do not run every query again. Made on first use (a second one made by a race
    is only a miss)."""
    cache = getattr(request.app.state, _CACHE_KEY, None)
    if cache is None:
        cache = TtlCache(CACHE_S)
        setattr(request.app.state, _CACHE_KEY, cache)
    return cast(TtlCache, cache)


Cache = Annotated[TtlCache, Depends(figures_cache)]


@dataclass(frozen=True, slots=True)
class Figures:
    heat: list[list[int]]
    revenue: list[RevenueRow]
    activity: list[MonthActivity]
    vouchers: VoucherLiabilities


def compute(engine: Engine, tenant: str, period: Period, source: LiabilitySource
            ) -> Figures:
    now = datetime.now(LOCAL_TZ)
    with read_tx(engine) as conn:
        return Figures(entries_heatmap(conn, tenant, period.first, period.last),
                       revenue_by_month(conn, tenant, period.first, period.last),
                       monthly_activity(conn, tenant, period.first, period.last,
                                        now.date()),
                       source(conn, tenant, now))


def cached(cache: TtlCache, engine: Engine, tenant: str, period: Period,
           source: LiabilitySource) -> Figures:
    today = datetime.now(LOCAL_TZ).date()
    return cache.get((tenant, period, today, source),
                     lambda: compute(engine, tenant, period, source))


def month_label(month: date) -> str:
    return format_date(month, "LLLL y", locale=babel_locale())


def kind_label(kind: str) -> str:
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else "—"


def revenue_per_kind(rows: list[RevenueRow]) -> list[tuple[str, int, int]]:
    """(kind, sold, revenue in cents) in the order of KIND_LABELS, kinds sold only."""
    out = []
    for kind in KIND_LABELS:
        mine = [r for r in rows if r.kind == kind]
        if mine:
            out.append((kind, sum(r.sold for r in mine),
                        sum(r.revenue_cents or 0 for r in mine)))
    return out


def tables(f: Figures) -> dict[str, StatTable]:
    revenue = StatTable("revenue", _("Plan sales per month"), (
        _("Month"), _("Ticket type"), _("Plan"), _("Sold"), _("Price"), _("Revenue")),
        tuple((month_label(r.month), kind_label(r.kind), r.plan_name, r.sold,
               Money(r.price_cents), Money(r.revenue_cents)) for r in f.revenue))
    per_kind = StatTable("revenue_types", _("Revenue per ticket type"), (
        _("Ticket type"), _("Sold"), _("Revenue")),
        tuple((kind_label(k), n, Money(c)) for k, n, c in revenue_per_kind(f.revenue)))
    heat = StatTable("entries", _("Entries per weekday and hour"), (
        _("Day"), *(f"{h:02d}" for h in range(24)), _("Total")),
        tuple((_(WEEKDAYS[d]), *row, sum(row)) for d, row in enumerate(f.heat)))
    activity = StatTable("members", _("Active members and retention"), (
        _("Month"), _("Active members"), _("Came again the next month"), _("Retention")),
        tuple((month_label(a.month), a.active, a.retained, Share(a.retention))
              for a in f.activity))
    v = f.vouchers
    vouchers = StatTable("vouchers", _("Gift vouchers not used up"), (
        _("Plan"), _("Vouchers"), _("Entries left"), _("Value")),
        (*((x.plan_name or _("Without a plan or price"), x.vouchers, x.entries_left,
            Money(x.value_cents)) for x in v.lines),
         (_("Total"), v.vouchers, v.entries_left, Money(v.value_cents))))
    return {t.key: t for t in (per_kind, revenue, heat, activity, vouchers)}


def pictures(f: Figures, period: Period) -> dict[str, Markup]:
    span = {"first": format_day(period.first), "last": format_day(period.last)}
    days = [_(d) for d in WEEKDAYS]
    total = sum(sum(row) for row in f.heat)
    heat = stat_charts.heatmap(
        f.heat, days, _("Entries per weekday and hour, %(first)s–%(last)s") % span,
        _("Entries in all: %(n)s; darker cells had more. The numbers are in the table "
          "below.") % {"n": total}, _("%(day)s %(hour)s h, entries: %(n)s"))
    kinds = revenue_per_kind(f.revenue)
    bars = Markup("") if not kinds else stat_charts.bars(
        [(kind_label(k), c, format_money(c)) for k, _n, c in kinds],
        _("Revenue per ticket type, %(first)s–%(last)s") % span,
        _("Plan sales × the plan's price, per ticket type. The numbers are in the table "
          "below."))
    labels = [format_date(a.month, "LLL yy", locale=babel_locale()) for a in f.activity]
    line = stat_charts.lines(
        labels, [(_("Active members"), [a.active for a in f.activity]),
                 (_("Came again the next month"), [a.retained for a in f.activity])],
        _("Active members per month"),
        _("Members with at least one entry in the month, and how many of them came again "
          "the next month. The numbers are in the table below."))
    return {"entries": heat, "revenue_types": bars, "members": line}


@router.get("/sales-stats", **route_meta("sales.view"))
def sales_stats(request: Request, staff: Viewer, ctx: Ctx, source: Liabilities,
                cache: Cache, from_: FromText = "", to: DayText = "") -> Response:
    """``from`` and ``to`` are read here, not by FastAPI, so a wrong value is said beside
    its field on this page instead of an error page."""
    period, values, errors = read_period(from_, to, datetime.now(LOCAL_TZ).date())
    figures = cached(cache, ctx.engine, staff.tenant, period, source)
    return render(request, "sales_stats.html", staff, status_code=422 if errors else 200,
                  values=values, errors=errors, period=period, tables=tables(figures),
                  pictures=pictures(figures, period), vouchers=figures.vouchers,
                  cell=html_cell, max_days=MAX_DAYS,
                  query={"from": format_day(period.first), "to": format_day(period.last)})


@router.get("/sales-stats.csv", **route_meta("sales.view"))
def sales_stats_csv(staff: Viewer, ctx: Ctx, source: Liabilities, cache: Cache,
                    table: Annotated[str, Query(max_length=20)] = "revenue",
                    from_: FromText = "", to: DayText = "") -> Response:
    period, _values, errors = read_period(from_, to, datetime.now(LOCAL_TZ).date())
    if errors:
        raise HTTPException(422, f"bad period: {errors}")
    found = tables(cached(cache, ctx.engine, staff.tenant, period, source)).get(table)
    if found is None:
        raise HTTPException(400, f"unknown table {table!r}")
    name = f"{found.key}-{staff.tenant}-{period.first.isoformat()}-{period.last.isoformat()}"
    return Response(table_csv(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
