"""The staff pages' templates (cloud_bridge/web/page_templates.py) and ``render``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from cloud_bridge.web.auth import Staff
from cloud_bridge.web.labels import audit_action, health, peripheral_role
from cloud_bridge.web.member_form import typed_day
from cloud_bridge.web.nav import nav_for
from cloud_bridge.web.page_templates import day_of, moment_iso, moment_ms, page_templates
from contracts.i18n import format_money

templates = page_templates(Path(__file__).parent / "templates")
# the names older templates use for the shared filters (cloud_bridge/web/page_templates.py)
templates.env.filters.update({"local_ms": moment_ms, "local_ts": moment_iso,
                              "local_day_s": day_of, "euros": format_money,
                              "audit_action": audit_action, "peripheral_role": peripheral_role,
                              "health": health, "typed_day": typed_day})


def now_utc_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def render(request: Request, name: str, staff: Staff | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    base = {"staff": staff, "nav": nav_for(staff.role) if staff else [],
            "tenant": staff.tenant if staff else None, "csrf": staff.csrf if staff else ""}
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status_code)
