"""A bridge-issued ticket sold on a fiscal receipt: the bridge's ``print`` command is a
job the agent's POS accepts; run through a real POS service (FURS test endpoint, virtual
printer) it becomes a fiscalised receipt naming the ticket, and the device's answer shows
the receipt on the ticket. A second sale of the same ticket is refused."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from agent.pos.job import parse_job
from cloud_bridge.db_schema import write_tx
from cloud_bridge.device_reports import store_command_result
from cloud_bridge.wire import CommandResult
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
    again = client.post(f"{base}/{ticket['id']}/sell", json=sale)
    assert again.status_code == 409

    pos = make_pos(furs.url)
    result = pos.service.submit(command["args"])
    assert result.fiscal_state == "fiscalised"
    [receipt] = pos.events("pos.receipt")
    assert receipt["note"] == f"Vstopnica {ticket['id']}"
    with write_tx(engine) as conn:
        assert store_command_result(conn, tenant, "till-1", CommandResult(
            v=1, request_id=command["request_id"], ok=True,
            result=dataclasses.asdict(result)))
    shown = client.get(f"{base}/{ticket['id']}").json()
    assert shown["receipt"] == result.invoice_id == "P1-BLAG1-1"
