"""A cash or card payment at the school, fiscally verified by the school's POS device.

The bridge does not verify anything with FURS (it does not import the agent): it sends
the document as the POS's ``print`` command (``billing.pos_job``; a credit note as the
``refund`` command of the invoice's receipt, ``billing.refund_job``) to the device the
office names, an agent with ``[pos]``, and reads the device's answers back onto the
document:

- the command's result (``commands.result``, the agent's ``ReceiptResult``): the
  receipt's number ``premise-device-number``, ZOI, EOR when FURS answered at once, the
  fiscal state (``fiscalised``, ``pending_subsequent``, ``failed_rejected``);
- later, the device's ``pos.fiscalised`` / ``pos.fiscal_rejected`` events for that
  receipt (subsequent submission after FURS was away).

``refresh`` copies what has arrived into the document's columns (``fiscal_*``, ``zoi``,
``eor``); it runs when a document is shown and before an export, so a late EOR
reaches the document without a background job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select, update

from cloud_bridge.db_schema import commands, events, read_tx, write_tx
from cloud_bridge.driving_school.billing import (
    POS_PAYMENTS,
    one_document,
    pos_job,
    refund_job,
)
from cloud_bridge.driving_school.card_command import Publisher, send_command
from cloud_bridge.driving_school.schema import documents
from cloud_bridge.errors import Invalid
from contracts.command_expiry import CommandLifetimes

FINAL = ("fiscalised",)  # nothing more will change
SENT = "sent"  # the command is out, no answer yet


def can_fiscalise(doc: dict[str, Any]) -> bool:
    return (doc["kind"] in ("invoice", "advance", "credit_note")
            and doc["payment"] in POS_PAYMENTS)


def _job(engine: Engine, tenant: str, doc: dict[str, Any], device: str, operator: str,
         tax_number: int) -> tuple[str, dict[str, Any]]:
    """The command's name and arguments: ``print`` for a sale, ``refund`` (on the till
    that issued the invoice's receipt) for a credit note."""
    if doc["kind"] != "credit_note":
        return "print", pos_job(doc, operator, tax_number)
    with read_tx(engine) as conn:
        invoice = one_document(conn, tenant, doc["refers_to"])
    if invoice is None or invoice.get("fiscal_device") != device:
        raise Invalid("a credit note goes to the till that issued the invoice's receipt")
    return "refund", refund_job(doc, invoice, operator, tax_number)


def send_to_till(engine: Engine, publisher: Publisher, prefix: str, tenant: str,
                 doc: dict[str, Any], device: str, operator_name: str,
                 operator_tax_number: int,
                 lifetimes: CommandLifetimes | None = None) -> str:
    """Send the document to the POS device; the command's request id. A document the
    till has already numbered is not sent again (its idempotency key would make the
    device answer with the same receipt anyway)."""
    if not can_fiscalise(doc):
        raise Invalid("only an invoice, advance invoice or credit note paid in cash or "
                      "by card goes through the till")
    if doc.get("fiscal_invoice_id"):
        raise Invalid("the till has already numbered this document")
    name, job = _job(engine, tenant, doc, device, operator_name, operator_tax_number)
    request_id = send_command(engine, publisher, prefix, tenant, device, name, job,
                              lifetimes)
    with write_tx(engine) as conn:
        conn.execute(update(documents).where(
            documents.c.tenant == tenant, documents.c.id == doc["id"]).values(
            fiscal_request_id=request_id, fiscal_device=device, fiscal_state=SENT,
            fiscal_error=None))
    return request_id


def _answer(conn: Connection, tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The new fiscal columns from the command's result and the later events."""
    row = conn.execute(select(commands.c.ok, commands.c.result, commands.c.error).where(
        commands.c.tenant == tenant, commands.c.request_id == doc["fiscal_request_id"])
    ).first()
    found: dict[str, Any] = {}
    if row is not None and row.ok is False:
        found = {"fiscal_state": "error", "fiscal_error": (row.error or "")[:300]}
    elif row is not None and row.ok and isinstance(row.result, dict):
        r = row.result
        found = {"fiscal_invoice_id": r.get("invoice_id"), "zoi": r.get("zoi"),
                 "eor": r.get("eor"), "fiscal_state": r.get("fiscal_state"),
                 "fiscal_error": r.get("error_code")}
    invoice = found.get("fiscal_invoice_id") or doc.get("fiscal_invoice_id")
    if invoice and not (found.get("eor") or doc.get("eor")):
        outcome = conn.execute(select(events.c.type, events.c.data).where(
            events.c.tenant == tenant, events.c.device == doc["fiscal_device"],
            events.c.type.in_(("pos.fiscalised", "pos.fiscal_rejected")))
            .order_by(events.c.seq.desc()).limit(200)).all()
        for kind, data in outcome:
            if (data or {}).get("invoice_id") != invoice:
                continue
            if kind == "pos.fiscalised":
                found.update(eor=data.get("eor"), fiscal_state="fiscalised",
                             fiscal_error=None)
            else:
                found.update(fiscal_state="failed_rejected",
                             fiscal_error=data.get("error_code"))
            break
    return {k: v for k, v in found.items() if v != doc.get(k)}


def refresh(engine: Engine, tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The document with what its POS device has answered so far (stored on it)."""
    if not doc.get("fiscal_request_id") or doc.get("fiscal_state") in FINAL:
        return doc
    with read_tx(engine) as conn:
        changes = _answer(conn, tenant, doc)
    if not changes:
        return doc
    with write_tx(engine) as conn:
        conn.execute(update(documents).where(
            documents.c.tenant == tenant, documents.c.id == doc["id"]).values(**changes))
    return {**doc, **changes}
