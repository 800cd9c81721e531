"""The web modules mounted on the bridge's FastAPI app (next to the JSON API)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.schema import CreateIndex

from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.catalogue.store import ensure_catalogue_schema
from cloud_bridge.db_schema import (
    create_schema,
    index_applies,
    lock_schema,
    metadata,
    write_tx,
)
from cloud_bridge.member_notice_sweep import ensure_member_notice_schema
from cloud_bridge.releases import page as releases_page
from cloud_bridge.tickets import pages as tickets_pages
from cloud_bridge.tickets.schema import ensure_ticket_schema
from cloud_bridge.waivers import ensure_waiver_schema
from cloud_bridge.web import (
    catalogue_page,
    device_config_page,
    fleet,
    live,
    member_credentials,
    member_entitlements,
    member_notice_pages,
    members_pages,
    plans,
    portability,
    receipts,
    sales_stats_page,
    script_catalogs,
    session_routes,
    staff_admin,
    timesheets,
    user_prefs,
    waivers_pages,
)
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.deps import install_context
from cloud_bridge.web.error_pages import install_error_pages
from cloud_bridge.web.language import LanguageMiddleware

_SCHEMA_LOCK = 0x6564676577656221  # pg advisory lock id ("edgeweb!")
WORKER_THREADS = int(os.environ.get("BRIDGE_WEB_THREADS", "8"))  # 0: anyio's default


health_router = APIRouter(include_in_schema=False)


@health_router.get("/healthz")
def healthz() -> JSONResponse:
    return JSONResponse({"ok": True, "pid": os.getpid()})  # which worker answered


def ensure_web_schema(engine: Engine) -> None:
    """Create the web tables, and the bridge indexes the pages rely on when the database
    predates them (create_all adds indexes only with new tables)."""
    create_schema(engine)
    with write_tx(engine) as conn:
        lock_schema(conn, _SCHEMA_LOCK)
        web_metadata.create_all(conn)
        for table in metadata.sorted_tables:
            for index in table.indexes:
                if index_applies(index, engine):
                    conn.execute(CreateIndex(index, if_not_exists=True))


def limit_worker_threads(app: FastAPI, threads: int) -> None:
    """Sync routes run in anyio's thread pool (40 threads by default). Under load, 40
    threads contending for the GIL finish requests out of arrival order and stretch the
    latency tail; a few threads keep them in order (the limiter queues FIFO)."""
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        async with original(application) as state:
            yield state

    app.router.lifespan_context = lifespan


def mount_web(app: FastAPI, ctx: WebContext, worker_threads: int | None = WORKER_THREADS
              ) -> FastAPI:
    ensure_web_schema(ctx.engine)
    create_attendance_schema(ctx.engine)  # the timesheet pages read it
    ensure_waiver_schema(ctx.engine)
    ensure_member_notice_schema(ctx.engine)  # the opt-out on the member's page
    ensure_catalogue_schema(ctx.engine)  # the till catalogue page
    ensure_ticket_schema(ctx.engine)  # tickets and vouchers (cloud_bridge/tickets)
    install_context(app, ctx)
    live.install_live_caches(app)
    if worker_threads:
        limit_worker_threads(app, worker_threads)
    app.add_middleware(LanguageMiddleware)
    install_error_pages(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (user_prefs, session_routes, fleet, members_pages, member_entitlements,
                   member_credentials, plans, live, receipts, timesheets, staff_admin,
                   portability, script_catalogs, device_config_page, catalogue_page,
                   releases_page, waivers_pages, sales_stats_page,
                   member_notice_pages, tickets_pages):
        app.include_router(module.router)
    app.include_router(health_router)
    return app
