"""A gift voucher for a value (multi-purpose) sold at the till is not subject to VAT
(issue 22 part 6; docs/pos.md, "Gift vouchers and VAT"): what the FURS simulator received,
the printed receipt and the day's closing, against figures computed by hand; the goods a
voucher pays keep their VAT, and a sale the voucher pays in full does not open the drawer."""

from __future__ import annotations

import time
from typing import Any

from agent.pos.money import VatRate
from agent.till.drawer import drawer_pulse
from cloud_bridge.catalogue.delegation import make_delegation
from simulators.furs_endpoint import FursSimulator
from tests.pos.escpos_decode import decode
from tests.till.test_till_tickets import TicketTill, ticket_till  # noqa: F401  (fixture)
from tests.till.test_till_vouchers import _pay, _voucher


def _delegate(till: TicketTill) -> None:
    issuer = till.client.get("/till/api/tickets/issuer").json()
    good = make_delegation(till.keys, "t1", "s1", issuer["issuer_public_key"], 30,
                           int(time.time()))
    assert till.client.put("/till/api/tickets/delegation", content=good).status_code == 200


def _sent(furs: FursSimulator, invoice_id: str) -> dict[str, Any]:
    number = invoice_id.rsplit("-", 1)[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [inv for inv in furs.received.invoices
                 if inv["InvoiceIdentifier"]["InvoiceNumber"] == number]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"FURS never received {invoice_id}")


def _drawer_kicks(till: TicketTill) -> int:
    jobs = till.daemon.printers["receipt"].jobs  # type: ignore[attr-defined]
    return sum(1 for j in jobs if j.payload == drawer_pulse())


def _receipt_text(till: TicketTill, invoice_id: str) -> list[str]:
    jobs = till.daemon.printers["receipt"].jobs  # type: ignore[attr-defined]
    texts = [decode(j.payload).text for j in jobs if j.payload != drawer_pulse()]
    (text,) = [t for t in texts if f"RAČUN št.: {invoice_id}" in t]
    return text.splitlines()


def test_a_gift_voucher_is_sold_without_vat_and_the_goods_it_pays_keep_theirs(
        ticket_till: TicketTill, furs: FursSimulator) -> None:  # noqa: F811
    till = ticket_till
    _delegate(till)
    # day ticket 8.00 and coffee 1.80 at 9.5 %, a 20 EUR gift voucher not subject to VAT
    sale = till.sell("vat-000001", "dnevna", "bon20", "kava")
    assert sale.status_code == 200, sale.text
    invoice = sale.json()["invoice_id"]
    assert sale.json()["total"] == "29.80"
    sent = _sent(furs, invoice)
    assert sent["InvoiceAmount"] == 29.80 and sent["PaymentAmount"] == 29.80
    # 9.80 gross at 9.5 %: VAT 9.80 * 9.5 / 109.5 = 0.8502 -> 0.85, base 8.95
    (seller,) = sent["TaxesPerSeller"]
    assert seller == {"VAT": [{"TaxRate": 9.5, "TaxableAmount": 8.95, "TaxAmount": 0.85}],
                      "NontaxableAmount": 20.00}

    lines = _receipt_text(till, invoice)
    bon_at = next(i for i, ln in enumerate(lines) if ln.startswith("Darilni bon 20 EUR"))
    assert lines[bon_at + 1].endswith("20,00 N")
    assert any(ln.startswith("B 9,5 %") and ln.split()[-3:] == ["8,95", "0,85", "9,80"]
               for ln in lines)
    (own,) = [ln for ln in lines if ln.startswith(f"N {VatRate.NOT_SUBJECT.label}")]
    assert own.endswith(" 20,00") and len(own) == 48
    assert not any(ln.startswith("E ") for ln in lines)

    # a voucher (tenant-signed, as the bridge issues them) pays a coffee in full: the
    # coffee keeps its 9.5 % (1.80 * 9.5 / 109.5 = 0.156 -> 0.16, base 1.64), no cash is
    # taken, so the drawer stays shut although the page chose cash for the rest
    kicks = _drawer_kicks(till)
    code, _tid = _voucher(till, 500)
    paid = _pay(till, "vat-000002", code, "cash", None, "kava")
    assert paid["status"] == 200, paid
    assert paid["voucher_cents"] == 180 and paid["drawer"] is None
    assert _drawer_kicks(till) == kicks
    redeemed = _sent(furs, paid["invoice_id"])
    assert redeemed["TaxesPerSeller"] == [
        {"VAT": [{"TaxRate": 9.5, "TaxableAmount": 1.64, "TaxAmount": 0.16}]}]
    # cash taken does open it
    cash = till.client.post("/till/api/sale", headers={"X-Till-Session": till.token},
                            json={"idempotency_key": "vat-000003",
                                  "payment": {"method": "cash", "given": "2.00"},
                                  "lines": [{"product": "kava", "quantity": "1"}]}).json()
    assert cash["change_cents"] == 20
    assert _drawer_kicks(till) == kicks + 1

    pos = till.daemon.pos
    assert pos is not None and pos.till is not None
    report = pos.till.day_end.close("Ana")
    # 9.5 %: bases 8.95 + 1.64 + 1.64 = 12.23, VAT 0.85 + 0.16 + 0.16 = 1.17
    assert report["rates"] == {"9.5": {"base_cents": 1223, "vat_cents": 117}}
    assert report["nontaxable_cents"] == 2000 and report["exempt_cents"] == 0
    assert report["total_cents"] == 2980 + 180 + 180
    assert report["methods"] == {"card": 2980, "other": 180, "cash": 180}
    jobs = till.daemon.printers["receipt"].jobs  # type: ignore[attr-defined]
    closing = decode(jobs[-1].payload).text.splitlines()
    assert any(ln.startswith(" 9,5 % 12,23") and ln.endswith(" 1,17") for ln in closing)
    (own,) = [ln for ln in closing if ln.startswith(" ni predmet DDV")]
    assert own.endswith(" 20,00")
