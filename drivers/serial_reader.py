"""Serial card readers and scanners (USB-serial RFID readers, Wiegand-to-serial
converters, barcode/QR scanners in serial mode), via pyserial's ``serial_for_url``.

URLs::

    serial:///dev/ttyUSB0?baud=9600&format=hex     a device path (three slashes)
    serial:///dev/serial/by-id/usb-...?format=dec10
    serial:loop://?format=qr                       any pyserial URL (loop://, socket://, rfc2217://)

Options (config table or URL query; the query wins): ``baud`` (9600), ``format`` (hex,
dec10, wiegand26, wiegand34, qr — see ``drivers.card_line_formats``), ``dec_order``
(reversed|msb), ``max_line`` (bytes, 256), ``holdoff_ms`` (same value again within this
time is dropped as ``repeat``: readers repeat a card held in the field; 1000).

A port that cannot be opened or vanishes (USB unplugged) makes health DOWN and the reader
keeps retrying with back-off; it comes back by itself when the port reappears.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import serial

from drivers.card_line_formats import DEC_ORDERS, FORMATS, LineFramer, parse_line
from drivers.errors import BadPeripheralUrl
from drivers.protocols import CardRead, HealthState, ReadHandler
from drivers.reader_support import (
    Backoff,
    PollingReader,
    ReaderHealth,
    deliver,
    option_float,
    split_query,
)

log = logging.getLogger(__name__)

# start() waits this long for the first open attempt (see ReaderHealth.begin)

_OUR_KEYS = ("baud", "format", "dec_order", "max_line", "holdoff_ms")
# how long one read() may block: bounds how fast stop() returns
_READ_TIMEOUT_S = 0.1


def parse_serial_url(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """'serial:...' -> (pyserial port or URL, merged options)."""
    rest = url.partition(":")[2]
    if not rest:
        raise BadPeripheralUrl("serial reader URL needs a port, e.g. "
                               "'serial:///dev/ttyUSB0?format=hex' or 'serial:loop://'")
    base, query = split_query(rest)
    merged = dict(options)
    passthrough = []
    for key, value in query.items():
        if key in _OUR_KEYS:
            merged[key] = value
        else:
            passthrough.append(f"{key}={value}")
    if base.startswith("///"):
        port = base[2:]
    elif "://" in base:
        port = base + ("?" + "&".join(passthrough) if passthrough else "")
    elif base.startswith("/"):
        port = base
    else:
        raise BadPeripheralUrl(f"'{url}': give a device path as serial:///dev/ttyUSB0 "
                               "or a pyserial URL as serial:loop://")
    return port, merged


class SerialReader(PollingReader):
    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = reader_id
        self.url = url
        self.port_name, opts = parse_serial_url(url, options)
        self.baud = int(option_float(opts, "baud", 9600, 50, 4_000_000))
        self.format = str(opts.get("format", "hex"))
        if self.format not in FORMATS:
            raise BadPeripheralUrl(f"format '{self.format}' unknown (known: {', '.join(FORMATS)})")
        self.dec_order = str(opts.get("dec_order", "reversed"))
        if self.dec_order not in DEC_ORDERS:
            raise BadPeripheralUrl(f"dec_order must be one of {', '.join(DEC_ORDERS)}")
        self.max_line = int(option_float(opts, "max_line", 256, 16, 65536))
        self.holdoff_s = option_float(opts, "holdoff_ms", 1000, 0, 60_000) / 1000
        self._health = ReaderHealth(reader_id)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the open port; tests and the bench write into a loop:// port through it
        self.port: serial.Serial | None = None
        self._last: tuple[str, float] | None = None

    # -- lifecycle ---------------------------------------------------------------

    def wait_open(self, timeout: float) -> bool:
        """For tests and the bench: True once the port is open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port is not None and self._health.state is HealthState.OK:
                return True
            time.sleep(0.01)
        return False

    # -- the reader thread --------------------------------------------------------

    def _open(self) -> serial.Serial:
        # typed as pyserial's stubs type serial_for_url; URL handlers (loop://, socket://)
        # return their own classes with the same interface
        port = serial.serial_for_url(self.port_name, baudrate=self.baud,
                                     timeout=_READ_TIMEOUT_S, do_not_open=True)
        port.open()
        return port

    def _run(self, on_read: ReadHandler) -> None:
        backoff = Backoff()
        framer = LineFramer(self.max_line)
        while not self._stop.is_set():
            try:
                port = self._open()
            except (serial.SerialException, OSError, ValueError) as exc:
                delay = backoff.next_delay()
                self._health.set(HealthState.DOWN,
                                 f"cannot open {self.port_name}: {exc} — check the cable, the "
                                 f"device path and that the agent user may open it "
                                 f"(dialout group); retrying with back-off up to "
                                 f"{backoff.maximum_s:g} s")
                self._stop.wait(delay)
                continue
            self.port = port
            backoff.reset()
            if framer.reset():
                self._health.drop("noise")  # a line cut off when the port went away
            self._health.set(HealthState.OK, f"reading {self.port_name} at {self.baud} baud, "
                                             f"format {self.format}")
            try:
                self._read_loop(port, framer, on_read)
            except (serial.SerialException, OSError) as exc:
                self._health.set(HealthState.DOWN,
                                 f"{self.port_name} vanished ({exc}); reopening")
                self._stop.wait(backoff.next_delay())
            except Exception as exc:  # never let the reader thread die
                log.exception("reader %s: unexpected error on %s", self.id, self.port_name)
                self._health.set(HealthState.DOWN,
                                 f"{self.port_name} failed ({exc!r}); reopening")
                self._stop.wait(backoff.next_delay())
            finally:
                self.port = None
                with contextlib.suppress(Exception):  # closing a dead port may fail too
                    port.close()

    def _read_loop(self, port: serial.Serial, framer: LineFramer,
                   on_read: ReadHandler) -> None:
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            now = time.monotonic()
            for item in framer.feed(data):
                if isinstance(item, str):
                    self._health.drop(item)
                    continue
                result = parse_line(item, self.format, self.dec_order)
                if result.dropped is not None:
                    self._health.drop(result.dropped)
                    continue
                assert result.kind is not None
                if self._last is not None and self._last[0] == result.value \
                        and now - self._last[1] < self.holdoff_s:
                    # a reader repeating a card held still: one read until it pauses
                    self._last = (result.value, now)
                    self._health.drop("repeat")
                    continue
                self._last = (result.value, now)
                deliver(on_read, CardRead(self.id, result.kind, result.value, now))
