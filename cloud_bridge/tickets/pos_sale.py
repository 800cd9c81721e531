"""Selling a bridge-issued ticket on a fiscal receipt: the bridge sends the site's POS
device (an agent with ``[pos]``) a ``print`` command whose job is the POS's
``PrintJobRequest`` (docs/pos.md), as the driving school's billing does; the agent
numbers the receipt, fiscalises it with FURS (or owes it and submits later) and prints it.

The job names the ticket in a line and the note, and carries the ticket's code (signed
again from the ledger row, ledger.code_for) in its ``tickets`` field: the POS prints it as
a QR code under the receipt's FURS code, so the buyer's receipt is the ticket. The code is
a bearer credential: the ``commands`` table keeps the job with the code withheld (the
device gets it in the published command only); docs/vouchers.md. The job's idempotency
key is the ticket, so a resent command never makes a second receipt.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, select, update

from cloud_bridge.change_feed import Publisher
from cloud_bridge.db_schema import commands, write_tx
from cloud_bridge.driving_school.card_command import send_command
from cloud_bridge.errors import Conflict, Invalid
from cloud_bridge.tickets.documents import kind_label, short_id
from cloud_bridge.tickets.ledger import code_for, get_ticket
from cloud_bridge.tickets.schema import tickets
from contracts.command_expiry import CommandLifetimes
from contracts.i18n import use_language

Payment = Literal["cash", "card"]
VAT_RATES = ("22", "9.5", "5", "exempt")
WITHHELD = "(withheld)"


def _eur(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))


def sale_job(row: dict[str, Any], code: str, operator_name: str, operator_tax_number: int,
             payment: Payment, vat: str) -> dict[str, Any]:
    """The POS print job that sells ``row`` at its price and prints ``code`` as its QR."""
    if vat not in VAT_RATES:
        raise Invalid(f"VAT rate {vat!r}: use one of {', '.join(VAT_RATES)}")
    if int(row["price_cents"]) <= 0:
        raise Invalid("a free ticket is not sold on a receipt")
    with use_language("sl"):
        name = f"{kind_label(row['kind'])} {short_id(row['id'])}"
    price = _eur(int(row["price_cents"]))
    return {
        "idempotency_key": f"tk-{row['tenant']}-{row['id']}",
        "operator": {"name": operator_name[:40], "tax_number": operator_tax_number},
        "lines": [{"name": name[:100], "quantity": "1", "unit_price": price, "vat": vat}],
        "payments": [{"method": payment, "amount": price}],
        "totals": {"total": price},
        "note": f"Vstopnica {row['id']}",
        "tickets": [{"code": code, "label": name[:60]}],
    }


def without_codes(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the ``commands`` table keeps it: every ticket code withheld."""
    return {**job, "tickets": [{**t, "code": WITHHELD} for t in job.get("tickets", [])]}


def sell_on_pos(engine: Engine, publisher: Publisher, prefix: str, tenant: str,
                ticket_id: str, device: str, job_args: dict[str, Any],
                signer: Ed25519PrivateKey, lifetimes: CommandLifetimes | None = None) -> str:
    """Send the sale to ``device``; the command's request id (its result names the
    receipt). Refused for a refunded ticket or one whose receipt is known. Sending again
    before the device answered (it was off, the command expired) is safe: the job's
    idempotency key is the ticket, so the POS returns the first receipt, never a second."""
    with write_tx(engine) as conn:
        row = get_ticket(conn, tenant, ticket_id)
        if row["refunded_ms"] is not None:
            raise Conflict("this ticket is refunded")
        if sale_receipt(conn, tenant, row) is not None:
            raise Conflict("this ticket is already sold on a receipt")
        job = sale_job(row, code_for(row, signer), **job_args)
    request_id = send_command(engine, publisher, prefix, tenant, device, "print", job,
                              lifetimes, stored_args=without_codes(job))
    with write_tx(engine) as conn:
        conn.execute(update(tickets).where(tickets.c.tenant == tenant,
                                           tickets.c.id == ticket_id)
                     .values(sale_device=device, sale_request=request_id))
    return request_id


def sale_receipt(conn: Connection, tenant: str, row: dict[str, Any]) -> str | None:
    """The receipt's invoice number once the POS device answered the sale."""
    if row["receipt"] is not None or row["sale_request"] is None:
        return row["receipt"]  # type: ignore[no-any-return]
    result = conn.execute(select(commands.c.result).where(
        commands.c.tenant == tenant, commands.c.request_id == row["sale_request"],
        commands.c.ok.is_(True))).scalar()
    invoice = (result or {}).get("invoice_id") if isinstance(result, dict) else None
    return str(invoice) if invoice else None
