"""The web modules mounted on the bridge's FastAPI app (next to the JSON API)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.schema import CreateIndex

from cloud_bridge.db_schema import create_schema, index_applies, lock_schema, metadata, write_tx
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.fleet import fleet_router
from cloud_bridge.web.live import live_router
from cloud_bridge.web.members_pages import members_router
from cloud_bridge.web.plans import plans_router
from cloud_bridge.web.portability import portability_router
from cloud_bridge.web.receipts import receipts_router
from cloud_bridge.web.session_routes import session_router
from cloud_bridge.web.staff_admin import staff_router
from cloud_bridge.web.timesheets import timesheets_router

_SCHEMA_LOCK = 0x6564676577656221  # pg advisory lock id ("edgeweb!")
WORKER_THREADS = int(os.environ.get("BRIDGE_WEB_THREADS", "8"))  # 0: anyio's default


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
    if worker_threads:
        limit_worker_threads(app, worker_threads)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for make in (session_router, fleet_router, members_router, plans_router, live_router,
                 receipts_router, timesheets_router, staff_router, portability_router):
        app.include_router(make(ctx))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True, "pid": os.getpid()})  # which worker answered

    return app
