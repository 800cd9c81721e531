"""Journey at the till (issue 22 acceptance): a sale while the FURS endpoint and the
broker are both stopped. ``edge-agent run`` as a process with ``[pos.till]``, a real
Mosquitto, the FURS simulator over HTTPS and the virtual ESC/POS printer on TCP; the page
in Chromium at 1024x600. Both stopped: the sale completes and prints at once without an
EOR; both started again: the receipt gets its EOR (SubsequentSubmit) and its events
reach the broker."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from playwright.sync_api import Page, expect

from agent.control_client import ControlClient
from agent.pos.layout import EOR_PENDING
from contracts.pin_hash import hash_pin
from simulators.furs_endpoint import FursSimulator, SimPki
from simulators.virtual_printer import VirtualPrinter
from tests.a11y import assert_accessible, screenshot
from tests.agent_process import AgentProcess
from tests.browser import chromium
from tests.cloud_harness import CloudHarness
from tests.mqtt_broker import Broker, free_port
from tests.pos.conftest import pos_table
from tests.till.conftest import ANA_TAX, CATALOGUE

JOURNEY = "journey-till-offline"


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _config(tmp: Path, pki: SimPki, furs_url: str, broker_port: int, http_port: int,
            printer_port: int) -> Path:
    catalogue = tmp / "catalogue.json"
    catalogue.write_text(json.dumps(CATALOGUE, ensure_ascii=False), encoding="utf-8")
    pos = pos_table(pki, furs_url)
    del pos["http"]
    pos["till"] = {"catalogue_file": str(catalogue), "cashiers": [
        {"id": "11", "name": "Ana", "tax_number": ANA_TAX, "pin_hash": hash_pin("2468")}]}
    config = {"tenant": "t1", "device": "till1", "site": "s1", "data_dir": str(tmp / "data"),
              "keys": {"credential_hmac_key": "base64:" + base64.b64encode(b"k" * 32).decode()},
              "mqtt": {"host": "127.0.0.1", "port": broker_port},
              "local_http": {"bind": "127.0.0.1", "port": http_port},
              "printers": [{"id": "receipt", "url": f"escpos-net://127.0.0.1:{printer_port}"}],
              "pos": pos}
    path = tmp / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def _receipt(agent: AgentProcess, invoice_id: str) -> dict[str, Any]:
    reply = ControlClient(agent.socket, timeout=10).request("receipts", limit=10)
    return next(r for r in reply["receipts"] if r["invoice_id"] == invoice_id)


def _events(cloud: CloudHarness, kind: str, invoice_id: str) -> list[dict[str, Any]]:
    return [e for e in list(cloud.events.values())
            if e["type"] == kind and e["data"].get("invoice_id") == invoice_id]


def _sell_one_coffee(page: Page) -> None:
    page.get_by_label("Številka blagajnika").fill("11")
    page.get_by_label("PIN").fill("2468")
    page.get_by_role("button", name="Prijava").click()
    expect(page.get_by_test_id("cashier")).to_have_text("Blagajnik: Ana")
    page.locator("#grid [data-product='kava']").click()
    page.get_by_role("button", name="Plačilo s kartico").click()


def test_a_sale_with_furs_and_the_broker_down_is_submitted_later(
        tmp_path: Path, furs: FursSimulator, furs_pki: SimPki) -> None:
    broker = Broker(tmp_path / "broker").start()
    printer = VirtualPrinter("127.0.0.1", 0, tmp_path / "paper", paper_mm=80)
    printer_port = printer.start()
    http_port = free_port()
    furs_port = furs.port
    agent = AgentProcess(_config(tmp_path, furs_pki, furs.url, broker.port, http_port,
                                 printer_port), tmp_path / "agent.log")
    cloud = CloudHarness(broker.port)
    revived: FursSimulator | None = None
    try:
        _wait(lambda: cloud.retained_state.get("till1"), 20, "the agent online")
        # both peers stop: the FURS endpoint and the broker
        furs.stop()
        broker.stop()
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1024, "height": 600})
            page.goto(f"http://127.0.0.1:{http_port}/till")
            page.wait_for_selector("body[data-ready='1']")
            _sell_one_coffee(page)
            message = page.get_by_test_id("message")
            expect(message).to_contain_text("Račun P1-BLAG1-1 natisnjen", timeout=15_000)
            expect(message).to_contain_text("Potrditev FURS sledi kasneje")
            assert_accessible(page, f"{JOURNEY} sale-offline")
            screenshot(page, f"{JOURNEY}-sale-offline")
        assert printer.wait_for(1, timeout=10)
        paper = printer.receipts[0].text
        offline = _receipt(agent, "P1-BLAG1-1")
        assert offline["eor"] is None and offline["fiscal_state"] != "fiscalised"
        assert offline["zoi"] in paper and EOR_PENDING in paper and "Kava z mlekom" in paper
        assert str(ANA_TAX) not in paper
        assert not _events(cloud, "pos.receipt", "P1-BLAG1-1")

        # both back (same ports): the EOR arrives by subsequent submission, the events
        # reach the broker
        cloud.close()
        broker.start()
        cloud = CloudHarness(broker.port)  # the stand-in bridge subscribes again
        revived = FursSimulator(furs_pki.directory, port=furs_port).start()
        done = _wait(lambda: (r := _receipt(agent, "P1-BLAG1-1"))["eor"] and r, 40,
                     "the EOR after FURS is back")
        assert done["fiscal_state"] == "fiscalised"
        (sent,) = revived.received.invoices
        assert sent["SubsequentSubmit"] is True and sent["ProtectedID"] == offline["zoi"]
        assert sent["OperatorTaxNumber"] == ANA_TAX
        (receipt,) = _wait(lambda: _events(cloud, "pos.receipt", "P1-BLAG1-1"), 40,
                           "pos.receipt at the broker")
        assert receipt["data"]["zoi"] == offline["zoi"]
        (fiscalised,) = _wait(lambda: _events(cloud, "pos.fiscalised", "P1-BLAG1-1"), 20,
                              "pos.fiscalised at the broker")
        assert fiscalised["data"]["eor"] == done["eor"]
        assert fiscalised["data"]["subsequent"] is True
        assert len(printer.receipts) == 1  # printed once, not again when FURS answered
    finally:
        cloud.close()
        agent.stop()
        if revived is not None:
            revived.stop()
        broker.stop()
        printer.stop()
