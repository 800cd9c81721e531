"""The till inside the running agent: ``[pos.till]`` in the device config mounts /till on
the agent's local HTTP server with the customer display from ``[[displays]]``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import tomli_w

from agent.config import load_config
from agent.daemon import AgentDaemon
from contracts.pin_hash import hash_pin
from simulators.furs_endpoint import FursSimulator, SimPki
from tests.mqtt_broker import free_port
from tests.pos.conftest import pos_table
from tests.till.conftest import CATALOGUE


def test_the_agent_serves_the_till(tmp_path: Path, write_config: Callable[..., Path],
                                   furs: FursSimulator, furs_pki: SimPki) -> None:
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps(CATALOGUE, ensure_ascii=False), encoding="utf-8")
    pos = pos_table(furs_pki, furs.url)
    del pos["http"]
    pos["till"] = {"catalogue_file": str(catalogue), "customer_display": "lcd",
                   "cashiers": [{"id": "11", "name": "Ana", "tax_number": 87654321,
                                 "pin_hash": hash_pin("2468")}]}
    port = free_port()
    extra = (f'[local_http]\nbind = "127.0.0.1"\nport = {port}\n\n' + tomli_w.dumps({"pos": pos})
             + '\n[[printers]]\nid = "receipt"\nurl = "sim:"\n'
             + '\n[[displays]]\nid = "lcd"\nurl = "sim:"\n')
    daemon = AgentDaemon(load_config(write_config(extra)))
    daemon.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = client.get("/till")
            assert page.status_code == 200 and '"lang": "sl"' in page.text
            assert client.get("/till/api/catalogue").status_code == 401  # sign in first
            token = client.post("/till/api/signin", json={"cashier": "11", "pin": "2468"}
                                ).json()["token"]
            sale = client.post("/till/api/sale", headers={"X-Till-Session": token}, json={
                "idempotency_key": "agent-till-0001", "payment": {"method": "card"},
                "lines": [{"product": "revija", "quantity": "1"}]})
            assert sale.status_code == 200, sale.text
            assert sale.json()["invoice_id"] == "P1-BLAG1-1"
            assert sale.json()["fiscal_state"] == "fiscalised"
        assert len(daemon.printers["receipt"].jobs) == 1  # type: ignore[attr-defined]
        shown = daemon.displays["lcd"].shown  # type: ignore[attr-defined]
        assert shown[-1].text == "Skupaj 3,50\xa0€ | Hvala"
    finally:
        daemon.stop()
