"""From a validated job to a Sale: line totals, discounts, per-rate VAT and the totals check.

Rounding (docs/pos.md, "Rounding"): each line is rounded once, half-up to the cent
(quantity x unit price, then the discount); VAT is computed once per rate on the sum of
that rate's lines (not per line), which is how the FURS message carries it (one
TaxableAmount/TaxAmount pair per rate, spec v3.2 R_3.9.2x) and keeps base + VAT equal to
what the customer pays. With VAT-inclusive prices (the B2C default) the VAT is extracted
from the rate's gross sum; with net prices it is added to the rate's net sum.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from agent.pos.errors import JobRejected
from agent.pos.job import JobLine, PrintJobRequest
from agent.pos.model import Line, Operator, Payment, PaymentMethod, RateTotal, Sale, Totals
from agent.pos.money import (
    CENT,
    VatRate,
    fmt_amount,
    round_cents,
    to_cents,
    vat_from_gross,
    vat_on_net,
)

_MAX_TOTAL_CENTS = 10**12  # FURS AmountType allows 14 digits; a POS never gets near


def _line(index: int, job_line: JobLine) -> Line:
    try:
        rate = VatRate.parse(job_line.vat)
    except ValueError as exc:
        raise JobRejected("unknown_vat_rate", f"lines.{index}.vat: {exc}") from None
    unit_cents = to_cents(job_line.unit_price)
    gross = round_cents(job_line.quantity * job_line.unit_price)
    if job_line.discount is not None:
        discount = to_cents(job_line.discount)
    elif job_line.discount_percent is not None:
        discount = round_cents(Decimal(gross) * CENT * job_line.discount_percent / 100)
    else:
        discount = 0
    if discount > gross:
        raise JobRejected("bad_discount", f"lines.{index}: discount {fmt_amount(discount)} is "
                                          f"more than the line amount {fmt_amount(gross)}")
    return Line(job_line.name, job_line.quantity, unit_cents, discount, rate, gross - discount,
                job_line.unit)


def rate_totals(lines: tuple[Line, ...], prices_include_vat: bool
                ) -> tuple[list[RateTotal], int, int]:
    """(taxed rates highest first, exempt amount, total) of the lines; the total includes
    the lines not subject to VAT (``nontaxable_cents``)."""
    per_rate: dict[VatRate, int] = defaultdict(int)
    for ln in lines:
        per_rate[ln.rate] += ln.total_cents
    rates: list[RateTotal] = []
    exempt = per_rate.pop(VatRate.EXEMPT, 0)
    nontaxable = per_rate.pop(VatRate.NOT_SUBJECT, 0)
    for rate in sorted(per_rate, key=lambda r: r.percent or 0, reverse=True):
        amount = per_rate[rate]
        pct = rate.percent
        assert pct is not None
        if prices_include_vat:
            vat = vat_from_gross(amount, pct)
            rates.append(RateTotal(rate, amount - vat, vat))
        else:
            rates.append(RateTotal(rate, amount, vat_on_net(amount, pct)))
    total = sum(r.gross_cents for r in rates) + exempt + nontaxable
    if abs(total) > _MAX_TOTAL_CENTS:
        raise JobRejected("total_too_large", "the receipt total is implausibly large")
    return rates, exempt, total


def nontaxable_cents(lines: tuple[Line, ...]) -> int:
    """The lines not subject to VAT (FURS NontaxableAmount)."""
    return sum(ln.total_cents for ln in lines if ln.rate is VatRate.NOT_SUBJECT)


def computed_total_cents(job: PrintJobRequest) -> int:
    """What the lines add up to (the till states this total; a POS states its own)."""
    lines = tuple(_line(i, ln) for i, ln in enumerate(job.lines))
    return rate_totals(lines, job.prices_include_vat)[2]


def compose(job: PrintJobRequest) -> Sale:
    lines = tuple(_line(i, ln) for i, ln in enumerate(job.lines))
    rates, exempt, total = rate_totals(lines, job.prices_include_vat)
    stated = to_cents(job.totals.total)
    if stated != total:
        raise JobRejected("totals_mismatch",
                          f"stated total {fmt_amount(stated)} does not match the lines "
                          f"({fmt_amount(total)}); nothing was printed")
    if job.totals.vat is not None:
        computed = {r.rate: r.vat_cents for r in rates}
        for key, stated_vat in job.totals.vat.items():
            try:
                rate = VatRate.parse(key)
            except ValueError as exc:
                raise JobRejected("unknown_vat_rate", f"totals.vat: {exc}") from None
            if computed.get(rate, 0) != to_cents(stated_vat):
                raise JobRejected(
                    "vat_mismatch",
                    f"stated VAT {rate.label} {fmt_amount(to_cents(stated_vat))} does not match "
                    f"the lines ({fmt_amount(computed.get(rate, 0))}); nothing was printed")
        missing = [r for r in computed if r.value not in
                   {VatRate.parse(k).value for k in job.totals.vat}]
        if missing:
            raise JobRejected("vat_mismatch", "totals.vat does not state the VAT of "
                              + ", ".join(r.label for r in missing))

    payments = tuple(Payment(PaymentMethod(p.method), to_cents(p.amount)) for p in job.payments)
    paid = sum(p.amount_cents for p in payments)
    if paid < total:
        raise JobRejected("payment_short", f"payments {fmt_amount(paid)} are less than the "
                                           f"total {fmt_amount(total)}")
    change = paid - total
    cash = sum(p.amount_cents for p in payments if p.method is PaymentMethod.CASH)
    if change > cash:
        raise JobRejected("overpaid", "only cash can be overpaid (change is given in cash)")

    op = job.operator
    return Sale(
        lines=lines,
        payments=payments,
        totals=Totals(tuple(rates), exempt, total, paid, change, nontaxable_cents(lines)),
        operator=Operator(op.name, op.tax_number, op.foreign),
        prices_include_vat=job.prices_include_vat,
        customer_vat_number=job.customer_vat_number,
        note=job.note,
    )
