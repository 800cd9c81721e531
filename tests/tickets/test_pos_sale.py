"""A bridge-issued ticket sold on a fiscal receipt: the bridge's ``print`` command is a
job the agent's POS accepts; run through a real POS service (FURS test endpoint, virtual
printer) it becomes a fiscalised receipt naming the ticket and printing its signed code as
a QR code under the FURS code (read back from the printed bytes with zbar and verified as
a gate would), and the device's answer shows the receipt on the ticket. The code is in no
event, not in the bridge's ``commands`` table, and a reprint carries it again. Sent again
before the answer, the POS makes no second receipt; once the receipt is known, another
sale is refused."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from typing import Any

import pytest
import pyzbar.pyzbar as zbar
from sqlalchemy import select

from agent.pos.job import parse_job
from cloud_bridge.db_schema import commands, write_tx
from cloud_bridge.device_reports import store_command_result
from cloud_bridge.ingest import Ingestor
from cloud_bridge.tenant_keys import TenantKeys
from cloud_bridge.tickets import ledger
from cloud_bridge.wire import CommandResult, EventBatch
from contracts.ticket_token import TicketKind, verify_ticket
from simulators.furs_endpoint import FursSimulator
from tests.bridge.conftest import FakePublisher
from tests.pos.conftest import furs, furs_pki, make_pos  # noqa: F401 - fixtures
from tests.pos.escpos_decode import decode

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _printed(job_payload: bytes) -> tuple[str, list[str]]:
    """The text of a printed receipt and the data of its QR codes, in print order."""
    printed = decode(job_payload)
    return printed.text, [zbar.decode(img)[0].data.decode() for img in printed.images]


def test_sold_on_a_fiscal_receipt(client: Any, tenant: str, published: FakePublisher,
                                  engine: Any, furs: FursSimulator,  # noqa: F811
                                  make_pos: Any, tenant_keys: TenantKeys,  # noqa: F811
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    now = int(time.time())
    base = f"/api/v1/tenants/{tenant}/tickets"
    ticket = client.post(base, json={"kind": "entry_voucher", "entries": 10,
                                     "price_cents": 8990, "valid_from": now - 60,
                                     "valid_to": now + 86400, "site": "lj"}).json()
    sale = {"device": "till-1", "payment": "card", "vat": "22", "operator_name": "Žiga",
            "operator_tax_number": 12345678}
    sent = client.post(f"{base}/{ticket['id']}/sell", json=sale)
    assert sent.status_code == 202, sent.text
    [payload] = published.on("/till-1/cmd/print")
    command = json.loads(payload)
    job = parse_job(command["args"])  # the agent's own validation of the job
    assert str(job.totals.total) == "89.90" and job.note == f"Vstopnica {ticket['id']}"
    [printed_ticket] = job.tickets
    assert printed_ticket.code == ticket["code"]  # the very code issued, signed again
    # the bridge's command table keeps the job without the code (a bearer credential)
    with engine.connect() as conn:
        stored = conn.execute(select(commands.c.args).where(
            commands.c.request_id == command["request_id"])).scalar_one()
    assert stored["tickets"] == [{"code": "(withheld)", "label": printed_ticket.label}]
    assert ticket["code"] not in json.dumps(stored)
    # sent again before the device answered (it was off): the same job, the same key
    assert client.post(f"{base}/{ticket['id']}/sell", json=sale).status_code == 202
    resent = json.loads(published.on("/till-1/cmd/print")[-1])
    assert resent["args"] == command["args"]

    pos = make_pos(furs.url)
    result = pos.service.submit(command["args"])
    assert result.fiscal_state == "fiscalised"
    assert pos.service.submit(resent["args"]).invoice_id == result.invoice_id  # no second
    # the buyer's receipt: FURS's code, then the ticket's, which a gate of the site accepts
    [original] = pos.printer.jobs
    text, codes = _printed(original.payload)
    assert codes[0] == result.qr and len(codes) == 2
    token = verify_ticket(codes[1], tenant_keys.public_key, now, "lj")
    assert (token.ticket_id, token.kind, token.entries) == (ticket["id"],
                                                            TicketKind.ENTRY_VOUCHER, 10)
    assert text.index("ZOI:") < text.rindex(
        printed_ticket.label)
    # a reprint (KOPIJA 1) carries the ticket again
    pos.service.reprint(result.invoice_id)
    copy_text, copy_codes = _printed(pos.printer.jobs[-1].payload)
    assert "KOPIJA 1" in copy_text and copy_codes == codes
    [receipt] = pos.events("pos.receipt")
    assert receipt["note"] == f"Vstopnica {ticket['id']}"
    # no event of the device carries the code, nor any log line of the sale
    assert all(ticket["code"] not in json.dumps(e.data)
               for e in pos.outbox.pending(limit=10_000))
    assert caplog.records and ticket["code"] not in caplog.text
    # the device answers the newest command: the ticket shows the receipt
    with write_tx(engine) as conn:
        assert store_command_result(conn, tenant, "till-1", CommandResult(
            v=1, request_id=resent["request_id"], ok=True,
            result=dataclasses.asdict(result)))
    shown = client.get(f"{base}/{ticket['id']}").json()
    assert shown["receipt"] == result.invoice_id == "P1-BLAG1-1"
    # and the receipt's own event, ingested, links the ledger row to it
    batch = EventBatch.model_validate({"v": 1, "tenant": tenant, "device": "till-1", "events": [
        {"id": str(uuid.uuid4()), "tenant": tenant, "device": "till-1", "seq": 1,
         "ts": "2026-12-03T10:00:00.000Z", "type": "pos.receipt", "data": receipt}]})
    Ingestor(engine).ingest([batch])
    with engine.connect() as conn:
        assert ledger.get_ticket(conn, tenant, ticket["id"])["receipt"] == "P1-BLAG1-1"
    assert client.post(f"{base}/{ticket['id']}/sell", json=sale).status_code == 409
