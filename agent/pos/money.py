"""Money and VAT arithmetic: integer cents and Decimal, never float.

Rounding is half-up to the cent (``ROUND_HALF_UP``), the usual commercial rounding the
FURS examples follow (spec v3.2, §9.1: 22 % of 23.14 = 5.0908 -> 5.09; 9.5 % of 35.14 =
3.3383 -> 3.34). Where it happens is documented in docs/pos.md ("Rounding").
"""

from __future__ import annotations

import enum
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


class VatRate(enum.Enum):
    """Slovenian VAT rates (ZDDV-1 art. 41/41.a) and exempt supplies.

    Exempt supplies are not a 0 % rate for FURS: they go into
    ``TaxesPerSeller[].ExemptVATTaxableAmount`` (spec v3.2 R_3.9.5), not into ``VAT``.
    Amounts not subject to VAT at all (the sale of a multi-purpose voucher, EU VAT
    Directive art. 30b(2) as amended by Directive 2016/1065) go into
    ``TaxesPerSeller[].NontaxableAmount`` (docs/pos.md, "Gift vouchers and VAT")."""

    STANDARD = "22"
    REDUCED = "9.5"
    SUPER_REDUCED = "5"
    EXEMPT = "exempt"
    NOT_SUBJECT = "not_subject"

    @property
    def percent(self) -> Decimal | None:
        if self in (VatRate.EXEMPT, VatRate.NOT_SUBJECT):
            return None
        return Decimal(self.value)

    @property
    def label(self) -> str:
        """How the rate is printed (Slovenian notation, decimal comma)."""
        if self is VatRate.EXEMPT:
            return "oproščeno"
        if self is VatRate.NOT_SUBJECT:
            return "ni predmet DDV"
        return f"{self.value.replace('.', ',')} %"

    @staticmethod
    def parse(value: str) -> VatRate:
        text = str(value).strip().lower().removesuffix("%").strip().replace(",", ".")
        if text in ("exempt", "oproščeno", "oprosceno", "e"):
            return VatRate.EXEMPT
        if text in ("not_subject", "ni predmet ddv", "n"):
            return VatRate.NOT_SUBJECT
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"unknown VAT rate {value!r}") from None
        for rate in VatRate:
            if rate.percent is not None and rate.percent == number:
                return rate
        raise ValueError(
            f"unknown VAT rate {value!r}: Slovenian rates are 22, 9.5, 5, 'exempt' or "
            "'not_subject'")


def round_cents(amount: Decimal) -> int:
    """Euros (any precision) -> integer cents, half-up."""
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_cents(euros: Decimal) -> int:
    """An amount that must already be whole cents (at most 2 decimals)."""
    cents = euros / CENT
    if cents != cents.to_integral_value():
        raise ValueError(f"{euros} has more than 2 decimals")
    return int(cents)


def euros(cents: int) -> Decimal:
    """Integer cents -> Decimal euros with exactly 2 decimals (for FURS and the ZOI)."""
    return (Decimal(cents) * CENT).quantize(CENT)


def fmt_amount(cents: int) -> str:
    """Printed amount, Slovenian style: 1.234,50 (thousands dot, decimal comma)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", ".") + f",{frac:02d}"


def vat_from_gross(gross_cents: int, rate: Decimal) -> int:
    """VAT contained in a VAT-inclusive amount: gross * r / (100 + r), half-up."""
    return round_cents(Decimal(gross_cents) * CENT * rate / (HUNDRED + rate))


def vat_on_net(net_cents: int, rate: Decimal) -> int:
    """VAT on a net base: base * r / 100, half-up (as in the FURS example, §9.1)."""
    return round_cents(Decimal(net_cents) * CENT * rate / HUNDRED)
