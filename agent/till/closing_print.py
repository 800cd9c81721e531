"""The day's closing as a printed (non-fiscal) report: per cashier, payment method and VAT
rate, refunds, receipts still owed to FURS and the cash that should be in the drawer.
Printed in Slovenian like the receipts (agent/pos/layout.py)."""

from __future__ import annotations

from typing import Any

from agent.pos.layout import Issuer
from agent.pos.money import VatRate, fmt_amount
from drivers.escpos_render import Cut, Style, Text
from drivers.escpos_render import render as render_blocks

_METHODS = {"cash": "Gotovina", "card": "Kartica", "other": "Drugo"}


def _pair(left: str, right: str, width: int) -> str:
    return left[: max(width - len(right) - 1, 1)].ljust(width - len(right)) + right


def closing_lines(report: dict[str, Any], width: int, closed_at: str) -> list[str]:
    rule = "-" * width
    out = [rule, f"ZAKLJUČEK DNEVA št. {report['closing_id']}", f"Čas: {closed_at}",
           f"Računi: {report['from_number']} - {report['to_number']} "
           f"({report['receipts']})", f"Zaključil: {report['closed_by']}", rule,
           "Po blagajnikih:"]
    for name, part in sorted(report["cashiers"].items()):
        out.append(_pair(f" {name} ({part['receipts']})", fmt_amount(part["total_cents"]),
                         width))
    out.append("Po načinu plačila:")
    for method, cents in sorted(report["methods"].items()):
        out.append(_pair(f" {_METHODS.get(method, method)}", fmt_amount(cents), width))
    out.append("Po stopnjah DDV (osnova / DDV):")
    for rate, part in sorted(report["rates"].items(), key=lambda kv: -float(kv[0])):
        label = VatRate(rate).label
        out.append(_pair(f" {label} {fmt_amount(part['base_cents'])}",
                         fmt_amount(part["vat_cents"]), width))
    if report["exempt_cents"]:
        out.append(_pair(" oproščeno", fmt_amount(report["exempt_cents"]), width))
    if report.get("nontaxable_cents"):  # multi-purpose vouchers sold: no VAT rate
        out.append(_pair(" ni predmet DDV", fmt_amount(report["nontaxable_cents"]), width))
    out += [rule, _pair("SKUPAJ", fmt_amount(report["total_cents"]), width),
            _pair(f"Vračila ({report['refunds']})", fmt_amount(report["refunds_cents"]), width),
            _pair("Začetni polog", fmt_amount(report["float_cents"]), width),
            _pair("Polog", fmt_amount(report["cash_in_cents"]), width),
            _pair("Dvig", fmt_amount(report["cash_out_cents"]), width),
            _pair("Gotovina v predalu", fmt_amount(report["expected_cash_cents"]), width)]
    if report["not_fiscalised"]:
        out.append(f"Še ne potrjeno pri FURS: {report['not_fiscalised']}")
    return [*out, rule]


def render_closing(report: dict[str, Any], issuer: Issuer, width: int, closed_at: str) -> bytes:
    return render_blocks([Style(align="center", bold=True), Text([issuer.name]),
                          Style(align="left", bold=False),
                          Text(closing_lines(report, width, closed_at)), Text([""]), Cut()])
