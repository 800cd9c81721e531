"""A bridge-issued ticket sold on a fiscal receipt: the bridge's ``print`` command is a
job the agent's POS accepts; run through a real POS service (FURS test endpoint, virtual
printer) it becomes a fiscalised receipt naming the ticket, and the device's answer shows
the receipt on the ticket. Sent again before the answer, the POS makes no second receipt;
once the receipt is known, another sale is refused."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import pytest

from agent.pos.job import parse_job
from cloud_bridge.db_schema import write_tx
from cloud_bridge.device_reports import store_command_result
from cloud_bridge.ingest import Ingestor
from cloud_bridge.tickets import ledger
from cloud_bridge.wire import CommandResult, EventBatch
from simulators.furs_endpoint import FursSimulator
from tests.bridge.conftest import FakePublisher
from tests.pos.conftest import furs, furs_pki, make_pos  # noqa: F401 - fixtures

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_sold_on_a_fiscal_receipt(client: Any, tenant: str, published: FakePublisher,
                                  engine: Any, furs: FursSimulator,  # noqa: F811
                                  make_pos: Any) -> None:  # noqa: F811
    now = int(time.time())
    base = f"/api/v1/tenants/{tenant}/tickets"
    ticket = client.post(base, json={"kind": "entry_voucher", "entries": 10,
                                     "price_cents": 8990, "valid_from": now - 60,
                                     "valid_to": now + 86400}).json()
    sale = {"device": "till-1", "payment": "card", "vat": "22", "operator_name": "Žiga",
            "operator_tax_number": 12345678}
    sent = client.post(f"{base}/{ticket['id']}/sell", json=sale)
    assert sent.status_code == 202, sent.text
    [payload] = published.on("/till-1/cmd/print")
    command = json.loads(payload)
    job = parse_job(command["args"])  # the agent's own validation of the job
    assert str(job.totals.total) == "89.90" and job.note == f"Vstopnica {ticket['id']}"
    # sent again before the device answered (it was off): the same job, the same key
    assert client.post(f"{base}/{ticket['id']}/sell", json=sale).status_code == 202
    resent = json.loads(published.on("/till-1/cmd/print")[-1])
    assert resent["args"] == command["args"]

    pos = make_pos(furs.url)
    result = pos.service.submit(command["args"])
    assert result.fiscal_state == "fiscalised"
    assert pos.service.submit(resent["args"]).invoice_id == result.invoice_id  # no second
    [receipt] = pos.events("pos.receipt")
    assert receipt["note"] == f"Vstopnica {ticket['id']}"
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
