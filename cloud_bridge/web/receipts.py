"""Receipts from the POS agents' events (docs/pos.md): ``pos.receipt`` when a receipt is
issued (always fiscal_state "pending" then), ``pos.fiscalised`` with the EOR (live, or
later by subsequent submit), ``pos.fiscal_rejected`` with the FURS error code. A reprint
is a device command ("reprint", args {invoice_id}); the agent prints "KOPIJA n"."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, select

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import events, read_tx, write_tx
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.catalogue_form import vat_label
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.device_commands import command_message, recent_commands, record_command
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.rendering import render
from contracts.i18n import N_
from contracts.i18n import gettext as _

FISCAL_STATES = {"fiscalised": N_("Fiscalised (EOR)"),
                 "pending_subsequent": N_("Waiting for subsequent submit"),
                 "failed_rejected": N_("Rejected by FURS")}
PAYMENT_METHODS = {"cash": N_("cash"), "card": N_("card"), "transfer": N_("bank transfer")}
PAGE = 50
STATE_SCAN = 5000  # receipts a state filter looks through, newest first
OUTCOME_TYPES = ("pos.fiscalised", "pos.fiscal_rejected")


def fiscal_state(receipt: dict[str, Any], outcome: dict[str, Any] | None,
                 now_iso: str) -> dict[str, Any]:
    if outcome is not None and outcome["type"] == "pos.fiscalised":
        return {"state": "fiscalised", "eor": outcome["data"].get("eor"),
                "subsequent": bool(outcome["data"].get("subsequent"))}
    if outcome is not None:
        return {"state": "failed_rejected", "error_code": outcome["data"].get("error_code"),
                "error_message": outcome["data"].get("error_message")}
    deadline = receipt.get("deadline") or ""
    return {"state": "pending_subsequent", "deadline": deadline,
            "overdue": bool(deadline) and deadline < now_iso}


def outcomes_for(conn: Connection, tenant: str, rows: list[Any]) -> dict[tuple[str, str], Any]:
    """The newest fiscal outcome per (device, invoice) of the given receipt events."""
    if not rows:
        return {}
    wanted = {(r["device"], r["data"].get("invoice_id")) for r in rows}
    stmt = select(events.c.device, events.c.seq, events.c.type, events.c.data).where(
        events.c.tenant == tenant, events.c.type.in_(OUTCOME_TYPES),
        events.c.ts >= min(r["ts"] for r in rows),
        events.c.device.in_(sorted({d for d, _ in wanted}))).order_by(events.c.seq)
    found: dict[tuple[str, str], Any] = {}
    for r in conn.execute(stmt).mappings():
        key = (r["device"], (r["data"] or {}).get("invoice_id"))
        if key in wanted:
            found[key] = dict(r)
    return found


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("receipts.view"))]
Reprinter = Annotated[Staff, Depends(need("receipts.reprint"))]
Device = Annotated[str, Path(pattern=ID_PATTERN)]
Seq = Annotated[int, Path(ge=1, le=2**62)]

def one_receipt(conn: Connection, tenant: str, device: str, seq: int) -> dict[str, Any]:
    row = conn.execute(select(events).where(
        events.c.tenant == tenant, events.c.device == device, events.c.seq == seq,
        events.c.type == "pos.receipt")).mappings().first()
    if row is None:
        raise HTTPException(404, "no such receipt")
    return dict(row)


@router.get("/receipts", **route_meta("receipts.view"))
def list_receipts(request: Request, staff: Viewer, ctx: Ctx,
                  page: Annotated[int, Query(ge=0, le=10_000)] = 0,
                  state: Annotated[str, Query(max_length=32)] = "") -> Response:
    if state and state not in FISCAL_STATES:
        raise HTTPException(400, "unknown fiscal state")
    """Newest first. The fiscal state comes from later events, so a state filter
    reads receipts in chunks (newest STATE_SCAN at most) and keeps the matching."""
    now = now_iso()
    wanted = range(page * PAGE, (page + 1) * PAGE + 1)  # one more: is there a next page
    matched: list[dict[str, Any]] = []
    scanned = 0
    chunk = PAGE + 1 if not state else 200
    with read_tx(ctx.engine) as conn:
        while len(matched) < wanted.stop and scanned < (STATE_SCAN if state else 1 << 62):
            offset = scanned if state else page * PAGE
            rows = conn.execute(select(events).where(
                events.c.tenant == staff.tenant, events.c.type == "pos.receipt")
                .order_by(events.c.ts.desc(), events.c.device, events.c.seq)
                .offset(offset).limit(chunk)).mappings().all()
            outcomes = outcomes_for(conn, staff.tenant, list(rows))
            for r in rows:
                fiscal = fiscal_state(r["data"], outcomes.get(
                    (r["device"], r["data"].get("invoice_id"))), now)
                if not state or fiscal["state"] == state:
                    matched.append({"device": r["device"], "seq": r["seq"], "ts": r["ts"],
                                    "data": r["data"], "fiscal": fiscal})
            scanned += len(rows)
            if not state or len(rows) < chunk:
                break
    receipts = matched[page * PAGE:(page + 1) * PAGE] if state else matched[:PAGE]
    has_next = len(matched) > (page + 1) * PAGE if state else len(matched) > PAGE
    return render(request, "receipts.html", staff, receipts=receipts, page=page,
                  has_next=has_next, state=state, fiscal_states=FISCAL_STATES,
                  scan_limited=bool(state) and scanned >= STATE_SCAN)


@router.get("/receipts/{device}/{seq}", **route_meta("receipts.view"))
def receipt(request: Request, staff: Viewer, ctx: Ctx, device: Device,
            seq: Seq, notice: Annotated[str, Query(max_length=40)] = "") -> Response:
    with read_tx(ctx.engine) as conn:
        row = one_receipt(conn, staff.tenant, device, seq)
        outcomes = outcomes_for(conn, staff.tenant, [row])
        invoice = row["data"].get("invoice_id")
        reprints = [c for c in recent_commands(conn, staff.tenant, 200, device)
                    if c["name"] == "reprint" and c["args"].get("invoice_id") == invoice]
    fiscal = fiscal_state(row["data"], outcomes.get((device, invoice)), now_iso())
    return render(request, "receipt.html", staff, r=row, d=row["data"], fiscal=fiscal,
                  payment_methods=PAYMENT_METHODS, vat_label=vat_label,
                  reprints=reprints,
                  notice=_("Reprint sent to the device.") if notice == "reprint-sent" else "")


@router.post("/receipts/{device}/{seq}/reprint", **route_meta("receipts.reprint"))
def reprint(staff: Reprinter, ctx: Ctx, device: Device,
            seq: Seq) -> Response:
    with write_tx(ctx.engine) as conn:
        row = one_receipt(conn, staff.tenant, device, seq)
        args = {"invoice_id": row["data"].get("invoice_id")}
        expires_at = ctx.command_lifetimes.expires_at_ms("reprint")
        request_id = record_command(conn, staff.tenant, device, "reprint", args,
                                    expires_at)
        audit.record(conn, staff, "receipt.reprint", f"{device}/{seq}",
                     {**args, "request_id": request_id})
    ctx.publisher.publish(*command_message(ctx.prefix, staff.tenant, device, "reprint",
                                           request_id, args, expires_at))
    return RedirectResponse(f"/t/{staff.tenant}/receipts/{device}/{seq}?notice="
                            "reprint-sent", 303)
