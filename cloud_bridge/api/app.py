"""The JSON API's app: the per-resource routers under ``/api/v1/tenants/{tenant}`` behind
the token check, the attendance module, the health check, and the ONE place where the
bridge's errors (cloud_bridge/errors.py) become responses."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from cloud_bridge.api import (
    credentials,
    device_config,
    devices,
    entitlements,
    events,
    members,
    tenants,
)
from cloud_bridge.api.deps import ApiContext, authorise, known_tenant
from cloud_bridge.attendance.api import mount_attendance
from cloud_bridge.attendance.phone_punch import phone_head_key
from cloud_bridge.device_configs import ensure_device_config_schema
from cloud_bridge.errors import BridgeError
from cloud_bridge.nul_guard import RefuseNulText
from cloud_bridge.tickets import api as tickets_api
from cloud_bridge.tickets.schema import ensure_ticket_schema

API_PREFIX = "/api/"
TENANT_PREFIX = "/api/v1/tenants/{tenant}"
_RESOURCES = (tenants, members, credentials, entitlements, events, devices, device_config,
              tickets_api)


def bridge_error_response(request: Request, exc: Exception) -> Response:
    """A BridgeError raised by a route under /api: its status and ``{"detail": text}``.
    Elsewhere, when the web pages are mounted, an HTML page in the reader's language
    (``cloud_bridge/web/error_pages.py``); without them, unhandled (a 500, logged)."""
    if not isinstance(exc, BridgeError):
        raise exc
    html_page = getattr(request.app.state, "bridge_error_page", None)
    if html_page is not None and not request.url.path.startswith(API_PREFIX) \
            and "application/json" not in request.headers.get("accept", ""):
        return html_page(request, exc)  # type: ignore[no-any-return]
    if not request.url.path.startswith(API_PREFIX) and html_page is None:
        raise exc
    return JSONResponse({"detail": str(exc)}, status_code=exc.status,
                        headers=dict(exc.headers) if exc.headers else None)


def health() -> dict[str, Any]:
    return {"ok": True}


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="edge-suite cloud bridge", version="1")
    app.state.api_context = ctx
    ensure_device_config_schema(ctx.engine)  # remote configuration (api/device_config.py)
    ensure_ticket_schema(ctx.engine)  # the ticket ledger (cloud_bridge/tickets)
    app.add_middleware(RefuseNulText)  # PostgreSQL cannot store NUL in text: 422, not 500
    app.add_exception_handler(BridgeError, bridge_error_response)
    for resource in _RESOURCES:
        app.include_router(resource.router, prefix=TENANT_PREFIX,
                           dependencies=[Depends(authorise)])
    # the attendance module checks the same token and tenant, with this app's context
    mount_attendance(app, ctx.engine,
                     lambda request, tenant: authorise(request, tenant, ctx),
                     lambda tenant: known_tenant(tenant, ctx),
                     phone_head_key=lambda tenant: phone_head_key(ctx.keys.get(tenant).signing_key))
    app.add_api_route("/api/v1/health", health, methods=["GET"])
    return app
