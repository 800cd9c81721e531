"""``/tickets`` in the JSON API: issue (with the code, and an e-mail when a buyer address
is given and the bridge has a mailer), list, one ticket with its balance, refund."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cloud_bridge.api.deps import Ctx, Limit, Tenant, read
from cloud_bridge.tickets import ledger
from cloud_bridge.tickets.operations import TicketDesk
from cloud_bridge.tickets.pos_sale import sale_receipt, sell_on_pos
from contracts.ticket_token import TicketKind

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TicketId = Annotated[str, Path(pattern=UUID_PATTERN)]
router = APIRouter()


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["day_ticket", "entry_voucher", "value_voucher"]
    valid_from: Annotated[int, Field(gt=0)]
    valid_to: Annotated[int, Field(gt=0)]
    entries: Annotated[int, Field(ge=0)] = 0
    value_cents: Annotated[int, Field(ge=0)] = 0
    price_cents: Annotated[int, Field(ge=0)] = 0
    site: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    buyer_email: Annotated[str, Field(max_length=320)] | None = None
    label: Annotated[str, Field(max_length=80)] = ""


class SellIn(BaseModel):
    """Sell on a fiscal receipt printed by the site's POS device (pos_sale.py)."""

    model_config = ConfigDict(extra="forbid")
    device: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    payment: Literal["cash", "card"]
    vat: Literal["22", "9.5", "5", "exempt"]
    operator_name: Annotated[str, Field(min_length=1, max_length=40)]
    operator_tax_number: Annotated[int, Field(ge=10_000_000, le=99_999_999)]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=200)] = ""


def _desk(request: Request, ctx: Ctx) -> TicketDesk:
    web = getattr(request.app.state, "web_context", None)
    return TicketDesk(ctx.engine, ctx.keys, ctx.feed,
                      getattr(web, "notifier", None), getattr(web, "member_link_key", None))


def ticket_out(row: dict[str, Any], bal: ledger.Balance) -> dict[str, Any]:
    return {"id": row["id"], "kind": TicketKind(row["kind"]).name.lower(),
            "site": row["site"], "valid_from": row["valid_from"], "valid_to": row["valid_to"],
            "entries": row["entries"], "value_cents": row["value_cents"],
            "price_cents": row["price_cents"], "receipt": row["receipt"],
            "issuer": row["issuer"], "label": row["label"], "state": bal.state,
            "entries_left": bal.entries_left, "value_left_cents": bal.value_left_cents,
            "refunded_ms": row["refunded_ms"]}


@router.post("/tickets", status_code=201)
def issue(tenant: Tenant, body: TicketIn, request: Request, ctx: Ctx) -> dict[str, Any]:
    req = ledger.IssueRequest(kind=TicketKind[body.kind.upper()], **body.model_dump(
        exclude={"kind"}))
    row, code, mailed = _desk(request, ctx).issue(tenant, req, str(request.base_url))
    return {**ticket_out(row, ledger.balance_of(row, 0, 0, row["valid_from"])),
            "code": code, "mailed": mailed}


@router.get("/tickets")
def list_tickets(tenant: Tenant, ctx: Ctx, state: Annotated[
        Literal["valid", "not_yet_valid", "used_up", "expired", "refunded"] | None,
        Query()] = None, limit: Limit = 100) -> list[dict[str, Any]]:
    rows = read(ctx, lambda c: ledger.list_tickets(c, tenant, state=state, limit=limit))
    return [ticket_out(r, b) for r, b in rows]


@router.get("/tickets/{ticket_id}")
def get_ticket(tenant: Tenant, ticket_id: TicketId, ctx: Ctx) -> dict[str, Any]:
    def work(conn: Any) -> dict[str, Any]:
        row = ledger.get_ticket(conn, tenant, ticket_id)
        return {**ticket_out(row, ledger.balance(conn, tenant, row)),
                "receipt": sale_receipt(conn, tenant, row)}
    return read(ctx, work)


@router.post("/tickets/{ticket_id}/sell", status_code=202)
def sell(tenant: Tenant, ticket_id: TicketId, body: SellIn, ctx: Ctx) -> dict[str, Any]:
    request_id = sell_on_pos(ctx.engine, ctx.publisher, ctx.prefix, tenant, ticket_id,
                             body.device, body.model_dump(exclude={"device"}),
                             ctx.keys.get(tenant).signing_key, ctx.command_lifetimes)
    return {"request_id": request_id, "device": body.device}


@router.post("/tickets/{ticket_id}/refund")
def refund(tenant: Tenant, ticket_id: TicketId, body: RefundIn, request: Request,
           ctx: Ctx) -> dict[str, Any]:
    _desk(request, ctx).refund(tenant, ticket_id, body.note)
    return get_ticket(tenant, ticket_id, ctx)
