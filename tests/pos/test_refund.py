"""Refund receipts against the FURS simulator: the reference to the original invoice
(R_3.14/R_3.15), negative amounts, partial refunds up to what is left, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from agent.pos.errors import JobRejected, UnknownReceipt
from simulators.furs_endpoint import FursSimulator
from tests.pos.conftest import job


def refund(key: str, original: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"idempotency_key": key, "original": original, "lines": lines,
            "operator": {"name": "Ana", "tax_number": 87654321}, "method": "cash"}


def test_partial_refunds_reference_the_original(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    sale = pos.service.submit(job("sale-refund-1"))
    # one of the two chocolates (9.5 %) and the discounted shampoo (22 %)
    first = pos.service.refund(refund("refund-0001", sale.invoice_id,
                                      [{"line": 0, "quantity": "1"}, {"line": 1, "quantity": "1"}]))
    assert first.fiscal_state == "fiscalised" and first.printed
    assert first.total == "-5.99"  # -1.50 - (4.99 - 0.50 discount)
    sent = furs.received.invoices[-1]
    assert sent["ReferenceInvoice"] == [{
        "ReferenceInvoiceIdentifier": {"BusinessPremiseID": "P1", "ElectronicDeviceID": "BLAG1",
                                       "InvoiceNumber": "1"},
        "ReferenceInvoiceIssueDateTime": sale.issued_at[:19]}]
    assert sent["InvoiceAmount"] == -5.99 and sent["PaymentAmount"] == -5.99
    vat = {v["TaxRate"]: (v["TaxableAmount"], v["TaxAmount"])
           for v in sent["TaxesPerSeller"][0]["VAT"]}
    assert vat == {22.0: (-3.68, -0.81), 9.5: (-1.37, -0.13)}
    paper = pos.printer.jobs[-1].payload.decode("cp852", "replace")
    assert "VRAČILO" in paper and "K računu: P1-BLAG1-1" in paper

    # the second chocolate is still refundable, a third one is not
    with pytest.raises(JobRejected) as exc:
        pos.service.refund(refund("refund-0002", sale.invoice_id, [{"line": 0, "quantity": "2"}]))
    assert exc.value.code == "refund_too_large"
    again = pos.service.refund(refund("refund-0001", sale.invoice_id,
                                      [{"line": 0, "quantity": "1"}, {"line": 1, "quantity": "1"}]))
    assert again.duplicate and again.invoice_id == first.invoice_id
    last = pos.service.refund(refund("refund-0003", sale.invoice_id,
                                     [{"line": 0, "quantity": "1"}]))
    assert last.total == "-1.50" and pos.last_number() == 3
    with pytest.raises(JobRejected):
        pos.service.refund(refund("refund-0004", first.invoice_id, [{"line": 0, "quantity": "1"}]))
    with pytest.raises(UnknownReceipt):
        pos.service.refund(refund("refund-0005", "P1-BLAG1-99", [{"line": 0, "quantity": "1"}]))


def test_a_voucher_not_subject_to_vat_is_refunded_as_such(furs: FursSimulator,
                                                          make_pos: Any) -> None:
    """A gift voucher sold as not subject to VAT (docs/pos.md, "Gift vouchers and VAT")
    goes to NontaxableAmount, survives the store's JSON, and its refund is negative there."""
    pos = make_pos(furs.url)
    lines = [{"name": "Darilni bon 50 EUR", "quantity": "1", "unit_price": "50.00",
              "vat": "not_subject"},
             {"name": "Kava", "quantity": "1", "unit_price": "1.80", "vat": "9.5"}]
    sale = pos.service.submit(job("sale-bon-0001", lines=lines,
                                  payments=[{"method": "card", "amount": "51.80"}],
                                  totals={"total": "51.80"}))
    assert sale.total == "51.80"
    sent = furs.received.invoices[-1]
    # 1.80 at 9.5 %: VAT 1.80 * 9.5 / 109.5 = 0.156 -> 0.16, base 1.64
    assert sent["TaxesPerSeller"] == [{"VAT": [{"TaxRate": 9.5, "TaxableAmount": 1.64,
                                                "TaxAmount": 0.16}],
                                       "NontaxableAmount": 50.00}]
    paper = pos.printer.jobs[-1].payload.decode("cp852", "replace")
    assert "50,00 N" in paper and "N ni predmet DDV" in paper
    back = pos.service.refund(refund("refund-bon-1", sale.invoice_id,
                                     [{"line": 0, "quantity": "1"}]))
    assert back.total == "-50.00"
    assert furs.received.invoices[-1]["TaxesPerSeller"] == [{"NontaxableAmount": -50.00}]
