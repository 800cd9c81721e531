"""Tickets and vouchers sold at the till (issue 22 part 6), in the running agent: the
till's issuer key, the bridge's delegation for it (``cloud-bridge till delegate``'s
function), a sale refused without one, then a sale whose printed QR codes verify with the
tenant public key for the site (and not for another site), and ``ticket.issued`` events
in the receipt's transaction."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pyzbar.pyzbar as zbar
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from playwright.sync_api import expect

from agent.config import load_config
from agent.daemon import AgentDaemon
from cloud_bridge.catalogue.delegation import make_delegation
from cloud_bridge.catalogue.envelope import catalogue_envelope
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant
from contracts.pin_hash import hash_pin
from contracts.reasons import Reason
from contracts.ticket_token import TicketKind, TicketRejected, public_bytes, verify_ticket
from contracts.till_catalogue import CatalogueProduct, CatalogueTicket
from simulators.furs_endpoint import FursSimulator, SimPki
from tests.browser import chromium
from tests.mqtt_broker import free_port
from tests.pos.conftest import pos_table
from tests.pos.escpos_decode import decode

PRODUCTS = [
    CatalogueProduct(id="kava", name="Kava", price="1.80", vat="9.5"),
    # ZDDV-1 Priloga I: the right to use sports facilities at the reduced rate
    CatalogueProduct(id="dnevna", name="Dnevna vstopnica", price="8.00", vat="9.5",
                     category="Vstopnice",
                     ticket=CatalogueTicket(kind="day", entries=1, valid_days=1)),
    CatalogueProduct(id="bon20", name="Darilni bon 20 EUR", price="20.00", vat="exempt",
                     category="Boni",
                     ticket=CatalogueTicket(kind="value", valid_days=365, value="20.00")),
]


@dataclass
class TicketTill:
    daemon: AgentDaemon
    client: httpx.Client
    keys: TenantKeyStore
    token: str
    data: Path

    def sell(self, key: str, *products: str) -> httpx.Response:
        return self.client.post("/till/api/sale", headers={"X-Till-Session": self.token},
                                json={"idempotency_key": key, "payment": {"method": "card"},
                                      "lines": [{"product": p, "quantity": "1"}
                                                for p in products]})

    def events(self, kind: str) -> list[dict[str, object]]:
        return [e.data for e in self.daemon.outbox.pending(limit=10_000) if e.type == kind]


@pytest.fixture
def ticket_till(tmp_path: Path, write_config: Callable[..., Path], furs: FursSimulator,
                furs_pki: SimPki) -> Iterator[TicketTill]:
    created = create_tenant(tmp_path / "keys", "t1")
    keys = TenantKeyStore(tmp_path / "keys")
    catalogue = tmp_path / "catalogue.signed"
    catalogue.write_bytes(catalogue_envelope(keys.get("t1"), 3, PRODUCTS))
    pos = pos_table(furs_pki, furs.url)
    del pos["http"]
    pos["till"] = {"catalogue_file": str(catalogue), "cashiers": [
        {"id": "11", "name": "Ana", "tax_number": 87654321, "pin_hash": hash_pin("2468")}]}
    port = free_port()
    extra = (f'[local_http]\nbind = "127.0.0.1"\nport = {port}\n\n' + tomli_w.dumps({"pos": pos})
             + '\n[[printers]]\nid = "receipt"\nurl = "sim:"\n')
    public = public_bytes(keys.get("t1").public_key)
    assert created.public_key_b64
    daemon = AgentDaemon(load_config(write_config(extra, public_key=public)))
    daemon.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            token = client.post("/till/api/signin", json={"cashier": "11", "pin": "2468"}
                                ).json()["token"]
            yield TicketTill(daemon, client, keys, token, tmp_path / "data")
    finally:
        daemon.stop()


def _refused_on_the_page(base: str) -> None:
    """The cashier is told in Slovenian why the ticket cannot be sold."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 600})
        page.goto(f"{base}/till")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_label("Številka blagajnika").fill("11")
        page.get_by_label("PIN").fill("2468")
        page.get_by_role("button", name="Prijava").click()
        page.locator("#grid [data-product='dnevna']").click()
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_have_text(
            "Na tej blagajni še ni mogoče prodajati vstopnic: strežnik je še ni pooblastil "
            "za njihovo izdajo")


def _printed_codes(daemon: AgentDaemon) -> list[str]:
    job = daemon.printers["receipt"].jobs[-1]  # type: ignore[attr-defined]
    codes = [zbar.decode(img)[0].data.decode() for img in decode(job.payload).images]
    return [c for c in codes if c.startswith("ET1")]


def test_a_ticket_sold_at_the_till_is_valid_at_the_gates_of_its_site(
        ticket_till: TicketTill) -> None:
    till = ticket_till
    # no delegation yet: the sale is refused before anything is numbered, saying why
    refused = till.sell("tix-000001", "dnevna")
    assert refused.status_code == 409
    assert refused.json()["problem"] == "tickets_unavailable"
    assert refused.json()["reason"] == "no_delegation"
    assert till.sell("tix-000002", "kava").json()["invoice_id"] == "P1-BLAG1-1"
    _refused_on_the_page(str(till.client.base_url))

    issuer = till.client.get("/till/api/tickets/issuer").json()
    assert issuer["site"] == "s1" and issuer["problem"] == "no_delegation"
    key_file = till.data / "till_issuer.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    now = int(time.time())
    # a delegation for another site, or for another till's key, is not taken
    other_site = make_delegation(till.keys, "t1", "s2", issuer["issuer_public_key"], 30, now)
    reply = till.client.put("/till/api/tickets/delegation", content=other_site)
    assert reply.status_code == 422 and reply.json()["problem"] == "delegation_other_site"
    other_key = make_delegation(till.keys, "t1", "s1", "11" * 32, 30, now)
    reply = till.client.put("/till/api/tickets/delegation", content=other_key)
    assert reply.status_code == 422 and reply.json()["problem"] == "delegation_other_key"
    good = make_delegation(till.keys, "t1", "s1", issuer["issuer_public_key"], 30, now)
    reply = till.client.put("/till/api/tickets/delegation", content=good)
    assert reply.status_code == 200, reply.text
    assert till.client.get("/till/api/tickets/issuer").json()["problem"] is None
    # the device state reports it (what the fleet sees): key, end of the delegation
    reported = till.daemon.status()["till_catalogue"]["tickets"]
    assert reported["issuer_public_key"] == issuer["issuer_public_key"]
    assert reported["delegation_valid_to"] == now + 30 * 86_400

    sale = till.sell("tix-000003", "dnevna", "bon20", "kava")
    assert sale.status_code == 200, sale.text
    invoice = sale.json()["invoice_id"]
    assert invoice == "P1-BLAG1-2" and sale.json()["total"] == "29.80"
    codes = _printed_codes(till.daemon)
    assert len(codes) == 2
    tenant_key: Ed25519PublicKey = till.keys.get("t1").public_key
    at = int(time.time())
    day, voucher = (verify_ticket(c, tenant_key, at, "s1") for c in codes)
    assert day.kind is TicketKind.DAY_TICKET and day.entries == 1
    assert day.valid_to - at <= 86_400 + 3600
    assert voucher.kind is TicketKind.VALUE_VOUCHER and voucher.value_cents == 2000
    assert voucher.valid_to - at > 364 * 86_400
    with pytest.raises(TicketRejected) as other:
        verify_ticket(codes[0], tenant_key, at, "s2")
    assert other.value.reason is Reason.WRONG_ZONE

    issued = till.events("ticket.issued")
    assert [e["ticket_id"] for e in issued] == [day.ticket_id, voucher.ticket_id]
    assert {e["receipt"] for e in issued} == {invoice}
    assert [e["price_cents"] for e in issued] == [800, 2000]
    assert {e["issuer"] for e in issued} == {day.issuer}
    everything = json.dumps([e.data for e in till.daemon.outbox.pending(limit=10_000)])
    assert codes[0] not in everything and codes[1] not in everything
    (receipt,) = [e for e in till.events("pos.receipt") if e["invoice_id"] == invoice]
    assert len(receipt["lines"]) == 3  # type: ignore[arg-type]

    # a reprint carries the same codes
    till.daemon.pos.service.reprint(invoice)  # type: ignore[union-attr]
    assert _printed_codes(till.daemon) == codes
