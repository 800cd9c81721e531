"""ZOI (zaščitna oznaka izdajatelja računa) and the 60-digit code printed as a QR code.

FURS technical specification v3.2 (datoteke.fu.gov.si/dpr), chapter 10:
  ZOI = MD5hex( RSA-SHA256-sign( TaxNumber + IssueDateTime + InvoiceNumber
                                 + BusinessPremiseID + ElectronicDeviceID + InvoiceAmount ) )
with IssueDateTime as ``dd.MM.yyyy HH:mm:ss`` (the Java/C# reference code), UTF-8 text, the
amount with a decimal dot (``321.45``), PKCS#1 v1.5 padding (Java ``SHA256withRSA``).

Chapter 11: the code is ZOI in decimal, left-padded with zeros to 39 digits, + the 8-digit
tax number + the issue time as yyMMddHHmmss + one control digit = (sum of all 59 digits)
mod 10. The spec's two worked examples are in tests/pos/test_fiscal_marks.py.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from agent.pos.money import euros

LJUBLJANA = ZoneInfo("Europe/Ljubljana")
_IDENT = re.compile(r"^[0-9A-Za-z]{1,20}$")


def local_time(at: datetime) -> datetime:
    """Receipt times are Slovenian wall-clock time, whole seconds."""
    if at.tzinfo is None:
        raise ValueError("issue time must be timezone-aware")
    return at.astimezone(LJUBLJANA).replace(microsecond=0)


def zoi_input(tax_number: int, issued_at: datetime, invoice_number: int, premise: str,
              device: str, amount_cents: int) -> str:
    if not 10_000_000 <= tax_number <= 99_999_999:
        raise ValueError("tax number must have 8 digits")
    if not (_IDENT.match(premise) and _IDENT.match(device)):
        raise ValueError("premise and device ids are 1-20 letters/digits (FURS R_3.4.1/2)")
    if invoice_number < 1:
        raise ValueError("invoice numbers start at 1 (no leading zeros, R_3.4.3)")
    stamp = local_time(issued_at).strftime("%d.%m.%Y %H:%M:%S")
    return f"{tax_number}{stamp}{invoice_number}{premise}{device}{euros(amount_cents)}"


def compute_zoi(key: RSAPrivateKey, tax_number: int, issued_at: datetime, invoice_number: int,
                premise: str, device: str, amount_cents: int) -> str:
    data = zoi_input(tax_number, issued_at, invoice_number, premise, device, amount_cents)
    signature = key.sign(data.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return hashlib.md5(signature).hexdigest()  # the spec prescribes MD5 (RFC 1321)


def qr_data(zoi: str, tax_number: int, issued_at: datetime) -> str:
    """The 60-digit data record for the QR code (also usable for PDF417/Code 128)."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", zoi):
        raise ValueError("ZOI must be 32 hex characters")
    digits = (str(int(zoi, 16)).zfill(39) + f"{tax_number:08d}"
              + local_time(issued_at).strftime("%y%m%d%H%M%S"))
    return digits + str(sum(int(d) for d in digits) % 10)
