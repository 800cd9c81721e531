"""How a receipt line's or product's VAT reads on the staff pages."""

from __future__ import annotations

import pytest

from cloud_bridge.web.catalogue_form import vat_label
from contracts.i18n import use_language


@pytest.mark.parametrize("rate,sl,en", [
    ("22", "22 %", "22 %"), ("9.5", "9,5 %", "9.5 %"), ("5", "5 %", "5 %"),
    ("exempt", "oproščeno", "exempt"),
    ("not_subject", "ni predmet DDV", "not subject to VAT"),  # a multi-purpose voucher
    ("zero-ish", "zero-ish", "zero-ish"),  # a code from a newer device: shown as it came
])
def test_vat_label(rate: str, sl: str, en: str) -> None:
    with use_language("sl"):
        assert vat_label(rate) == sl
    with use_language("en"):
        assert vat_label(rate) == en
