"""A till device for the journeys: the receipt service with the FURS simulator, the
virtual ESC/POS printer on TCP, a catalogue file and two cashiers; its HTTP listener
serves /till on a free port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.pin_hash import hash_pin
from drivers.registry import open_peripheral
from simulators.furs_endpoint import FursSimulator, SimPki
from simulators.virtual_printer import VirtualPrinter
from tests.pos.conftest import TOKEN, Pos, furs, furs_pki, make_pos  # noqa: F401  (fixtures)

ANA_TAX, BORIS_TAX = 87654321, 23456789
CATALOGUE = {"version": 7, "products": [
    {"id": "kava", "name": "Kava z mlekom", "price": "1.80", "vat": "9.5", "category": "Pijače"},
    {"id": "voda", "name": "Mineralna voda", "price": "1.20", "vat": "9.5", "category": "Pijače",
     "barcode": "3830001234567"},
    {"id": "brisaca", "name": "Brisača Šport", "price": "12.90", "vat": "22",
     "category": "Oprema"},
    {"id": "revija", "name": "Revija Fitnes", "price": "3.50", "vat": "5", "category": "Tisk"},
]}


@dataclass
class TillDevice:
    pos: Pos
    printer: VirtualPrinter
    furs: FursSimulator
    display: Any  # drivers.sim_display.SimDisplay: .shown

    def url(self) -> str:
        return f"http://127.0.0.1:{self.pos.runtime.http_port}/till"


@pytest.fixture
def till_device(tmp_path: Path, furs_pki: SimPki,  # noqa: F811
                furs: FursSimulator) -> Iterator[TillDevice]:  # noqa: F811
    virtual = VirtualPrinter("127.0.0.1", 0, tmp_path / "paper", paper_mm=80)
    port = virtual.start()
    printer = open_peripheral("printer", "receipt", f"escpos-net://127.0.0.1:{port}", {})
    printer.start()
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps(CATALOGUE, ensure_ascii=False), encoding="utf-8")
    till = {"catalogue_file": str(catalogue), "cashiers": [
        {"id": "11", "name": "Ana", "tax_number": ANA_TAX, "pin_hash": hash_pin("2468")},
        {"id": "12", "name": "Boris", "tax_number": BORIS_TAX, "pin_hash": hash_pin("1357"),
         "may_discount": True, "may_refund": True, "may_open_drawer": True,
         "may_close_day": True}]}
    display = open_peripheral("display", "lcd", "sim:", {})
    display.start()
    till["customer_display"] = "lcd"
    pos = Pos(tmp_path / "pos", furs_pki, furs.url, printer=printer, till=till,
              displays={"lcd": display},
              http={"token": TOKEN, "bind": "127.0.0.1", "port": 0})
    pos.runtime.start()
    yield TillDevice(pos, virtual, furs, display)
    pos.close()
    virtual.stop()
