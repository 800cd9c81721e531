"""Receipt layout on 58 mm (32 columns) and 80 mm (48 columns) paper, and its ESC/POS form.

Text goes out in code page CP852 (ESC t 18), which has č š ž Č Š Ž; the receipt is a
sequence of blocks rendered by the one ESC/POS renderer (drivers/escpos_render.py). The QR
code is the 60-digit FURS record, version 2 (25 x 25 modules), error correction M, 4 x 4
dots per module and a 4-module quiet zone, as the spec prescribes (v3.2 ch. 11: >= 12 mm
at 203 dpi); it is sent as a raster image (GS v 0) so any ESC/POS printer prints it the
same way.

Contents follow ZDDV-1 art. 82 / ZDavPR art. 6: issuer, address, tax number, premise and
device (in the invoice number), date and time, operator label, items, VAT per rate, total,
payment, ZOI, EOR (or a note that it is pending), "KOPIJA n" on reprints.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.pos.fiscal.zoi import local_time
from agent.pos.model import Receipt
from agent.pos.money import VatRate, fmt_amount
from drivers.escpos_render import Block, Cut, QrRaster, Style, Text
from drivers.escpos_render import render as render_blocks

RATE_MARK = {VatRate.STANDARD: "A", VatRate.REDUCED: "B", VatRate.SUPER_REDUCED: "C",
             VatRate.EXEMPT: "E", VatRate.NOT_SUBJECT: "N"}
EOR_PENDING = "EOR: naknadno potrjevanje"


@dataclass(frozen=True, slots=True)
class Issuer:
    name: str
    address: tuple[str, ...]
    tax_number: int
    vat_id: str | None = None


def _pair(left: str, right: str, width: int) -> str:
    room = width - len(right) - 1
    if len(left) > room:
        left = left[: max(room, 0)]
    return f"{left}{' ' * (width - len(left) - len(right))}{right}"


def _fmt_qty(q: object) -> str:
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def text_lines(receipt: Receipt, issuer: Issuer, width: int, *, eor: str | None,
               copy: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(header, body, fiscal) lines; header is printed centred and the first line bold."""
    sale = receipt.sale
    rule = "-" * width
    header = [issuer.name, *issuer.address]
    header.append(f"ID za DDV: {issuer.vat_id}" if issuer.vat_id
                  else f"Davčna št.: {issuer.tax_number}")
    body = [rule, f"RAČUN št.: {receipt.invoice}",
            f"Datum: {local_time(receipt.issued_at).strftime('%d.%m.%Y %H:%M:%S')}",
            f"Prostor: {receipt.invoice.premise}  Naprava: {receipt.invoice.device}",
            f"Blagajnik: {sale.operator.name}"]
    if sale.customer_vat_number:
        body.append(f"Kupec ID za DDV: {sale.customer_vat_number}")
    if sale.reference is not None:
        # a refund names the invoice it changes, with that invoice's issue time
        when = datetime.fromisoformat(sale.reference.issued_at).strftime("%d.%m.%Y %H:%M:%S")
        body += ["VRAČILO", f"K računu: {sale.reference.invoice_id}", f"z dne {when}"]
    if copy:
        body.append(f"KOPIJA {copy}")
    body.append(rule)
    for ln in sale.lines:
        body.extend(textwrap.wrap(ln.name, width) or [""])
        unit = f" {ln.unit}" if ln.unit else ""
        qty = f"  {_fmt_qty(ln.quantity)}{unit} x {fmt_amount(ln.unit_price_cents)}"
        body.append(_pair(qty, f"{fmt_amount(ln.total_cents + ln.discount_cents)} "
                          f"{RATE_MARK[ln.rate]}", width))
        if ln.discount_cents:
            body.append(_pair("  popust", f"-{fmt_amount(ln.discount_cents)}  ", width))
    t = sale.totals
    body += [rule, _pair("SKUPAJ EUR", fmt_amount(t.total_cents), width)]
    for p in sale.payments:
        body.append(_pair(p.method.label, fmt_amount(p.amount_cents), width))
    if t.change_cents:
        body.append(_pair("Vračilo", fmt_amount(t.change_cents), width))
    body.append(rule)
    cols = (10, 12, 10) if width >= 48 else (9, 8, 8)
    body.append(f"{'DDV':<{width - sum(cols)}}{'osnova':>{cols[0]}}{'DDV':>{cols[1]}}"
                f"{'skupaj':>{cols[2]}}"[: width])
    for r in t.rates:
        label = f"{RATE_MARK[r.rate]} {r.rate.label}"
        body.append(f"{label:<{width - sum(cols)}}{fmt_amount(r.base_cents):>{cols[0]}}"
                    f"{fmt_amount(r.vat_cents):>{cols[1]}}{fmt_amount(r.gross_cents):>{cols[2]}}")
    if t.exempt_cents:
        body.append(_pair(f"E {VatRate.EXEMPT.label}", fmt_amount(t.exempt_cents), width))
    if t.nontaxable_cents:  # its own line, no rate: a multi-purpose voucher sold
        body.append(_pair(f"N {VatRate.NOT_SUBJECT.label}", fmt_amount(t.nontaxable_cents),
                          width))
    if sale.note:
        body += [rule, *textwrap.wrap(sale.note, width)]
    body.append(rule)
    fiscal = [f"ZOI: {receipt.zoi}" if width >= 37 else "ZOI:", *([] if width >= 37
                                                                 else [receipt.zoi])]
    if eor:
        if width >= 41:
            fiscal.append(f"EOR: {eor}")
        else:  # a UUID is 36 characters: split after its third group on 58 mm paper
            head, _, tail = eor.partition("-")
            mid, _, rest = tail.partition("-")
            more, _, last = rest.partition("-")
            fiscal += ["EOR:", f"{head}-{mid}-{more}-", last] if last else ["EOR:", eor]
    else:
        fiscal += [EOR_PENDING]
    return header, body, fiscal


# segno's automatic mask choice scores all 8 masks (~3.5 ms on a Pi-class core, most of
# the receipt's render time); every mask yields a valid ISO/IEC 18004 symbol (the mask id
# is in the format information), so a fixed one is used and tests decode the printed
# raster with zbar. bench/pos_bench.py reports both.
QR_MASK: int | None = 2


def furs_qr(data: str) -> QrRaster:
    """The FURS record as its QR code: version 2, level M, 4 dots per module."""
    return QrRaster(data, version=2, error="m", mask=QR_MASK)


# a ticket or voucher code (contracts/ticket_token.py, "ET1" + base32: 170 characters when
# the bridge signed it, 330 when a till did) fits a version 11 QR code at level M in
# alphanumeric mode (61 x 61 modules, about 30 mm); the mask is fixed like the FURS code's
# (scoring all 8 masks of a version 11 symbol costs ~45 ms; the tests decode the raster)
TICKET_QR_VERSION = 11


def ticket_qr(code: str) -> QrRaster:
    """A ticket's code as its QR code: the one form the till and the POS job print."""
    return QrRaster(code, version=TICKET_QR_VERSION, error="m", mask=QR_MASK)


def ticket_blocks(tickets: Sequence[tuple[str, str]], width: int) -> list[Block]:
    """Tickets a POS job asked to print, as (label, code): each under a rule with its
    label, then its centred QR code."""
    out: list[Block] = []
    for label, code in tickets:
        out += [Style(align="left"), Text(["-" * width, *textwrap.wrap(label, width)]),
                Style(align="center"), ticket_qr(code), Text([""])]
    return out


def receipt_blocks(receipt: Receipt, issuer: Issuer, width: int, *, eor: str | None,
                   copy: int = 0, extra: Sequence[Block] = ()) -> list[Block]:
    """The receipt as blocks of the one ESC/POS renderer (drivers/escpos_render.py):
    centred issuer (name in bold), text, fiscal marks, the centred QR code, cut."""
    header, body, fiscal = text_lines(receipt, issuer, width, eor=eor, copy=copy)
    return [
        Style(align="center", bold=True), Text([header[0]]),
        Style(align="center", bold=False), Text(header[1:]),
        Style(align="left"), Text(body), Text(fiscal),
        Style(align="center"), furs_qr(receipt.qr), Text([""]),
        *extra, Style(align="left"), Cut(),
    ]


def render(receipt: Receipt, issuer: Issuer, width: int, *, eor: str | None,
           copy: int = 0, extra: Sequence[Block] = ()) -> bytes:
    """The whole receipt as ESC/POS bytes (initialise, CP852, text, QR, ``extra`` blocks
    such as a till's ticket codes, feed and cut)."""
    return render_blocks(receipt_blocks(receipt, issuer, width, eor=eor, copy=copy,
                                        extra=extra))


def issued_stamp(at: datetime) -> str:
    return local_time(at).strftime("%d.%m.%Y %H:%M:%S")
