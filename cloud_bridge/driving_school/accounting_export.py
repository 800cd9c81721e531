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
from decimal import Decimal
from typing import Any, Protocol

from cloud_bridge.driving_school.billing import doc_number, vat_summary


class Exporter(Protocol):
    name: str
    media_type: str
    suffix: str

    def export(self, docs: list[dict[str, Any]]) -> bytes: ...


JOURNAL_COLUMNS = ("stevilka", "vrsta", "poslovni_prostor", "leto", "datum_ms",
                   "kandidat_id", "stopnja_ddv", "osnova", "ddv", "skupaj", "placilo",
                   "popravlja", "racun_blagajne", "eor")


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
            for r in vat_summary(d):
                w.writerow([doc_number(d), d["kind"], d["premise"], d["year"],
                            d["created_ms"], d["candidate_id"], r["vat"],
                            _amount(r["base_cents"]), _amount(r["vat_cents"]),
                            _amount(r["gross_cents"]), d["payment"],
                            d["refers_to"] or "", d.get("fiscal_invoice_id") or "",
                            d.get("eor") or ""])
        return ("\ufeff" + out.getvalue()).encode("utf-8")


EXPORTERS: dict[str, Exporter] = {CsvJournal.name: CsvJournal()}
