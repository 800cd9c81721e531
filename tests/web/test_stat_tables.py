"""The statistics' CSV cells: the formula guard on every character a spreadsheet would
run, numbers and money left as numbers, quoting, the byte order mark."""

from __future__ import annotations

import csv
import io

import pytest

from cloud_bridge.web.stat_tables import Money, Share, StatTable, csv_cell, table_csv


@pytest.mark.parametrize("text", ["=1+2", "+386 1 234", "-5", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_is_kept_as_text(text: str) -> None:
    assert csv_cell(text) == "'" + text


def test_numbers_money_and_shares_stay_numbers() -> None:
    assert csv_cell("Mesečna") == "Mesečna"
    assert csv_cell(-5) == "-5"  # a count we made is not text typed by anyone
    assert csv_cell(Money(7980)) == "79,80"
    assert csv_cell(Money(5)) == "0,05"
    assert csv_cell(Money(None)) == ""
    assert csv_cell(Share(2 / 3)) == "66,7"
    assert csv_cell(Share(None)) == ""
    assert csv_cell(None) == ""


def test_the_file_has_a_bom_semicolons_crlf_and_quotes_where_needed() -> None:
    table = StatTable("x", "X", ("Paket", "Prodano"),
                      (('Bon "zlati"; 5', 3), ("=cmd|' /C calc'!A0", 1)))
    body = table_csv(table)
    assert body.startswith("\ufeff".encode())
    text = body.decode("utf-8")[1:]
    assert text.split("\r\n")[0] == "Paket;Prodano"
    assert '"Bon ""zlati""; 5";3' in text
    assert list(csv.reader(io.StringIO(text), delimiter=";")) == [
        ["Paket", "Prodano"], ['Bon "zlati"; 5', "3"], ["'=cmd|' /C calc'!A0", "1"]]
