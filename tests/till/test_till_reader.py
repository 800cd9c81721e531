"""The till's own reader in the running agent (issue 22 parts 1 and 2): a cashier's card
read at a ``till = true`` reader (the agent's reader path, as ``edge-sim tap`` drives it)
signs that cashier in; a barcode scanner on a ``serial:`` reader (a socat pty) adds the
product to the open sale. Card UIDs only as keyed hashes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from playwright.sync_api import expect

from agent.config import load_config
from agent.control_client import ControlClient
from agent.control_socket import ControlServer
from agent.daemon import AgentDaemon
from agent.till.cashiers import Cashiers
from agent.till.catalogue import Catalogue
from agent.till.reads import TillReads
from contracts.credential_hash import credential_hash
from contracts.pin_hash import hash_pin
from contracts.pos_config import TillCashierConfig
from drivers.protocols import CardRead
from simulators.furs_endpoint import FursSimulator, SimPki
from tests.a11y import assert_accessible
from tests.agent_process import edge_sim
from tests.browser import chromium
from tests.drivers.socat_pty import SocatPty
from tests.mqtt_broker import free_port
from tests.pos.conftest import pos_table
from tests.till.conftest import CATALOGUE

BORIS_UID = "04A1B2C3D4E5F6"
STRANGER_UID = "04FFEEDDCCBBAA"


def _wait(cond: Callable[[], Any], timeout: float = 20.0) -> Any:  # busy CI: generous
    deadline = time.monotonic() + timeout
    while True:
        found = cond()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _on_the_page(port: int, control: ControlClient, pty: SocatPty) -> None:
    """The same on the till's page: the card signs Boris in, the scan fills the sale."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 600})
        page.goto(f"http://127.0.0.1:{port}/till")
        page.wait_for_selector("body[data-ready='1']")
        control.request("present", reader="till-card", kind="uid", value=STRANGER_UID)
        expect(page.get_by_test_id("signin-msg")).to_have_text(
            "Ta kartica ne pripada nobenemu blagajniku")
        control.request("present", reader="till-card", kind="uid", value=BORIS_UID)
        expect(page.get_by_test_id("cashier")).to_have_text("Blagajnik: Boris")
        time.sleep(0.6)  # the page has polled since the sign-in
        pty.write(b"3830001234567\r\n")
        expect(page.get_by_test_id("cart")).to_contain_text("Mineralna voda")
        expect(page.get_by_test_id("total")).to_have_text("1,20 €")
        pty.write(b"99999999\r\n")
        expect(page.get_by_test_id("message")).to_have_text(
            "Ni izdelka s skenirano črtno kodo")
        assert_accessible(page, "till card sign-in and scanner")
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_contain_text("Račun P1-BLAG1-2 natisnjen")


def test_card_sign_in_and_serial_barcode_scanner(
        tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes,
        furs: FursSimulator, furs_pki: SimPki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pty = SocatPty(tmp_path)
    pty.start()
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps(CATALOGUE, ensure_ascii=False), encoding="utf-8")
    pos = pos_table(furs_pki, furs.url)
    del pos["http"]
    pos["till"] = {"catalogue_file": str(catalogue), "cashiers": [
        {"id": "11", "name": "Ana", "tax_number": 87654321, "pin_hash": hash_pin("2468")},
        {"id": "12", "name": "Boris", "tax_number": 23456789, "pin_hash": hash_pin("1357"),
         "card_hash": credential_hash(hmac_key, "uid", BORIS_UID), "may_discount": True}]}
    port = free_port()
    extra = (f'[local_http]\nbind = "127.0.0.1"\nport = {port}\n\n' + tomli_w.dumps({"pos": pos})
             + '\n[[printers]]\nid = "receipt"\nurl = "sim:"\n'
             + '\n[[readers]]\nid = "till-card"\nurl = "sim:"\ntill = true\n'
             + f'\n[[readers]]\nid = "scanner"\nurl = "serial://{pty.device}?format=qr"\n'
             + "till = true\n")
    config = write_config(extra, gates="")
    daemon = AgentDaemon(load_config(config))
    daemon.start()
    server = ControlServer(daemon.config.socket_path, daemon)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # a card of nobody: refused, said on the screen, no session
            control = ControlClient(daemon.config.socket_path)
            reply = control.request("present", reader="till-card", kind="uid", value=STRANGER_UID)
            assert reply["status"] == "unknown_card"
            # Boris's card at the till's reader, tapped with `edge-sim tap`
            tapped = edge_sim("tap", "-r", "till-card", BORIS_UID, config=config)
            assert tapped.returncode == 0, tapped.stderr
            assert "till: signed_in (cashier Boris signed in)" in tapped.stdout
            reads = client.get("/till/api/reads", params={"after": 0}).json()["reads"]
            assert [r["kind"] for r in reads] == ["unknown_card", "signin"]
            session = reads[1]["session"]
            assert session["name"] == "Boris" and session["may_discount"] is True
            assert "tax_number" not in json.dumps(reads)
            # handed out once: a second page does not get the same session
            again = client.get("/till/api/reads", params={"after": 0}).json()["reads"]
            assert [r["kind"] for r in again] == ["unknown_card"]
            headers = {"X-Till-Session": session["token"]}
            assert client.get("/till/api/catalogue", headers=headers).status_code == 200

            # the barcode scanner on the serial port: the product joins the open sale
            last = client.get("/till/api/reads", headers=headers).json()["last"]
            pty.write(b"3830001234567\r\n")
            products = _wait(lambda: [r for r in client.get(
                "/till/api/reads", params={"after": last}, headers=headers).json()["reads"]
                if r["kind"] == "product"])
            assert products[0]["product"] == "voda"
            # without a session the page gets no products
            assert all(r["kind"] != "product" for r in client.get(
                "/till/api/reads", params={"after": last}).json()["reads"])
            pty.write(b"0000000000\r\n")
            assert _wait(lambda: [r for r in client.get(
                "/till/api/reads", params={"after": last}, headers=headers).json()["reads"]
                if r["kind"] == "unknown_barcode"])
            sale = client.post("/till/api/sale", headers=headers, json={
                "idempotency_key": "reader-0001", "payment": {"method": "card"},
                "lines": [{"product": products[0]["product"], "quantity": "1"}]})
            assert sale.status_code == 200 and sale.json()["total"] == "1.20"
        sent = furs.received.invoices[-1]
        assert sent["OperatorTaxNumber"] == 23456789  # Boris, signed in by his card
        _on_the_page(port, control, pty)
        stored = daemon.store.conn.execute("SELECT data FROM outbox").fetchall()
        everything = json.dumps([row[0] for row in stored]) + caplog.text
        for uid in (BORIS_UID, STRANGER_UID):
            assert uid not in everything and uid.lower() not in everything
    finally:
        server.close()
        daemon.stop()
        pty.kill()


def test_a_card_sign_in_goes_only_to_the_devices_own_screen(hmac_key: bytes) -> None:
    """A page elsewhere on the network polling the reads never gets a cashier's session."""
    cashier = TillCashierConfig(id="12", name="Boris", tax_number=23456789,
                                pin_hash=hash_pin("1357"),
                                card_hash=credential_hash(hmac_key, "uid", BORIS_UID))
    reads = TillReads(Cashiers([cashier], 60), hmac_key, lambda: Catalogue(1, {}, {}))
    view = reads.offer(CardRead("till-card", "uid", BORIS_UID.lower(), time.monotonic()))
    assert view.status == "signed_in"
    assert reads.since(0, signed_in=False, on_device=False)[1] == []
    (signin,) = reads.since(0, signed_in=True, on_device=True)[1]
    assert signin["session"]["name"] == "Boris"
    assert reads.since(0, signed_in=True, on_device=True)[1] == []  # handed out once
