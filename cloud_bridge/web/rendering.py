"""Jinja2 templates with the few filters the pages share (local times, money)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import LOCAL_TZ
from cloud_bridge.web.nav import nav_for

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def local_ms(ms: int | None) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def local_day_s(seconds: int | None) -> str:
    """An entitlement time (epoch seconds) as a local date."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, LOCAL_TZ).strftime("%Y-%m-%d")


def local_ts(ts: str | None) -> str:
    """An event's UTC ISO time as local wall-clock time."""
    if not ts:
        return "—"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return when.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def euros(cents: int | None) -> str:
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d} €"


def now_utc_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


templates.env.filters["local_ms"] = local_ms
templates.env.filters["local_day_s"] = local_day_s
templates.env.filters["local_ts"] = local_ts
templates.env.filters["euros"] = euros


def render(request: Request, name: str, staff: Staff | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    base = {"staff": staff, "nav": nav_for(staff.role) if staff else [],
            "tenant": staff.tenant if staff else None, "csrf": staff.csrf if staff else ""}
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status_code)
