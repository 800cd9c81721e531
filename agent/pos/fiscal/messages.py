"""FURS JSON messages (spec v3.2 §3, §8, §9 and the JSON schema): InvoiceRequest,
BusinessPremiseRequest, and reading the responses.

Amounts are JSON numbers with two decimals written from Decimal text, never via float.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from agent.pos.fiscal.zoi import local_time
from agent.pos.model import InvoiceId, Receipt
from agent.pos.money import CENT, euros

INVOICE_PATH = "/v1/cash_registers/invoices"
PREMISE_PATH = "/v1/cash_registers/invoices/register"
ECHO_PATH = "/v1/cash_registers/echo"

# error codes of spec v3.2 chapter 4; S100 (system error) is worth retrying, the others not
ERROR_CODES: dict[str, str] = {
    "S001": "Sporočilo ni v skladu s shemo XML",
    "S002": "Sporočilo ni v skladu s shemo JSON",
    "S003": "Digitalni podpis ni ustrezen",
    "S004": "Identifikator digitalnega potrdila ni ustrezen",
    "S005": "Davčna številka v sporočilu ni enaka davčni številki iz digitalnega potrdila",
    "S006": "Podatki o poslovnem prostoru niso posredovani",
    "S007": "Digitalno potrdilo je preklicano",
    "S008": "Digitalnemu potrdilu je potekla veljavnost",
    "S100": "Sistemska napaka pri obdelavi sporočila",
}
TRANSIENT_CODES = frozenset({"S100"})


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON in which Decimal values become JSON numbers verbatim."""
    marker = "dec" + secrets.token_hex(8)

    def conv(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{marker}:{value}"
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [conv(v) for v in value]
        return value

    text = json.dumps(conv(obj), ensure_ascii=False, separators=(",", ":"))
    text = re.sub(rf'"{marker}:(-?\d+(?:\.\d+)?)"', r"\1", text)
    return text.encode("utf-8")


def header(sent_at: datetime) -> dict[str, str]:
    # a fresh MessageID for every send, also for a resend (spec R_1.0)
    return {"MessageID": str(uuid.uuid4()), "DateTime": _stamp(sent_at)}


def _stamp(at: datetime) -> str:
    return local_time(at).strftime("%Y-%m-%dT%H:%M:%S")


def invoice_request(receipt: Receipt, *, subsequent: bool, sent_at: datetime) -> dict[str, Any]:
    sale = receipt.sale
    totals = sale.totals
    seller: dict[str, Any] = {}
    if totals.rates:
        seller["VAT"] = [
            {"TaxRate": (r.rate.percent or Decimal(0)).quantize(CENT),
             "TaxableAmount": euros(r.base_cents), "TaxAmount": euros(r.vat_cents)}
            for r in totals.rates
        ]
    if totals.exempt_cents:
        seller["ExemptVATTaxableAmount"] = euros(totals.exempt_cents)
    if totals.nontaxable_cents:
        # not subject to VAT: a multi-purpose voucher sold (docs/pos.md)
        seller["NontaxableAmount"] = euros(totals.nontaxable_cents)
    invoice: dict[str, Any] = {
        "TaxNumber": receipt.tax_number,
        "IssueDateTime": _stamp(receipt.issued_at),
        "NumberingStructure": receipt.numbering_structure,
        "InvoiceIdentifier": {
            "BusinessPremiseID": receipt.invoice.premise,
            "ElectronicDeviceID": receipt.invoice.device,
            "InvoiceNumber": str(receipt.invoice.number),
        },
    }
    if sale.customer_vat_number:
        invoice["CustomerVATNumber"] = sale.customer_vat_number
    invoice["InvoiceAmount"] = euros(totals.total_cents)
    invoice["PaymentAmount"] = euros(totals.total_cents)
    invoice["TaxesPerSeller"] = [seller]
    if sale.operator.tax_number is not None:
        invoice["OperatorTaxNumber"] = sale.operator.tax_number
    else:
        invoice["ForeignOperator"] = True
    invoice["ProtectedID"] = receipt.zoi
    invoice["SubsequentSubmit"] = subsequent
    if sale.reference is not None:
        # a refund/correction names the original invoice (R_3.14.1-3) and its time (R_3.15)
        ref = InvoiceId.parse(sale.reference.invoice_id)
        invoice["ReferenceInvoice"] = [{
            "ReferenceInvoiceIdentifier": {"BusinessPremiseID": ref.premise,
                                           "ElectronicDeviceID": ref.device,
                                           "InvoiceNumber": str(ref.number)},
            "ReferenceInvoiceIssueDateTime": sale.reference.issued_at}]
    return {"InvoiceRequest": {"Header": header(sent_at), "Invoice": invoice}}


@dataclass(frozen=True, slots=True)
class PremiseAddress:
    street: str
    house_number: str
    community: str
    city: str
    postal_code: str
    house_number_additional: str | None = None


def business_premise_request(
    *, tax_number: int, premise_id: str, validity: date, sent_at: datetime,
    software_supplier_tax_number: int | None = None, software_supplier_name: str | None = None,
    cadastral_number: int | None = None, building_number: int | None = None,
    building_section_number: int | None = None, address: PremiseAddress | None = None,
    movable_type: str | None = None, closing: bool = False, notes: str | None = None,
) -> dict[str, Any]:
    """Registration of a business premise (spec v3.2 §3.2, example §9.4): a real-estate
    premise (cadastral ids + address) or a movable one (type A, B or C)."""
    if movable_type is not None:
        if movable_type not in ("A", "B", "C"):
            raise ValueError("movable premise type is A, B or C")
        bp_identifier: dict[str, Any] = {"PremiseType": movable_type}
    else:
        if None in (cadastral_number, building_number, building_section_number, address):
            raise ValueError("a real-estate premise needs cadastral_number, building_number, "
                             "building_section_number and an address")
        assert address is not None
        addr: dict[str, Any] = {"Street": address.street, "HouseNumber": address.house_number}
        if address.house_number_additional:
            addr["HouseNumberAdditional"] = address.house_number_additional
        addr |= {"Community": address.community, "City": address.city,
                 "PostalCode": address.postal_code}
        bp_identifier = {"RealEstateBP": {
            "PropertyID": {"CadastralNumber": cadastral_number, "BuildingNumber": building_number,
                           "BuildingSectionNumber": building_section_number},
            "Address": addr}}
    if (software_supplier_tax_number is None) == (software_supplier_name is None):
        raise ValueError("give the software supplier's tax number or (foreign) name")
    supplier: dict[str, Any] = ({"TaxNumber": software_supplier_tax_number}
                                if software_supplier_tax_number is not None
                                else {"NameForeign": software_supplier_name})
    premise: dict[str, Any] = {
        "TaxNumber": tax_number,
        "BusinessPremiseID": premise_id,
        "BPIdentifier": bp_identifier,
        "ValidityDate": validity.isoformat(),
        "SoftwareSupplier": [supplier],
    }
    if closing:
        premise["ClosingTag"] = "Z"
    if notes:
        premise["SpecialNotes"] = notes
    return {"BusinessPremiseRequest": {"Header": header(sent_at), "BusinessPremise": premise}}


@dataclass(frozen=True, slots=True)
class FursAnswer:
    message_id: str | None
    eor: str | None
    error_code: str | None
    error_message: str | None


def read_response(payload: bytes, root: str) -> FursAnswer:
    """``root`` is InvoiceResponse or BusinessPremiseResponse."""
    body = json.loads(payload)
    node = body.get(root) if isinstance(body, dict) else None
    if not isinstance(node, dict):
        raise ValueError(f"response has no {root}")
    raw_err, raw_head = node.get("Error"), node.get("Header")
    err = raw_err if isinstance(raw_err, dict) else None
    head = raw_head if isinstance(raw_head, dict) else {}
    return FursAnswer(
        message_id=head.get("MessageID"),
        eor=node.get("UniqueInvoiceID"),
        error_code=str(err.get("ErrorCode", "")).upper() or None if err else None,
        error_message=str(err.get("ErrorMessage", "")) if err else None,
    )
