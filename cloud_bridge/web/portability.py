"""Data portability and erasure. The export is one ZIP with every row of every table
that has a ``tenant`` column (found by reflection, so tables added by other modules are
included), each as JSON and CSV; secrets (password, PIN and session hashes) are left
out. Erasure is membership_ops.erase_member: the person's rows and their past change
records go, and the delete record reaches every device in the next signed batch."""

import csv
import io
import json
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine, MetaData, Table, select
from sqlalchemy.exc import SAWarning

from cloud_bridge import membership_ops
from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.membership_changes import FormError, apply_change
from cloud_bridge.web.rendering import render

SECRET_COLUMNS = frozenset({"password_hash", "pin_hash", "id_hash", "csrf"})
SKIPPED_TABLES = frozenset({"web_sessions", "web_login_attempts"})


def tenant_tables(engine: Engine) -> list[Table]:
    meta = MetaData()
    with warnings.catch_warnings():
        # expression indexes cannot be reflected; only the columns matter here
        warnings.simplefilter("ignore", SAWarning)
        meta.reflect(bind=engine)
    return [t for name, t in sorted(meta.tables.items())
            if "tenant" in t.c and name not in SKIPPED_TABLES]


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def write_export(engine: Engine, tenant: str, out: IO[bytes]) -> dict[str, int]:
    """Write the tenant's ZIP to ``out``; returns rows per table."""
    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, \
            read_tx(engine, stream=True) as conn:
        for table in tenant_tables(engine):
            cols = [c for c in table.c if c.name not in SECRET_COLUMNS]
            names = [c.name for c in cols]
            rows = conn.execute(select(*cols).where(table.c.tenant == tenant)
                                .order_by(*table.primary_key.columns or cols[:1]))
            n = 0
            # a ZIP takes one writer at a time: CSV goes to a spool, copied in after
            with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
                text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(names)
                with zf.open(f"{table.name}.json", "w") as js:
                    js.write(b"[\n")
                    for row in rows:
                        record = dict(zip(names, row, strict=True))
                        js.write((",\n" if n else "").encode()
                                 + json.dumps(record, ensure_ascii=False, default=str).encode())
                        writer.writerow([_cell(v) for v in row])
                        n += 1
                    js.write(b"\n]\n")
                text.flush()
                text.detach()
                spool.seek(0)
                with zf.open(f"{table.name}.csv", "w") as cs:
                    shutil.copyfileobj(spool, cs, 1024 * 1024)
            counts[table.name] = n
        zf.writestr("manifest.json", json.dumps({
            "tenant": tenant, "exported_at_ms": int(time.time() * 1000), "rows": counts,
            "left_out": sorted(SECRET_COLUMNS)}, indent=2))
    return counts


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    try:
        f.seek(0)
        while chunk := f.read(256 * 1024):
            yield chunk
    finally:
        f.close()


router = APIRouter(prefix="/t/{tenant}")
Exporter = Annotated[Staff, Depends(need("tenant.export"))]
Eraser = Annotated[Staff, Depends(need("members.erase"))]

@router.get("/data", **route_meta("tenant.export"))
def data_page(request: Request, staff: Exporter, ctx: Ctx) -> Response:
    return render(request, "data.html", staff,
                  tables=[t.name for t in tenant_tables(ctx.engine)])


@router.get("/data/export.zip", **route_meta("tenant.export"))
def export_zip(staff: Exporter, ctx: Ctx) -> Response:
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115
    counts = write_export(ctx.engine, staff.tenant, spool)
    with write_tx(ctx.engine) as conn:
        audit.record(conn, staff, "tenant.export", staff.tenant, {"rows": counts})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(_chunks(spool), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{staff.tenant}-{stamp}.zip"',
        "Cache-Control": "no-store"})


@router.post("/members/{member_id}/erase", **route_meta("members.erase"))
def erase_member(staff: Eraser, ctx: Ctx,
                 member_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    try:
        apply_change(ctx, staff, "member.erase", member_id, {},
                     lambda c: (None, membership_ops.erase_member(c, staff.tenant,
                                                                  member_id)))
    except FormError as exc:
        return RedirectResponse(f"/t/{staff.tenant}/members/{member_id}?error="
                                f"{'conflict' if exc.conflict else 'invalid'}", 303)
    return RedirectResponse(f"/t/{staff.tenant}/members?q=", 303)
