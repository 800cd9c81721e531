"""Exporting the money documents to an accounting program, behind one interface
(``Exporter``) so that another format can be added beside the first.

The "VOD standard" of the brief is not identified, and no Slovenian program's import
format (e-SLOG, Minimax, Pantheon, Vasco) could be confirmed from a documented source;
so the one format here is **our own documented CSV journal** (docs/driving_school.md,
"Accounting export"): one row per document and VAT rate, UTF-8 with BOM and ``;`` as
Slovenian Excel and most importers' CSV wizards expect, amounts with a decimal comma."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from cloud_bridge.driving_school.billing import doc_number


class Exporter(Protocol):
    name: str
    media_type: str
    suffix: str

    def export(self, docs: list[dict[str, Any]]) -> bytes: ...


JOURNAL_COLUMNS = ("stevilka", "vrsta", "poslovni_prostor", "leto", "datum_ms",
                   "kandidat_id", "stopnja_ddv", "osnova", "ddv", "skupaj", "placilo",
                   "popravlja")


def _split_vat(gross_cents: int, rate: str) -> tuple[int, int]:
    """(base, VAT) of a gross amount; exempt: all base."""
    if rate == "exempt":
        return gross_cents, 0
    factor = Decimal(1) + Decimal(rate) / 100
    base = int((Decimal(gross_cents) / factor).quantize(Decimal(1), ROUND_HALF_UP))
    return base, gross_cents - base


def _amount(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):.2f}".replace(".", ",")


class CsvJournal:
    name = "csv-journal"
    media_type = "text/csv; charset=utf-8"
    suffix = "csv"

    def export(self, docs: list[dict[str, Any]]) -> bytes:
        out = io.StringIO()
        w = csv.writer(out, delimiter=";")
        w.writerow(JOURNAL_COLUMNS)
        for d in docs:
            sign = -1 if d["total_cents"] < 0 else 1
            per_rate: dict[str, int] = defaultdict(int)
            for ln in d["lines"]:
                per_rate[ln["vat"]] += sign * ln["quantity"] * ln["unit_price_cents"]
            for rate, gross in sorted(per_rate.items()):
                base, vat = _split_vat(gross, rate)
                w.writerow([doc_number(d), d["kind"], d["premise"], d["year"],
                            d["created_ms"], d["candidate_id"], rate, _amount(base),
                            _amount(vat), _amount(gross), d["payment"],
                            d["refers_to"] or ""])
        return ("\ufeff" + out.getvalue()).encode("utf-8")


EXPORTERS: dict[str, Exporter] = {CsvJournal.name: CsvJournal()}
