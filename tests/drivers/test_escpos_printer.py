"""EscposPrinter against real peers: the virtual TCP 9100 printer, a file, a socat pty."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from drivers.errors import BadPeripheralUrl, PrinterError
from drivers.escpos_printer import EscposPrinter, decode_status
from drivers.escpos_render import Document, render_document
from drivers.protocols import HealthState, PrintJob
from drivers.registry import open_peripheral
from simulators.virtual_printer import VirtualPrinter
from tests.drivers.socat_pty import open_pty_pair

SLO = "Čebelica Šmarje Žalec"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def vp(tmp_path: Path) -> Iterator[VirtualPrinter]:
    printer = VirtualPrinter("127.0.0.1", 0, tmp_path / "out")
    printer.start()
    yield printer
    printer.stop()


def net_printer(port: int, **options: object) -> EscposPrinter:
    # no start-up probe: the tests count the printer's status requests
    p = open_peripheral("printer", "front", f"escpos-net:127.0.0.1:{port}",
                        {"timeout_s": 1, "probe": False, **options})
    assert isinstance(p, EscposPrinter)
    p.start()
    return p


def test_document_with_slovenian_text_and_qr_prints_and_decodes(vp: VirtualPrinter) -> None:
    from pyzbar.pyzbar import decode

    printer = net_printer(vp.port)
    payload = render_document(Document("Kartica člana", [SLO, "ČŠŽ čšž"], qr="M-000123"))
    printer.print_job(PrintJob("card-1", payload))
    assert vp.wait_for(1)
    receipt = vp.receipts[0]
    assert receipt.cut
    assert SLO in receipt.lines
    assert "ČŠŽ čšž" in receipt.lines
    assert receipt.lines[0].strip() == "Kartica člana"
    assert receipt.code_pages == ("cp852",)
    assert receipt.png_path is not None
    found = decode(Image.open(receipt.png_path))
    assert [r.data.decode() for r in found] == ["M-000123"]
    assert printer.health().state is HealthState.OK
    # status asked before (1 and 4) and after (1) the job
    assert vp.status_queries == 3


def test_printer_off_then_back_on(tmp_path: Path) -> None:
    port = free_port()
    printer = net_printer(port)
    with pytest.raises(PrinterError) as err:
        printer.print_job(PrintJob("j1", b"first\n"))
    text = str(err.value)
    assert f"printer front at 127.0.0.1:{port} does not answer" in text
    assert "check power" in text
    assert printer.health().state is HealthState.DOWN

    vp = VirtualPrinter("127.0.0.1", port, tmp_path)
    vp.start()
    try:
        printer.print_job(PrintJob("j1", b"first\n"))
        assert vp.wait_for(1)
        assert vp.receipts[0].lines == ("first",)
        assert printer.health().state is HealthState.OK

        vp.stop()  # listener killed while the agent runs
        with pytest.raises(PrinterError, match="does not answer"):
            printer.print_job(PrintJob("j2", b"second\n"))
        assert printer.health().state is HealthState.DOWN
        vp.start()
        printer.print_job(PrintJob("j2", b"second\n"))
        assert vp.wait_for(2)
        assert vp.receipts[1].lines == ("second",)
        assert printer.health().state is HealthState.OK
    finally:
        vp.stop()


def test_start_up_probe_shows_a_printer_that_is_off(tmp_path: Path) -> None:
    port = free_port()
    printer = net_printer(port, probe=True)
    deadline = time.monotonic() + 3
    while printer.health().detail == "not checked yet" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert printer.health().state is HealthState.DOWN
    assert "does not answer" in printer.health().detail
    vp = VirtualPrinter("127.0.0.1", port, tmp_path)
    vp.start()
    try:
        assert printer.probe().state is HealthState.OK
        assert vp.receipts == []
    finally:
        vp.stop()


def test_paper_out_cover_open_and_near_end_from_dle_eot(vp: VirtualPrinter) -> None:
    printer = net_printer(vp.port)
    vp.set_state(paper_end=True)
    with pytest.raises(PrinterError, match="is out of paper: load a new roll"):
        printer.print_job(PrintJob("j1", b"lost?\n"))
    assert printer.health().state is HealthState.DOWN
    assert "out of paper" in printer.health().detail

    vp.set_state(paper_end=False, cover_open=True)
    with pytest.raises(PrinterError, match="cover open"):
        printer.print_job(PrintJob("j1", b"lost?\n"))

    vp.set_state(cover_open=False, offline=True)
    with pytest.raises(PrinterError, match="is offline"):
        printer.print_job(PrintJob("j1", b"lost?\n"))
    time.sleep(0.05)
    assert vp.receipts == []  # nothing was sent to a printer that could not print it

    vp.set_state(offline=False, paper_near_end=True)
    printer.print_job(PrintJob("j1", b"printed\n"))
    assert vp.wait_for(1)
    health = printer.health()
    assert health.state is HealthState.DEGRADED
    assert "paper near end" in health.detail
    assert printer.probe().state is HealthState.DEGRADED


def test_status_bits_decode() -> None:
    ok = decode_status(0x12, None, 0x12)
    assert ok.problem() is None and not ok.paper_near_end
    assert decode_status(0x1A, 0x32, 0x7E).paper_end
    assert decode_status(0x1A, 0x16, 0x12).cover_open
    assert decode_status(0x12, None, 0x1E).paper_near_end


class _Sink:
    """A TCP printer that takes bytes but never answers status requests."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while chunk := conn.recv(4096):
                self.data += chunk
        self.done.set()


def test_printer_without_status_support() -> None:
    sink = _Sink()
    strict = net_printer(sink.port, timeout_s=0.3)
    with pytest.raises(PrinterError, match=r"does not answer status requests .* status = false"):
        strict.print_job(PrintJob("j1", b"x\n"))
    sink.sock.close()

    sink = _Sink()
    blind = net_printer(sink.port, status=False)
    blind.print_job(PrintJob("j1", b"hello\n"))
    assert sink.done.wait(5)
    assert bytes(sink.data) == b"hello\n"
    sink.sock.close()


def test_file_backend_appends_jobs(tmp_path: Path) -> None:
    target = tmp_path / "lp0"
    printer = open_peripheral("printer", "lp", f"escpos-file:{target}", {})
    printer.start()
    printer.print_job(PrintJob("a", b"\x1b@one\n"))
    printer.print_job(PrintJob("b", b"two\n"))
    assert target.read_bytes() == b"\x1b@one\ntwo\n"
    assert printer.health().state is HealthState.OK

    gone = open_peripheral("printer", "lp", f"escpos-file:{tmp_path}/nodir/lp0", {})
    gone.start()
    with pytest.raises(PrinterError, match="does not answer"):
        gone.print_job(PrintJob("a", b"x"))
    assert gone.health().state is HealthState.DOWN


@pytest.mark.parametrize("url", ["escpos-net:", "escpos-net:host:port", "escpos-usb:zz:01",
                                 "escpos-serial:", "escpos-file:"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadPeripheralUrl):
        EscposPrinter("p", url, {})


def test_usb_printer_absent_says_what_to_check() -> None:
    printer = EscposPrinter("u", "escpos-usb:04b8:0e15", {})
    printer.start()
    with pytest.raises(PrinterError, match=r"USB 04b8:0e15 .*lsusb"):
        printer.print_job(PrintJob("a", b"x"))


# -- serial: a socat pty pair whose far end plays the printer --------------------------------

SOCAT = shutil.which("socat")


class SerialPeer:
    """socat pty pair; a thread on the far end records bytes and answers DLE EOT."""

    def __init__(self, folder: Path) -> None:
        self.device = folder / "printer-tty"
        self.far = folder / "far-tty"
        self.data = bytearray()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = open_pty_pair(self.device, self.far)
        fd = os.open(self.far, os.O_RDWR | os.O_NOCTTY)
        threading.Thread(target=self._answer, args=(fd,), daemon=True).start()

    def _answer(self, fd: int) -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 4096):
                self.data += chunk
                pending += chunk
                while (i := pending.find(b"\x10\x04")) >= 0 and len(pending) > i + 2:
                    os.write(fd, b"\x12")
                    pending = pending[i + 3:]
        except OSError:
            pass
        finally:
            os.close(fd)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        for link in (self.device, self.far):
            link.unlink(missing_ok=True)


@pytest.mark.skipif(SOCAT is None, reason="socat is not installed (scripts/setup.sh)")
def test_serial_printer_over_pty_unplug_and_back(tmp_path: Path) -> None:
    peer = SerialPeer(tmp_path)
    peer.start()
    printer = open_peripheral("printer", "ser", f"escpos-serial:{peer.device}?baud=19200",
                              {"timeout_s": 0.5, "probe": False})
    printer.start()
    try:
        printer.print_job(PrintJob("a", "Žalec\n".encode("cp852")))
        deadline = time.monotonic() + 2
        while b"\x10\x04\x01" not in peer.data[8:] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bytes(peer.data) == b"\x10\x04\x01\x10\x04\x04" + "Žalec\n".encode("cp852") \
            + b"\x10\x04\x01"
        assert printer.health().state is HealthState.OK

        peer.kill()
        with pytest.raises(PrinterError, match="does not answer"):
            printer.print_job(PrintJob("b", b"x\n"))
        assert printer.health().state is HealthState.DOWN

        peer = SerialPeer(tmp_path)
        peer.start()
        printer.print_job(PrintJob("b", b"back\n"))
        assert b"back\n" in peer.data
        assert printer.health().state is HealthState.OK
    finally:
        printer.stop()
        peer.kill()


def test_a_misspelt_boolean_option_is_refused(tmp_path: Path) -> None:
    # the same boolean reading as every other back-end (drivers/url_options.option_bool)
    with pytest.raises(BadPeripheralUrl, match="probe='maybe' is not true/false"):
        EscposPrinter("p", f"escpos-file:{tmp_path}/lp0", {"probe": "maybe"})
    assert EscposPrinter("p", f"escpos-file:{tmp_path}/lp0", {"probe": "no"}).probe_on_start \
        is False
