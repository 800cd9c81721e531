"""The statistics' tables, written once and shown twice: as HTML tables on the page
(numbers and money in the reader's format) and as CSV files for a spreadsheet.

CSV like the timesheets' (cloud_bridge/attendance/staff_csv.py): UTF-8 with a byte order
mark (so Excel reads č, š and ž), ``;`` between fields, CRLF, quotes where needed (the
csv module's minimal quoting), money as euros with a decimal comma and no currency sign,
shares as percentages with a decimal comma, so the columns can be summed. A text cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
apostrophe, so a spreadsheet shows it as text instead of running it as a formula (a plan
name is typed by staff)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from contracts.i18n import format_money, format_number

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Money:
    cents: int | None


@dataclass(frozen=True, slots=True)
class Share:
    ratio: float | None


Cell = str | int | Money | Share | None


@dataclass(frozen=True, slots=True)
class StatTable:
    key: str  # the CSV's name: /sales-stats.csv?table=<key>
    caption: str
    headings: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


def _percent(ratio: float) -> Decimal:
    return (Decimal(str(ratio)) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)


def html_cell(cell: Cell) -> str:
    if isinstance(cell, Money):
        return format_money(cell.cents)
    if isinstance(cell, Share):
        return "—" if cell.ratio is None else f"{format_number(_percent(cell.ratio))} %"
    if isinstance(cell, int):
        return format_number(cell)
    return "—" if cell is None else cell


def csv_cell(cell: Cell) -> str:
    if isinstance(cell, Money):
        return "" if cell.cents is None else f"{Decimal(cell.cents) / 100:.2f}".replace(
            ".", ",")
    if isinstance(cell, Share):
        return "" if cell.ratio is None else str(_percent(cell.ratio)).replace(".", ",")
    if isinstance(cell, int):
        return str(cell)
    text = "" if cell is None else cell
    return "'" + text if text.startswith(FORMULA_START) else text


def table_csv(table: StatTable) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in table.headings])
    for row in table.rows:
        writer.writerow([csv_cell(c) for c in row])
    return (BOM + out.getvalue()).encode("utf-8")
