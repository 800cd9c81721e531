"""Journeys at the till (1024x600), against the receipt service, the FURS simulator and
the virtual ESC/POS printer: each printed receipt is checked against the stored one."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.a11y import assert_accessible, assert_in_viewport, screenshot
from tests.browser import chromium
from tests.till.conftest import ANA_TAX, BORIS_TAX, TillDevice

JOURNEY = "journey-till"


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:  # busy CI: generous
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sign_in(page: Page, cashier: str, pin: str) -> None:
    page.get_by_label("Številka blagajnika").fill(cashier)
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Prijava").click()


def _step(page: Page, n: int, name: str) -> None:
    assert_in_viewport(page)
    assert_accessible(page, f"{JOURNEY} {n} {name}")
    screenshot(page, f"{JOURNEY}-{n}-{name}")


def _stored_receipt(device: TillDevice, invoice_id: str) -> dict[str, object]:
    row = device.pos.store.conn.execute(
        "SELECT data, operator_tax_number, print_state FROM pos_receipts WHERE invoice_id = ?",
        (invoice_id,)).fetchone()
    import json
    return {"data": json.loads(row[0]), "operator_tax_number": row[1], "print_state": row[2]}


def test_cash_sale_scan_refused_discount_and_offline_sale(till_device: TillDevice) -> None:
    device = till_device
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 600})
        page.goto(device.url())
        page.wait_for_selector("body[data-ready='1']")
        _step(page, 1, "sign-in")

        # Ana: a wrong PIN, then the right one
        _sign_in(page, "11", "0000")
        expect(page.get_by_test_id("signin-msg")).to_have_text(
            "Napačna številka blagajnika ali PIN")
        _sign_in(page, "11", "2468")
        expect(page.get_by_test_id("cashier")).to_have_text("Blagajnik: Ana")
        page.get_by_label("Znesek gotovine").fill("50,00")
        page.get_by_role("button", name="Začetni polog").click()
        expect(page.get_by_test_id("message")).to_have_text("Gotovina zabeležena: 50,00 €")
        assert device.printer.drawer_pulses == 1

        # two coffees by touch, a water by the keyboard-wedge scanner (digits + Enter)
        page.locator("#grid [data-product='kava']").click()
        page.locator("#grid [data-product='kava']").click()
        page.get_by_label("Iskanje ali skeniranje").fill("")
        page.get_by_label("Iskanje ali skeniranje").type("3830001234567\n")
        expect(page.get_by_test_id("cart")).to_contain_text("Mineralna voda")
        expect(page.get_by_test_id("total")).to_have_text("4,80 €")
        _wait(lambda: bool(device.display.shown)
              and device.display.shown[-1].text == "Mineralna voda | Skupaj 4,80\xa0€")
        _step(page, 2, "rung-up")

        # a receipt discount without the permission is refused; nothing is numbered
        page.get_by_label("Popust %").fill("10")
        page.get_by_role("button", name="Plačilo z gotovino").click()
        expect(page.get_by_test_id("message")).to_have_text("Nimate dovoljenja za popust")
        assert device.pos.last_number() == 0
        page.get_by_label("Popust %").fill("")

        # cash: 20,00 given, 15,20 back
        page.get_by_label("Prejeta gotovina").fill("20,00")
        page.get_by_role("button", name="Plačilo z gotovino").click()
        expect(page.get_by_test_id("message")).to_contain_text("Račun P1-BLAG1-1 natisnjen")
        expect(page.get_by_test_id("message")).to_contain_text("Vračilo: 15,20 €")
        assert device.display.shown[-1].text == \
            "Skupaj 4,80\xa0€ | Vračilo 15,20\xa0€ | Hvala"
        _step(page, 3, "cash-sale")
        assert device.printer.wait_for(1)
        paper = device.printer.receipts[0].text
        stored = _stored_receipt(device, "P1-BLAG1-1")
        assert stored["operator_tax_number"] == ANA_TAX and stored["print_state"] == "printed"
        data = stored["data"]
        assert isinstance(data, dict)
        assert data["zoi"] in paper and "Kava z mlekom" in paper and "Mineralna voda" in paper
        assert "4,80" in paper and "15,20" in paper and "Ana" in paper
        assert str(ANA_TAX) not in paper  # the operator's tax number never goes on paper
        assert device.printer.drawer_pulses == 2
        sent = device.furs.received.invoices[0]
        assert sent["OperatorTaxNumber"] == ANA_TAX and sent["InvoiceAmount"] == 4.8

        # FURS down: the sale still prints now, FURS gets it later (SubsequentSubmit)
        device.furs.set_mode("down")
        page.locator("#grid [data-product='brisaca']").click()
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_contain_text("Račun P1-BLAG1-2 natisnjen")
        expect(page.get_by_test_id("message")).to_contain_text("Potrditev FURS sledi kasneje")
        assert device.printer.wait_for(2)
        assert "naknadno" in device.printer.receipts[1].text
        # no broker either: the device has no link, its events wait in the outbox
        assert "P1-BLAG1-2" in [e["invoice_id"] for e in device.pos.events("pos.receipt")]
        device.furs.set_mode("ok")
        _wait(lambda: device.pos.service.status("P1-BLAG1-2").fiscal_state == "fiscalised")
        late = device.furs.received.invoices[-1]
        assert late["InvoiceIdentifier"]["InvoiceNumber"] == "2" and late["SubsequentSubmit"]

        # Boris may give discounts: 10 % on one line
        page.get_by_role("button", name="Odjava").click()
        _sign_in(page, "12", "1357")
        page.locator("#grid [data-product='revija']").click()
        page.locator("#grid [data-product='kava']").click()
        page.get_by_label("Popust %").fill("10")  # on the magazine's line only
        page.get_by_role("button", name="Popust na vrstico: Revija Fitnes").click()
        expect(page.get_by_test_id("total")).to_have_text("4,95 €")
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_contain_text("Račun P1-BLAG1-3 natisnjen")
        assert device.printer.wait_for(3)
        assert "3,15" in device.printer.receipts[2].text  # 3,50 - 10 %
        assert device.furs.received.invoices[-1]["OperatorTaxNumber"] == BORIS_TAX
        assert device.printer.drawer_pulses == 2  # card: the drawer stays shut

        # Boris refunds one of Ana's two coffees from the first receipt
        page.get_by_role("button", name="Vračilo").click()
        page.get_by_label("Številka računa").fill("P1-BLAG1-1")
        page.get_by_role("button", name="Poišči").click()
        page.get_by_label("Kava z mlekom (preostane: 2)").fill("1")
        _step(page, 4, "refund")
        page.get_by_role("button", name="Potrdi vračilo").click()
        expect(page.get_by_test_id("refund-msg")).to_have_text(
            "Vračilo P1-BLAG1-4 natisnjeno, vrnite 1,80 €")
        assert device.printer.wait_for(4)
        refund_paper = device.printer.receipts[3].text
        assert "VRAČILO" in refund_paper and "K računu: P1-BLAG1-1" in refund_paper
        assert "-1,80" in refund_paper and str(BORIS_TAX) not in refund_paper
        assert device.printer.drawer_pulses == 3  # cash paid back
        ref = device.furs.received.invoices[-1]
        assert ref["InvoiceAmount"] == -1.8
        assert ref["ReferenceInvoice"][0]["ReferenceInvoiceIdentifier"]["InvoiceNumber"] == "1"
        stored = _stored_receipt(device, "P1-BLAG1-4")
        assert isinstance(stored["data"], dict) and stored["data"]["refund_lines"] == {"0": "1"}

        # the day's closing: all four receipts once, per cashier, method and VAT rate
        page.get_by_role("button", name="Nazaj na prodajo").click()
        page.get_by_role("button", name="Zaključek dneva").click()
        expect(page.get_by_test_id("message")).to_have_text(
            "Zaključek 1: računov 4, skupaj 20,85 €, gotovina v predalu 53,00 €")
        _step(page, 5, "closed")
        assert device.printer.wait_for(5)
        z = device.printer.receipts[4].text
        for needle in ("ZAKLJUČEK DNEVA št. 1", "Računi: 1 - 4 (4)", " Ana (2)", " Boris (2)",
                       "Gotovina v predalu", "53,00", "20,85", "Vračila (1)"):
            assert needle in z, needle
        assert str(ANA_TAX) not in z and str(BORIS_TAX) not in z
        closings = device.pos.events("till.closing")
        assert len(closings) == 1 and closings[0]["methods"] == {"cash": 300, "card": 1785}
        assert closings[0]["rates"]["9.5"] == {"base_cents": 438, "vat_cents": 42}
        # closing again counts nothing twice
        page.get_by_role("button", name="Zaključek dneva").click()
        expect(page.get_by_test_id("message")).to_have_text(
            "Zaključek 2: računov 0, skupaj 0,00 €, gotovina v predalu 0,00 €")

        # Ana may not refund

        page.get_by_role("button", name="Odjava").click()
        _sign_in(page, "11", "2468")
        page.get_by_role("button", name="Vračilo").click()
        page.get_by_label("Številka računa").fill("P1-BLAG1-1")
        page.get_by_role("button", name="Poišči").click()
        expect(page.get_by_test_id("refund-msg")).to_have_text("Nimate dovoljenja za vračila")
