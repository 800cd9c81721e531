"""ESC/POS receipt printers over TCP 9100, USB, a serial line or a device file.

URLs::

    escpos-net:192.168.1.50:9100          (port defaults to 9100)
    escpos-usb:04b8:0e15                   (hex VID:PID; ?in_ep=0x82&out_ep=0x01)
    escpos-serial:/dev/ttyUSB0?baud=19200  (?dsrdtr=0&xonxoff=0)
    escpos-file:/dev/usb/lp0               (write only: no status)

Options (config table, override the URL query): ``timeout_s`` (connect/write/answer
time, default 3), ``status`` (default true except for files: ask the printer with
DLE EOT before and after every job; set false for the rare printer that never answers),
``probe`` (default true: ask for the status once, in the background, at start, so the
health shows a printer that is off before the first job).

The payload is sent as is (the caller renders it, e.g. agent/pos/layout.py). Before each
job the printer is asked for its real-time status (DLE EOT 1, and 2/4 for the cause), so
a printer that is out of paper or has its cover open refuses the job with a message
instead of swallowing it; after the job one more DLE EOT 1 proves that every byte before
it reached the printer (real-time commands are answered on reception, in order).
A network printer gets one connection per job (TCP 9100 serves a single client, and a
kept connection would hide a printer restart); USB and serial ports stay open and are
reopened after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from escpos.exceptions import DeviceNotFoundError, USBNotFoundError
from escpos.printer import Network, Serial, Usb

from drivers.errors import BadPeripheralUrl, PrinterError
from drivers.protocols import HealthState, PeripheralHealth, PrintJob
from drivers.url_options import option_bool

log = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
STATUS_PRINTER, STATUS_OFFLINE_CAUSE, STATUS_ERROR_CAUSE, STATUS_PAPER = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What DLE EOT 1/2/4 said (Epson ESC/POS reference, "DLE EOT n")."""

    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    error: bool = False

    def problem(self) -> str | None:
        """Why a job must not be sent now, in technician words; None when printable."""
        if self.paper_end:
            return "is out of paper: load a new roll and close the cover"
        if self.cover_open:
            return "has its cover open: close the cover"
        if self.error:
            return ("reports an error (cutter jam or overheated head): clear the paper path, "
                    "then switch it off and on")
        if self.offline:
            return "is offline (feed button held or waiting after an error): check its lights"
        return None


def _valid(byte: int) -> bool:
    # every DLE EOT answer has bits 1 and 4 set and bits 0 and 7 clear
    return byte & 0x93 == 0x12


def decode_status(printer: int, offline_cause: int | None, paper: int | None) -> PrinterStatus:
    return PrinterStatus(
        offline=bool(printer & 0x08),
        cover_open=offline_cause is not None and bool(offline_cause & 0x04),
        paper_end=(paper is not None and bool(paper & 0x60))
        or (offline_cause is not None and bool(offline_cause & 0x20)),
        paper_near_end=paper is not None and bool(paper & 0x0C),
        error=offline_cause is not None and bool(offline_cause & 0x40),
    )


class _Transport(Protocol):
    where: str

    def open(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def read_byte(self, timeout_s: float) -> int | None:
        """One answer byte, or None when nothing came in time."""

    def close(self) -> None: ...

    @property
    def per_job(self) -> bool:
        """Open and close around each job instead of keeping the device open."""


class _NetTransport:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.where = f"{host}:{port}"
        self._p = Network(host=host, port=port, timeout=timeout_s)
        self._sock: socket.socket | None = None
        self.timeout_s = timeout_s

    per_job = True

    def open(self) -> None:
        try:
            self._p.open()
        except DeviceNotFoundError as exc:
            cause = exc.__context__  # escpos re-raises the socket error without `from`
            text = (getattr(cause, "strerror", None) or str(cause or exc)).strip()
            raise OSError(text or "timed out") from exc
        self._sock = self._p.device
        # small status requests right after the payload: without this, Nagle + the
        # printer's delayed ACK add ~40 ms to every job
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        assert self._sock is not None
        self._sock.settimeout(self.timeout_s)
        self._p._raw(data)

    def read_byte(self, timeout_s: float) -> int | None:
        assert self._sock is not None
        self._sock.settimeout(timeout_s)
        try:
            data = self._sock.recv(1)
        except TimeoutError:
            return None
        if not data:
            raise ConnectionResetError("the printer closed the connection")
        return data[0]

    def close(self) -> None:
        self._sock = None
        with contextlib.suppress(OSError):
            self._p.close()


class _SerialTransport:
    per_job = False

    def __init__(self, devfile: str, baud: int, timeout_s: float, dsrdtr: bool,
                 xonxoff: bool) -> None:
        self.where = devfile
        self._p = Serial(devfile=devfile, baudrate=baud, timeout=timeout_s, dsrdtr=dsrdtr,
                         xonxoff=xonxoff)
        self._open = False

    def open(self) -> None:
        if self._open:
            return
        try:
            self._p.open()
        except DeviceNotFoundError as exc:
            raise OSError(str(exc).replace("\n", " ")) from exc
        if not self._p.device:
            raise OSError(f"cannot open {self.where}")
        self._p.device.write_timeout = self._p.timeout
        self._open = True

    def write(self, data: bytes) -> None:
        self._p.device.write(data)
        self._p.device.flush()

    def read_byte(self, timeout_s: float) -> int | None:
        dev = self._p.device
        dev.timeout = timeout_s
        data = dev.read(1)  # read(16) would wait the whole timeout for 16 bytes
        return data[0] if data else None

    def close(self) -> None:
        self._open = False
        try:
            self._p.close()
        except Exception:  # a vanished USB-serial adapter raises from close too
            self._p._device = False


class _UsbTransport:
    per_job = False

    def __init__(self, vid: int, pid: int, timeout_s: float, in_ep: int | None,
                 out_ep: int | None) -> None:
        self.ids = f"{vid:04x}:{pid:04x}"
        self.where = f"USB {self.ids}"
        eps: dict[str, int] = {}
        if in_ep is not None:
            eps["in_ep"] = in_ep
        if out_ep is not None:
            eps["out_ep"] = out_ep
        self._p = Usb(idVendor=vid, idProduct=pid, timeout=int(timeout_s * 1000), **eps)
        self._open = False

    def open(self) -> None:
        if self._open:
            return
        try:
            self._p.open()
        except (DeviceNotFoundError, USBNotFoundError) as exc:
            raise OSError(f"not found on the USB bus; `lsusb` must list {self.ids}, and the "
                          "agent's user needs a udev rule giving it access") from exc
        except Exception as exc:  # usb.core.NoBackendError: libusb itself is missing
            raise OSError(f"USB unusable ({exc}); apt-get install libusb-1.0-0") from exc
        if not self._p.device:
            raise OSError("not found")
        self._open = True

    def write(self, data: bytes) -> None:
        try:
            self._p._raw(data)
        except Exception as exc:  # usb.core.USBError is no OSError
            raise OSError(str(exc)) from exc

    def read_byte(self, timeout_s: float) -> int | None:
        try:
            data = self._p.device.read(self._p.in_ep, 16, int(timeout_s * 1000))
        except Exception as exc:
            if "timed out" in str(exc).lower():
                return None
            raise OSError(str(exc)) from exc
        return data[0] if len(data) else None

    def close(self) -> None:
        self._open = False
        try:
            self._p.close()
        except Exception:
            self._p._device = False


class _FileTransport:
    per_job = False

    def __init__(self, path: str) -> None:
        self.where = path
        self._f: Any = None

    def open(self) -> None:
        if self._f is None:
            # append: a plain file used as a spool keeps every job; a device ignores it
            self._f = open(self.where, "ab", buffering=0)  # noqa: SIM115 - kept open

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()

    def read_byte(self, timeout_s: float) -> int | None:
        return None

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
        self._f = None


def _int(value: object) -> int:
    return int(str(value), 0)


def _transport(printer_id: str, url: str, opts: dict[str, Any]) -> _Transport:
    scheme, _, rest = url.partition(":")
    rest = rest.removeprefix("//")
    timeout_s = float(opts.get("timeout_s", 3))
    try:
        if scheme == "escpos-net":
            host, sep, port = rest.rpartition(":")
            if not sep:
                host, port = rest, "9100"
            if not host:
                raise ValueError("no host")
            return _NetTransport(host.strip("[]"), int(port), timeout_s)
        if scheme == "escpos-usb":
            vid, _, pid = rest.partition(":")
            in_ep = _int(opts["in_ep"]) if "in_ep" in opts else None
            out_ep = _int(opts["out_ep"]) if "out_ep" in opts else None
            return _UsbTransport(int(vid, 16), int(pid, 16), timeout_s, in_ep, out_ep)
        if scheme == "escpos-serial":
            if not rest:
                raise ValueError("no device")
            return _SerialTransport(rest, int(opts.get("baud", 19200)), timeout_s,
                                    option_bool(opts, "dsrdtr", False),
                                    option_bool(opts, "xonxoff", False))
        if scheme == "escpos-file":
            if not rest:
                raise ValueError("no path")
            return _FileTransport(rest)
    except (ValueError, KeyError) as exc:
        raise BadPeripheralUrl(
            f"printer {printer_id}: cannot read '{url}' ({exc}); expected e.g. "
            "escpos-net:192.168.1.50:9100, escpos-usb:04b8:0e15, "
            "escpos-serial:/dev/ttyUSB0?baud=19200 or escpos-file:/dev/usb/lp0"
        ) from exc
    raise BadPeripheralUrl(f"printer {printer_id}: '{scheme}:' is not an ESC/POS back-end")


class EscposPrinter:
    def __init__(self, printer_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = printer_id
        self.url = url
        base, _, query = url.partition("?")
        opts: dict[str, Any] = {**dict(parse_qsl(query)), **options}
        self._io = _transport(printer_id, base, opts)
        self.timeout_s = float(opts.get("timeout_s", 3))
        file_backend = isinstance(self._io, _FileTransport)
        self.query_status = not file_backend and option_bool(opts, "status", True)
        self.probe_on_start = option_bool(opts, "probe", True)
        self._lock = threading.Lock()
        self._started = False
        self._health = PeripheralHealth(HealthState.OK, "not checked yet")
        self.jobs_printed = 0
        self.last_status: PrinterStatus | None = None

    @property
    def where(self) -> str:
        return self._io.where

    def start(self) -> None:
        self._started = True
        if self.probe_on_start:
            threading.Thread(target=self.probe, name=f"printer-{self.id}-probe",
                             daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._started = False
            self._io.close()

    def health(self) -> PeripheralHealth:
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        return self._health

    def _fail(self, text: str, state: HealthState = HealthState.DOWN) -> PrinterError:
        message = f"printer {self.id} at {self.where} {text}"
        self._health = PeripheralHealth(state, message)
        return PrinterError(message)

    def _ask(self, n: int, timeout_s: float) -> int | None:
        self._io.write(DLE_EOT + bytes([n]))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            byte = self._io.read_byte(left)
            if byte is None:
                return None
            if _valid(byte):
                return byte
            # anything else is automatic status back (ASB) or noise: keep listening
        return None

    def _status(self) -> PrinterStatus:
        first = self._ask(STATUS_PRINTER, self.timeout_s)
        if first is None:
            raise self._fail(
                "does not answer status requests (DLE EOT): check power and cable; if this "
                "model never answers, set status = false for it")
        cause = self._ask(STATUS_OFFLINE_CAUSE, self.timeout_s) if first & 0x08 else None
        paper = self._ask(STATUS_PAPER, self.timeout_s)
        status = decode_status(first, cause, paper)
        self.last_status = status
        return status

    def probe(self) -> PeripheralHealth:
        """Ask the printer for its state without printing (for status pages/doctor)."""
        with self._lock:
            if not self._started:
                return self.health()  # stopped before the start-up probe ran
            try:
                self._io.open()
                try:
                    if self.query_status:
                        self._check(self._status())
                    self._health = self._ok()
                finally:
                    if self._io.per_job:
                        self._io.close()
            except PrinterError:
                pass
            except OSError as exc:
                self._io.close()
                self._fail(self._transport_text(exc))
        return self.health()

    def _check(self, status: PrinterStatus) -> None:
        problem = status.problem()
        if problem is not None:
            raise self._fail(problem)

    def _ok(self) -> PeripheralHealth:
        if self.last_status is not None and self.last_status.paper_near_end:
            return PeripheralHealth(HealthState.DEGRADED,
                                    f"printer {self.id}: paper near end, replace the roll soon")
        return PeripheralHealth.ok(f"{self.where}, {self.jobs_printed} jobs")

    def _transport_text(self, exc: BaseException) -> str:
        hint = ("check power, network cable and IP address" if isinstance(self._io, _NetTransport)
                else "check power and cable")
        return f"does not answer ({exc}): {hint}"

    def print_job(self, job: PrintJob) -> None:
        with self._lock:
            if not self._started:
                raise PrinterError(f"printer {self.id} is not started")
            try:
                self._io.open()
                try:
                    self._send(job)
                finally:
                    if self._io.per_job:
                        self._io.close()
            except PrinterError:
                if not self._io.per_job:
                    self._io.close()  # reopen on the next job
                raise
            except OSError as exc:
                self._io.close()
                raise self._fail(self._transport_text(exc)) from exc
            self.jobs_printed += 1
            self._health = self._ok()

    def _send(self, job: PrintJob) -> None:
        if self.query_status:
            self._check(self._status())
        self._io.write(job.payload)
        if not self.query_status:
            return
        # big raster jobs can fill the printer's buffer: the answer waits behind them
        after = self._ask(STATUS_PRINTER, max(self.timeout_s, 10.0))
        if after is None:
            raise self._fail(f"took job {job.job_id} but stopped answering: check whether "
                             "it printed before reprinting")
        if after & 0x08:
            raise self._fail(f"went offline during job {job.job_id} (paper out or cover "
                             "open?): check the printout and reprint if it is incomplete")
