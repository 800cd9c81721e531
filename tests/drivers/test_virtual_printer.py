"""The virtual ESC/POS printer, driven by python-escpos' own Network printer (a real peer)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy, Network
from PIL import Image
from pyzbar.pyzbar import decode

from simulators.virtual_printer import EscposDecoder, PrinterState, VirtualPrinter

SLO = "Čebelica Šmarje Žalec"


@pytest.fixture
def vp(tmp_path: Path) -> Iterator[VirtualPrinter]:
    printer = VirtualPrinter("127.0.0.1", 0, tmp_path / "out")
    printer.start()
    yield printer
    printer.stop()


def network(port: int) -> Network:
    n = Network("127.0.0.1", port, timeout=2, profile="TM-T88V")
    n.open()
    return n


def test_escpos_network_text_qr_and_cuts(vp: VirtualPrinter) -> None:
    n = network(vp.port)
    n.charcode("CP852")
    n.set(align="center", bold=True, double_width=True)
    n.text("Račun\n")
    n.set(align="left", bold=False, normal_textsize=True)
    n.text(SLO + "\n")
    n.qr("native-qr-text", native=True, size=4)
    n.cut()
    n.text("second receipt\n")
    n.qr("raster-qr-text", native=False, size=5)
    n.cut()
    n.close()
    assert vp.wait_for(2)
    first, second = vp.receipts
    assert first.cut and second.cut
    # double width: 5 characters take 10 of 48 columns, centred
    assert first.lines[0] == " " * 19 + "Račun"
    assert first.lines[1] == SLO
    assert first.qr == ("native-qr-text",)
    assert first.code_pages == ("cp852",)
    assert second.lines[0] == "second receipt"
    assert second.qr == ("raster-qr-text",)  # found by zbar in the raster
    assert first.txt_path is not None and first.png_path is not None
    assert SLO in first.txt_path.read_text(encoding="utf-8")
    for receipt, text in ((first, "native-qr-text"), (second, "raster-qr-text")):
        assert receipt.png_path is not None
        assert [r.data.decode() for r in decode(Image.open(receipt.png_path))] == [text]


def test_status_answers_follow_the_simulated_state(vp: VirtualPrinter) -> None:
    n = network(vp.port)
    assert n.is_online()
    assert n.paper_status() == 2
    vp.set_state(paper_near_end=True)
    assert n.paper_status() == 1
    vp.set_state(paper_near_end=False, paper_end=True)
    assert not n.is_online()
    assert n.paper_status() == 0
    n.close()
    assert vp.status_queries == 5
    assert vp.receipts == []  # status requests alone print nothing


@pytest.mark.parametrize(("page", "raw", "text"), [
    (0, "£½ü".encode("cp437"), "£½ü"),
    (19, "€ Größe".encode("cp858"), "€ Größe"),
    (18, SLO.encode("cp852"), SLO),
])
def test_code_pages(vp: VirtualPrinter, page: int, raw: bytes, text: str) -> None:
    with socket.create_connection(("127.0.0.1", vp.port)) as s:
        s.sendall(b"\x1b@\x1bt" + bytes([page]) + raw + b"\n\x1dV\x00")
    assert vp.wait_for(1)
    assert vp.receipts[0].lines == (text,)


def test_raster_image_pixels_and_alignment_in_png(vp: VirtualPrinter) -> None:
    # 16 x 2 dots: first row left half black, second row right half black
    raster = b"\x1dv0\x00\x02\x00\x02\x00" + b"\xff\x00" + b"\x00\xff"
    with socket.create_connection(("127.0.0.1", vp.port)) as s:
        s.sendall(b"\x1b@\x1ba\x02" + raster + b"\x1dVA\x03")
    assert vp.wait_for(1)
    receipt = vp.receipts[0]
    assert receipt.images == 1 and receipt.lines == (" " * 36 + "[image 16x2]",)
    assert receipt.png_path is not None
    png = Image.open(receipt.png_path)
    assert png.width == 576
    y = 24  # one blank line of top margin
    row0 = [png.getpixel((x, y)) for x in range(560, 576)]
    row1 = [png.getpixel((x, y + 1)) for x in range(560, 576)]
    assert row0 == [0] * 8 + [255] * 8
    assert row1 == [255] * 8 + [0] * 8


def test_any_chunking_decodes_the_same() -> None:
    d = Dummy(profile="TM-T88V")
    d.charcode("CP852")
    d.text(SLO + "\n")
    d.qr("chunked", native=True)
    d.image(Image.new("1", (24, 8), 0))
    d.cut()
    stream = b"\x10\x04\x01" + bytes(d.output)
    results = []
    for size in (1, 3, 7, len(stream)):
        pages: list[list[str]] = []
        replies = bytearray()
        dec = EscposDecoder(replies.extend, PrinterState,
                            lambda page, cut, pages=pages: pages.append(
                                [getattr(b, "text", getattr(b, "qr_data", None))
                                 for b in page.blocks]))
        for i in range(0, len(stream), size):
            dec.feed(stream[i:i + size])
        assert bytes(replies) == b"\x12"
        results.append(pages)
    assert results[0] == results[1] == results[2] == results[3]
    assert results[0][0][:2] == [SLO, "chunked"]


def test_connection_closed_without_cut_is_a_receipt(vp: VirtualPrinter) -> None:
    with socket.create_connection(("127.0.0.1", vp.port)) as s:
        s.sendall(b"no cut here\n")
    assert vp.wait_for(1)
    assert vp.receipts[0].lines == ("no cut here",)
    assert not vp.receipts[0].cut


def test_cli_prints_one_json_line_per_receipt(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "printer", "--port", str(port), "--out",
         str(tmp_path), "--json", "--count", "1", "--paper-out"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with conn:
            conn.sendall(b"\x10\x04\x04")
            assert conn.recv(1) == b"\x7e"  # paper end + near end, fixed bits
            conn.sendall(b"\x1b@\x1bt\x12" + SLO.encode("cp852") + b"\n\x1dV\x00")
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["lines"] == [SLO] and lines[0]["cut"] is True
    assert Path(lines[0]["png"]).exists()
