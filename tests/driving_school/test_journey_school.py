"""The driving school's whole journey with real peers, in one headless Chromium: the
bridge (its pages, its MQTT link and ingest), Mosquitto, an ``edge-agent run`` process
as the school's office device (``[pos]`` for the till, an office printer), the virtual
ESC/POS printer and the FURS test endpoint.

application (public API) → accepted on the office page → a theory session and its
attendance → the instructor's lesson on the tablet, recorded offline, synced when the
network is back → the record card printed on the virtual printer → a price list entry,
an invoice paid in cash, sent to the till while FURS is away (the receipt prints with
its ZOI and no EOR), the EOR reaching the invoice after the subsequent submission →
the accounting export downloaded with the invoice and its EOR. Money steps through the
pages only. Screenshots ``journey-school-<n>-<step>``."""

from __future__ import annotations

import csv
import io
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import tomli_w
import uvicorn
from playwright.sync_api import Page

from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import create_tenant
from cloud_bridge.web.auth import WebAuth
from simulators.furs_endpoint import FursSimulator, SimPki
from simulators.virtual_printer import VirtualPrinter
from tests.a11y import assert_accessible, screenshot
from tests.agent_process import AgentProcess
from tests.browser import chromium
from tests.cloud_harness import wait_until
from tests.driving_school.test_tablet_offline import draw_signature
from tests.mqtt_broker import Broker, free_port
from tests.pos.conftest import furs, furs_pki, pos_table  # noqa: F401 - fixtures

TENANT = "t1"
DEVICE = "office-1"
DS = "/driving-school"
SCHOOL_NAME = "Šola vožnje Čuk d.o.o."
ADMIN, ADMIN_PW = "vodja@cuk.si", "manager password 1"
TEACHER, TEACHER_PW = "tomaz@cuk.si", "instructor password 1"
APPLICANT = {"first_name": "Neža", "last_name": "Žnidaršič", "birth_date": "2009-01-15",
             "birth_place": "Kranj", "emso": "1501009505111",
             "address": "Prešernova 1, 4000 Kranj", "email": "neza@example.si",
             "phone": "+386 41 222 333", "category": "B", "consent": True}


@dataclass
class Site:
    url: str
    bridge: Bridge
    agent: AgentProcess
    printer: VirtualPrinter
    furs: FursSimulator


def agent_config(tmp: Path, created, broker_port: int, printer_port: int,  # type: ignore[no-untyped-def]
                 pki: SimPki, furs_url: str) -> Path:
    pos = pos_table(pki, furs_url, issuer_name=SCHOOL_NAME,
                    issuer_address=["Cankarjeva 5", "4220 Škofja Loka"])
    del pos["http"]
    printer = f"escpos-net://127.0.0.1:{printer_port}"
    config = {"tenant": TENANT, "device": DEVICE, "site": "s1",
              "data_dir": str(tmp / "data"),
              "keys": {"credential_hmac_key": f"file:{created.hmac_key_path}",
                       "tenant_public_key": f"base64:{created.public_key_b64}"},
              "mqtt": {"host": "127.0.0.1", "port": broker_port},
              "printers": [{"id": "receipt", "url": printer}, {"id": "office", "url": printer}],
              "pos": pos}
    path = tmp / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    return path


@pytest.fixture
def site(tmp_path: Path, furs: FursSimulator, furs_pki: SimPki) -> Iterator[Site]:  # noqa: F811
    keys_dir = tmp_path / "keys"
    created = create_tenant(keys_dir, TENANT)
    created.hmac_key_path.chmod(0o600)
    broker = Broker(tmp_path / "broker").start()
    printer = VirtualPrinter("127.0.0.1", 0, tmp_path / "paper", paper_mm=80)
    printer_port = printer.start()
    bridge = Bridge(BridgeSettings(
        db_url=f"sqlite:///{tmp_path / 'bridge.sqlite3'}", keys_dir=keys_dir,
        mqtt=MqttSettings(port=broker.port, client_id=f"bridge-{secrets.token_hex(3)}"),
        alert_sweep_s=0))
    bridge.start()
    app = bridge.app("api-token-0123456789", secure_cookies=False)  # creates the tables
    WebAuth(bridge.engine).create_user(TENANT, ADMIN, ADMIN_PW, "administrator")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn started")
    agent = AgentProcess(agent_config(tmp_path, created, broker.port, printer_port,
                                      furs_pki, furs.url), tmp_path / "agent.log")
    try:
        yield Site(f"http://127.0.0.1:{port}", bridge, agent, printer, furs)
    finally:
        agent.stop()
        server.should_exit = True
        thread.join(10)
        bridge.stop()
        printer.stop()
        broker.stop()


def submit(page: Page, form: str, **fields: str) -> None:
    for name, value in fields.items():
        field = page.locator(f"{form} [name='{name}']")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator(f"{form} button[type=submit]").click()
    page.wait_for_load_state()


def reload_until(page: Page, selector: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page.reload()
        got = page.locator(selector).inner_text() if page.locator(selector).count() else ""
        if text in got:
            return got
        assert time.monotonic() < deadline, f"{selector}: {got!r}, waited for {text!r}"
        time.sleep(0.3)


def office_setup(page: Page, url: str) -> int:
    """Sign in, the school's data, the application accepted, an instructor, a vehicle,
    the candidate assigned to the instructor; the candidate's id."""
    page.goto(f"{url}{DS}/login")
    submit(page, "form", username=ADMIN, password=ADMIN_PW)
    page.goto(f"{url}{DS}/school")
    submit(page, "#school-form", name=SCHOOL_NAME, address="Cankarjeva 5, Škofja Loka")
    applied = httpx.post(f"{url}{DS}/api/{TENANT}/applications", json=APPLICANT)
    assert applied.status_code == 201, applied.text
    page.goto(f"{url}{DS}/applications")
    assert "Žnidaršič" in page.inner_text("main")
    screenshot(page, "journey-school-1-application")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/candidates/\d+"))
    candidate = int(page.url.rsplit("/", 1)[1].split("?")[0])
    assert "2026/" in page.inner_text("main") or re.search(r"\d{4}/\d{3}",
                                                            page.inner_text("main"))
    page.goto(f"{url}{DS}/instructors")
    submit(page, "#new-instructor", name="Tomaž Žagar", licence_no="UV-1234",
           categories="B", username=TEACHER, password=TEACHER_PW)
    page.goto(f"{url}{DS}/vehicles")
    submit(page, "#new-vehicle", registration="KR ŠV-101", make_model="Škoda Fabia")
    page.goto(f"{url}{DS}/candidates/{candidate}")
    page.select_option("#edit-candidate [name='instructor_id']", label="Tomaž Žagar")
    page.locator("#edit-candidate button[type=submit]").click()
    page.wait_for_load_state()
    return candidate


def theory(page: Page, url: str, candidate: int) -> None:
    page.goto(f"{url}{DS}/theory")
    submit(page, "#new-session", start_hm="17:00", hours="4",
           topic="Prednost v križiščih", lecturer="Mojca Čebulj")
    page.check(f"#c-{candidate}")
    page.locator("#attendance button[type=submit]").click()
    page.wait_for_load_state()
    page.goto(f"{url}{DS}/candidates/{candidate}")
    assert "4 od 24" in page.inner_text("main")
    screenshot(page, "journey-school-2-theory")


def tablet_lesson(browser, url: str) -> None:  # type: ignore[no-untyped-def]
    ctx = browser.new_context(service_workers="allow", viewport={"width": 1024,
                                                                  "height": 1300})
    tab = ctx.new_page()
    tab.goto(url + DS + "/app/")
    tab.wait_for_selector("body[data-ready='1']")
    tab.fill("#username", TEACHER)
    tab.fill("#password", TEACHER_PW)
    tab.click("#login-form button[type=submit]")
    tab.wait_for_selector("#candidates li")
    tab.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    ctx.set_offline(True)
    tab.wait_for_selector("#net.offline")
    tab.select_option("#candidate", index=0)
    tab.select_option("#vehicle", index=0)
    tab.fill("#lesson-count", "2")
    tab.fill("#km-start", "12000")
    tab.click("#start")
    tab.wait_for_selector("#running:not([hidden])")
    tab.fill("#km-end", "12031")
    tab.fill("#remarks", "Krožišča in vzvratno parkiranje")
    draw_signature(tab, 1)
    tab.click("#end")
    tab.wait_for_selector("#lessons tr[data-status='pending']")
    screenshot(tab, "journey-school-3-tablet-offline")
    ctx.set_offline(False)
    tab.wait_for_selector("#pending[data-count='0']", timeout=30_000)
    tab.wait_for_selector("#lessons tr[data-status='synced']")
    ctx.close()


def record_card(page: Page, site: Site, candidate: int) -> None:
    page.goto(f"{site.url}{DS}/candidates/{candidate}")
    assert "Krožišča in vzvratno parkiranje" in page.inner_text("main")  # synced lesson
    submit(page, "#print-card", device=DEVICE, printer="office")
    assert site.printer.wait_for(1, timeout=20), "the record card was not printed"
    card = site.printer.receipts[0].text
    for needle in ("Žnidaršič", "Neža", SCHOOL_NAME, "KR ŠV-101", "Tomaž Žagar"):
        assert needle in card, needle


def money(page: Page, site: Site, candidate: int) -> tuple[str, str]:
    """The price list, an invoice paid in cash, to the till while FURS is away; the
    invoice's number and EOR once FURS is back."""
    url = site.url
    page.goto(f"{url}{DS}/prices")
    submit(page, "#new-price", name="Učna ura vožnje", price="štirideset", vat="22")
    assert "Vnesite znesek v evrih" in page.inner_text("#new-price")  # beside the field
    assert page.input_value("#new-price [name='name']") == "Učna ura vožnje"  # kept
    assert_accessible(page, "price list with an error")
    submit(page, "#new-price", price="42,00")
    page.goto(f"{url}{DS}/documents")
    submit(page, "#new-document", kind="invoice", premise="P1",
           candidate_id=str(candidate), payment="cash", price_1=page.locator(
               "#new-document [name='price_1'] option").nth(1).get_attribute("value") or "",
           quantity_1="2")
    number = page.locator("h1").inner_text().split()[-1]
    assert re.fullmatch(r"\d{4}-P1-R-00001", number), number
    assert_accessible(page, "invoice page")
    assert "84,00" in page.inner_text("#total")
    site.furs.set_mode("down")
    submit(page, "#till", device=DEVICE, operator_tax_number="87654321")
    assert "Poslano blagajni" in page.inner_text("main")
    reload_until(page, "#fiscal", "P1-BLAG1-1")
    assert "naknadno" in page.inner_text("#eor")
    zoi = page.inner_text("#zoi").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", zoi)
    assert site.printer.wait_for(2, timeout=20), "no receipt printed"
    receipt = site.printer.receipts[1].text
    assert "84,00" in receipt.replace("84.00", "84,00") and number in receipt
    assert zoi in receipt.replace(" ", "").replace("\n", "")
    screenshot(page, "journey-school-4-invoice-pending")
    site.furs.set_mode("ok")  # the agent submits it again (SubsequentSubmit)
    eor = reload_until(page, "#eor", "-", timeout=40).strip()
    assert site.furs.received.eors.get(zoi) == eor
    assert any(inv.get("SubsequentSubmit") for inv in site.furs.received.invoices)
    screenshot(page, "journey-school-5-invoice-fiscalised")
    return number, eor


def credit_note(page: Page, site: Site, candidate: int, invoice: str) -> str:
    """One lesson paid back in cash: the credit note refunds it at the same till."""
    page.goto(f"{site.url}{DS}/documents")
    option = page.locator("#new-document [name='price_1'] option").nth(1)
    submit(page, "#new-document", kind="credit_note", premise="P1",
           candidate_id=str(candidate), payment="cash",
           refers_to=page.locator("#new-document [name='refers_to'] option").nth(1)
           .get_attribute("value") or "",
           price_1=option.get_attribute("value") or "", quantity_1="1")
    number = page.locator("h1").inner_text().split()[-1]
    assert number.endswith("-P1-D-00001") and invoice in page.inner_text("main")
    assert page.input_value("#till [name='device']") == DEVICE  # the invoice's till
    submit(page, "#till", operator_tax_number="87654321")
    eor = reload_until(page, "#eor", "-", timeout=30).strip()
    assert "P1-BLAG1-2" in page.inner_text("#fiscal-invoice")
    refund = next(inv for inv in site.furs.received.invoices
                  if inv.get("InvoiceIdentifier", {}).get("InvoiceNumber") == "2")
    assert refund.get("ReferenceInvoice"), refund  # FURS sees the reference to receipt 1
    return eor


def export(page: Page, url: str, number: str, eor: str, credit_eor: str) -> None:
    page.goto(f"{url}{DS}/documents")
    assert_accessible(page, "documents page")
    with page.expect_download() as download:
        page.locator("#export a").first.click()
    data = Path(download.value.path()).read_bytes().decode("utf-8").lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(data), delimiter=";"))
    assert [(r["stevilka"], r["skupaj"], r["racun_blagajne"], r["eor"]) for r in rows] == [
        (number, "84,00", "P1-BLAG1-1", eor),
        (number.replace("-R-", "-D-"), "-42,00", "P1-BLAG1-2", credit_eor)]


def test_journey_from_application_to_the_export(site: Site) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        candidate = office_setup(page, site.url)
        theory(page, site.url, candidate)
        tablet_lesson(browser, site.url)
        record_card(page, site, candidate)
        number, eor = money(page, site, candidate)
        credit_eor = credit_note(page, site, candidate, number)
        export(page, site.url, number, eor, credit_eor)
