"""Live entries: the newest decisions per site with reason codes, occupancy and denied
taps today, pushed to the browser by Server-Sent Events; and the statistics page.

The stream polls the events table by arrival time (``received_at``, indexed), not by any
in-process signal, so it sees events stored by every bridge process. Two bridges can
commit out of arrival order, so each poll looks back OVERLAP_MS and skips the events it
already sent."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, cast

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse

from cloud_bridge.db_schema import read_tx
from cloud_bridge.param_bounds import MAX_BIGINT, MsAfterQuery
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import LOCAL_TZ, WebContext
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entry_stats import (
    TtlCache,
    bar_chart,
    cached_today,
    decisions_since,
    hourly_and_daily,
    latest_decisions,
    site_devices,
)
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.page_templates import moment_iso as local_ts
from cloud_bridge.web.rendering import render
from contracts.i18n import format_day, ngettext, parse_day
from contracts.i18n import gettext as _

OVERLAP_MS = 5_000
POLL_S = 1.0
STREAM_MAX_S = 15 * 60  # EventSource reconnects by itself; this bounds idle tabs
SiteQ = Annotated[str, Query(max_length=64)]
STATS_MAX_DAYS = 92


def resume_cursor(last_event_id: str, after: int) -> int:
    """The browser's Last-Event-ID (the received_at of the last event it got) when it is
    a usable one, else ``after``. The header is free text: only ASCII digits of a value
    the events table can hold count (``"²".isdigit()`` is true, and a 30-digit number
    does not fit a bigint)."""
    if re.fullmatch(r"[0-9]{1,19}", last_event_id) and int(last_event_id) <= MAX_BIGINT:
        return int(last_event_id)
    return after


router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("live.view"))]
_CACHES_KEY = "live_caches"


@dataclass(frozen=True, slots=True)
class LiveCaches:
    """Per app: today's figures for the live page and its stream, and the statistics."""
    today: TtlCache = field(default_factory=lambda: TtlCache(5.0))
    stats: TtlCache = field(default_factory=lambda: TtlCache(30.0))


def install_live_caches(app: FastAPI) -> None:
    """Called once by the app factory (``mount_web``)."""
    setattr(app.state, _CACHES_KEY, LiveCaches())


def live_caches(request: Request) -> LiveCaches:
    return cast(LiveCaches, getattr(request.app.state, _CACHES_KEY))


Caches = Annotated[LiveCaches, Depends(live_caches)]


def devices_of(conn: Any, tenant: str, site: str) -> tuple[dict[str, list[str]],
                                                              list[str] | None]:
    sites = site_devices(conn, tenant)
    return sites, (sites.get(site, []) if site else None)


@router.get("/live", **route_meta("live.view"))
def live(request: Request, staff: Viewer, ctx: Ctx, caches: Caches,
         site: SiteQ = "") -> Response:
    with read_tx(ctx.engine) as conn:
        sites, ids = devices_of(conn, staff.tenant, site)
        rows = latest_decisions(conn, staff.tenant, ids)
    figures = cached_today(caches.today, ctx.engine, staff.tenant, ids)
    cursor = max((r["received_at"] for r in rows), default=0)
    for r in rows:
        r["local"] = local_ts(r["ts"])
    return render(request, "live.html", staff, rows=rows, figures=figures,
                  sites=sorted(sites), site=site, cursor=cursor)


async def decision_events(request: Request, ctx: WebContext, caches: LiveCaches,
                          tenant: str, site: str, cursor: int) -> AsyncIterator[str]:
    """The stream's text: new decisions (from ``cursor`` on) and today's figures, every
    POLL_S, for STREAM_MAX_S at most."""

    def poll(since: int) -> tuple[list[dict[str, Any]], Any]:
        with read_tx(ctx.engine) as conn:
            _, ids = devices_of(conn, tenant, site)
            rows = decisions_since(conn, tenant, ids, since - OVERLAP_MS)
        return rows, cached_today(caches.today, ctx.engine, tenant, ids)

    sent: dict[str, int] = {}  # key -> received_at, for the overlap window
    started = anyio.current_time()
    yield "retry: 2000\n\n"
    while anyio.current_time() - started < STREAM_MAX_S:
        if await request.is_disconnected():
            return
        rows, figures = await anyio.to_thread.run_sync(poll, cursor)
        fresh = [r for r in rows if r["key"] not in sent]
        for r in fresh:
            sent[r["key"]] = r["received_at"]
            cursor = max(cursor, r["received_at"])
            r["local"] = local_ts(r["ts"])
            yield f"id: {cursor}\nevent: decision\ndata: {json.dumps(r)}\n\n"
        sent = {k: v for k, v in sent.items() if v > cursor - OVERLAP_MS}
        counts = {"occupancy": figures.occupancy, "granted": figures.granted,
                  "denied": figures.denied}
        yield f"event: figures\ndata: {json.dumps(counts)}\n\n"
        await asyncio.sleep(POLL_S)


@router.get("/live/stream", **route_meta("live.view"))
async def stream(request: Request, staff: Viewer, ctx: Ctx, caches: Caches,
                 site: SiteQ = "", after: MsAfterQuery = 0) -> StreamingResponse:
    cursor = resume_cursor(request.headers.get("last-event-id", ""), after)
    return StreamingResponse(decision_events(request, ctx, caches, staff.tenant, site,
                                             cursor),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store",
                                      "X-Accel-Buffering": "no"})


@router.get("/stats", **route_meta("live.view"))
def stats(request: Request, staff: Viewer, ctx: Ctx, caches: Caches,
          days: Annotated[str, Query(max_length=12)] = "14",
          day: Annotated[str, Query(max_length=20)] = "") -> Response:
    """``days`` and ``day`` are read here, not by FastAPI, so a wrong value is said
    beside its field on this page instead of an error page."""
    today = datetime.now(LOCAL_TZ).date()
    errors: dict[str, str] = {}
    span = int(days) if days.strip().isdigit() else 0
    if not 1 <= span <= STATS_MAX_DAYS:
        errors["days"] = _("A whole number from 1 to %(n)s.") % {"n": STATS_MAX_DAYS}
        span = 14
    chosen = today
    if day.strip():
        try:
            chosen = parse_day(day)
        except ValueError as exc:
            errors["day"] = str(exc)
    days_n = span

    def compute() -> Any:
        with read_tx(ctx.engine) as conn:
            daily, _h = hourly_and_daily(conn, staff.tenant,
                                         today - timedelta(days=days_n - 1), today)
            _d, hourly = hourly_and_daily(conn, staff.tenant, chosen, chosen)
        return daily, hourly

    daily, hourly = caches.stats.get((staff.tenant, days_n, chosen), compute)
    daily_chart = bar_chart([(f"{d.day}. {d.month}.", g, n) for d, (g, n) in daily.items()],
                            ngettext("Entries per day, last %(n)d day",
                                     "Entries per day, last %(n)d days", days_n)
                            % {"n": days_n})
    hourly_chart = bar_chart([(f"{h:02d}", g, n) for h, (g, n) in hourly.items()],
                             _("Entries per hour on %(day)s") % {"day": format_day(chosen)})
    values = {"days": days if "days" in errors else str(days_n),
              "day": day if "day" in errors else format_day(chosen)}
    return render(request, "stats.html", staff, status_code=422 if errors else 200,
                  daily=daily, hourly=hourly, daily_chart=daily_chart,
                  hourly_chart=hourly_chart, values=values, errors=errors,
                  max_days=STATS_MAX_DAYS)
