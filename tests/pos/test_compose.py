"""Receipt arithmetic: per-line rounding, per-rate VAT, exempt supplies, totals check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.pos.compose import compose
from agent.pos.errors import JobRejected
from agent.pos.job import parse_job
from agent.pos.money import VatRate

from .conftest import job


def _line(name: str, qty: str, price: str, vat: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "quantity": qty, "unit_price": price, "vat": vat, **kw}


def test_spec_example_amounts_net_prices() -> None:
    """FURS spec v3.2 §9.1 invoice example: TaxableAmount 23.14 @ 22 % -> TaxAmount 5.09,
    35.14 @ 9.5 % -> 3.34, InvoiceAmount 66.71 (half-up VAT on the rate's base)."""
    sale = compose(parse_job(job(
        lines=[_line("a", "1", "23.14", "22"), _line("b", "1", "35.14", "9.5")],
        prices_include_vat=False, payments=[{"method": "card", "amount": "66.71"}],
        totals={"total": "66.71", "vat": {"22": "5.09", "9.5": "3.34"}})))
    rates = {r.rate: (r.base_cents, r.vat_cents) for r in sale.totals.rates}
    assert rates == {VatRate.STANDARD: (2314, 509), VatRate.REDUCED: (3514, 334)}
    assert sale.totals.total_cents == 6671


def test_gross_prices_vat_extracted_per_rate_not_per_line() -> None:
    # three lines of 0.10 at 22 %: per line VAT would be 3 x 0.02 = 0.06; per rate it is
    # 0.30 * 22/122 = 0.054 -> 0.05, and base + VAT stays exactly 0.30
    sale = compose(parse_job(job(lines=[_line(f"x{i}", "1", "0.10", "22") for i in range(3)],
                                 payments=[{"method": "cash", "amount": "0.30"}],
                                 totals={"total": "0.30"})))
    (rate,) = sale.totals.rates
    assert (rate.base_cents, rate.vat_cents) == (25, 5)


def test_fractional_quantity_and_discounts_round_half_up_per_line() -> None:
    sale = compose(parse_job(job(lines=[
        _line("sir", "0.355", "12.90", "9.5"),  # 4.5795 -> 4.58
        _line("kava", "3", "1.15", "22", discount="0.45"),  # 3.45 - 0.45
        _line("čaj", "1", "2.05", "22", discount_percent="50"),  # 1.025 -> 1.03 off -> 1.02
    ], payments=[{"method": "card", "amount": "8.60"}], totals={"total": "8.60"})))
    assert [ln.total_cents for ln in sale.lines] == [458, 300, 102]
    assert sale.totals.total_cents == 860


def test_exempt_goes_apart_from_vat() -> None:
    sale = compose(parse_job(job()))
    assert sale.totals.exempt_cents == 500
    assert VatRate.EXEMPT not in {r.rate for r in sale.totals.rates}
    assert sale.totals.change_cents == 631


@pytest.mark.parametrize(("over", "code"), [
    ({"lines": [_line("x", "-1", "1.00", "22")]}, "invalid_job"),
    ({"lines": [_line("x", "0", "1.00", "22")]}, "invalid_job"),
    ({"lines": [_line("x", "1", "1.00", "8")]}, "unknown_vat_rate"),
    ({"lines": [_line("x", "1", "1.00", "0")]}, "unknown_vat_rate"),
    ({"lines": [_line("x", "1", "1.005", "22")]}, "invalid_job"),
    ({"lines": [_line("x", 1.5, "1.00", "22")]}, "invalid_job"),
    ({"totals": {"total": "13.70"}}, "totals_mismatch"),
    ({"totals": {"total": "13.69", "vat": {"22": "0.80", "9.5": "0.26", "5": "0.06"}}},
     "vat_mismatch"),
    ({"totals": {"total": "13.69", "vat": {"22": "0.81"}}}, "vat_mismatch"),
    ({"payments": [{"method": "card", "amount": "10.00"}]}, "payment_short"),
    ({"payments": [{"method": "card", "amount": "20.00"}]}, "overpaid"),
    ({"lines": [_line("x", "1", "1.00", "22", discount="2.00")],
      "totals": {"total": "-1.00"}}, "invalid_job"),
    ({"lines": [_line("x", "1", "1.00", "22", discount="2.00")],
      "totals": {"total": "0.00"}}, "bad_discount"),
    ({"operator": {"name": "Ana"}}, "invalid_job"),
    ({"unexpected": 1}, "invalid_job"),
])
def test_bad_jobs_are_refused_with_a_reason(over: dict[str, Any], code: str) -> None:
    with pytest.raises(JobRejected) as info:
        compose(parse_job(job(**over)))
    assert info.value.code == code
    assert info.value.message


def test_stated_vat_per_rate_is_accepted_when_right() -> None:
    sale = compose(parse_job(job(totals={"total": "13.69", "vat": {
        "22": "0.81", "9,5 %": "0.26", "5": "0.06"}})))
    assert sale.totals.total_cents == 1369


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 99_999),
                          st.sampled_from(["22", "9.5", "5", "exempt"]), st.integers(0, 30)),
                min_size=1, max_size=12),
       st.booleans())
def test_totals_always_add_up(items: list[tuple[int, int, str, int]], gross: bool) -> None:
    """Whatever the lines, base + VAT per rate + exempt == the invoice amount, and VAT per
    rate is within half a cent of the exact value."""
    lines = [_line(f"i{i}", str(Decimal(q) / 1000), str(Decimal(p) / 100), v,
                   discount_percent=str(d)) for i, (q, p, v, d) in enumerate(items)]
    draft = parse_job(job(lines=lines, prices_include_vat=gross,
                          payments=[{"method": "card", "amount": "0"}], totals={"total": "0"}))
    try:
        sale = compose(draft)  # everything rounded to 0.00
    except JobRejected as exc:
        if exc.code != "totals_mismatch":
            return  # e.g. a discount that rounds past the line: refused, fine
        total = exc.message.split("(")[1].split(")")[0].replace(".", "").replace(",", ".")
        sale = compose(parse_job(job(lines=lines, prices_include_vat=gross,
                                     payments=[{"method": "card", "amount": total}],
                                     totals={"total": total})))
    t = sale.totals
    assert sum(r.gross_cents for r in t.rates) + t.exempt_cents == t.total_cents
    for r in t.rates:
        pct = r.rate.percent
        assert pct is not None
        exact = (Decimal(r.gross_cents) * pct / (100 + pct)) if gross else \
            (Decimal(r.base_cents) * pct / 100)
        assert abs(Decimal(r.vat_cents) - exact) <= Decimal("0.5")
