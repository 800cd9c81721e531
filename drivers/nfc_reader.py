"""NFC readers driven directly by nfcpy (no pcscd): ACR122U, SCL3711, PN532 boards on a
USB-serial adapter, Sony RC-S380. Reads the ISO 14443A UID of MIFARE Classic/DESFire and
NTAG cards (upper-case hex).

URLs::

    nfc:usb                    the first supported USB reader
    nfc:usb:072f:2200          by USB vendor:product (ACR122U)
    nfc:tty:ttyUSB0:pn532      a PN532 board on /dev/ttyUSB0 ("USB0" works too)
    nfc:udp:127.0.0.1:54321    nfcpy's simulated transport (tests; a card emulator listens)

Options: ``poll_ms`` (100: time between polls), ``absent_ms`` (300: a card not seen this
long has been taken away), ``holdoff_ms`` (1000: the same card counts again only this long
after it was taken away).

The reader polls with ``ContactlessFrontend.sense`` (the RF field is switched off between
polls, so a card left on the reader answers every poll and is recognised as the same
presentation). An unplugged reader makes health DOWN; the thread reopens it with back-off.
Phones (``phone``, default true): an ISO-DEP target (SEL_RES bit 0x20: phones in host
card emulation, DESFire cards) is activated (RATS) and asked for the member app's AID; a
phone that answers signs a fresh challenge and is delivered as a ``phone`` read
(drivers/phone_applet.py); anything else is read by its UID as before.

The kernel's pn533 modules must be blacklisted or nfcpy cannot claim a PN533-based reader
(systemd/blacklist-pn533.conf).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4

from drivers.errors import BadPeripheralUrl
from drivers.phone_applet import NotAPhone, PhoneAnswer, PhoneRefused, exchange
from drivers.protocols import CardRead, HealthState, ReadHandler
from drivers.reader_support import (
    Backoff,
    PollingReader,
    PresenceDebouncer,
    ReaderHealth,
    deliver,
    option_float,
)
from drivers.url_options import option_bool

log = logging.getLogger(__name__)

# start() waits this long for the first open attempt (see ReaderHealth.begin)


def nfcpy_path(url: str) -> str:
    """'nfc:tty:ttyUSB0:pn532' -> nfcpy's 'tty:USB0:pn532', and so on."""
    parts = url.partition(":")[2].split(":")
    kind = parts[0].lower()
    if kind == "usb" and len(parts) in (1, 2, 3):
        return ":".join(parts)
    if kind == "tty" and len(parts) == 3 and parts[1] and parts[2]:
        port = parts[1][3:] if parts[1].startswith("tty") else parts[1]
        return f"tty:{port}:{parts[2]}"
    if kind == "udp" and len(parts) <= 3:
        return ":".join(parts)
    raise BadPeripheralUrl(f"'{url}': expected nfc:usb, nfc:usb:VID:PID, "
                           "nfc:tty:ttyUSB0:pn532 or nfc:udp:HOST:PORT")


class NfcReader(PollingReader):
    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = reader_id
        self.url = url
        self.path = nfcpy_path(url)
        self.poll_s = option_float(options, "poll_ms", 100, 0, 5000) / 1000
        self.absent_s = option_float(options, "absent_ms", 300, 0, 10_000) / 1000
        self.holdoff_s = option_float(options, "holdoff_ms", 1000, 0, 60_000) / 1000
        self.phones = option_bool(options, "phone", True)
        self._health = ReaderHealth(reader_id)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the polling thread --------------------------------------------------------------

    def _open(self) -> nfc.ContactlessFrontend | None:
        clf = nfc.ContactlessFrontend()
        try:
            found = clf.open(self.path)
        except OSError as exc:  # fully qualified path that exists but cannot be opened
            self._health.set(HealthState.DOWN,
                             f"cannot open NFC reader {self.path}: {exc} — another program "
                             "(pcscd, the pn533 kernel module) may hold it; retrying")
            return None
        if not found:
            self._health.set(HealthState.DOWN,
                             f"no NFC reader found on {self.path} — plug it in, check the "
                             "USB IDs/port and the pn533 blacklist; retrying")
            return None
        return clf

    def _run(self, on_read: ReadHandler) -> None:
        backoff = Backoff(0.2, 5.0)
        debounce = PresenceDebouncer(self.absent_s, self.holdoff_s)
        while not self._stop.is_set():
            clf = self._open()
            if clf is None:
                self._stop.wait(backoff.next_delay())
                continue
            backoff.reset()
            self._health.set(HealthState.OK, f"reader {clf.device} on {self.path}")
            try:
                self._poll(clf, debounce, on_read)
            except OSError as exc:  # USB unplugged, serial adapter gone
                self._health.set(HealthState.DOWN,
                                 f"NFC reader on {self.path} lost ({exc}); reopening")
                self._stop.wait(backoff.next_delay())
            except Exception as exc:  # a reader firmware/driver oddity: reopen, never die
                log.exception("reader %s: unexpected nfcpy error", self.id)
                self._health.set(HealthState.DOWN,
                                 f"NFC reader on {self.path} failed ({exc!r}); reopening")
                self._stop.wait(backoff.next_delay())
            finally:
                with contextlib.suppress(Exception):
                    clf.close()

    def _poll(self, clf: nfc.ContactlessFrontend, debounce: PresenceDebouncer,
              on_read: ReadHandler) -> None:
        target_type = nfc.clf.RemoteTarget("106A")
        while not self._stop.is_set():
            try:
                target = clf.sense(target_type, iterations=1)
            except nfc.clf.CommunicationError:
                target = None  # a card at the edge of the field; the next poll decides
            now = time.monotonic()
            uid_bytes = getattr(target, "sdd_res", None) if target is not None else None
            if target is not None and not uid_bytes:
                self._health.drop("unsupported_card")  # Type 1 (Topaz) has no sdd_res UID
            if uid_bytes:
                self._present(clf, target, bytes(uid_bytes).hex().upper(), now, debounce,
                              on_read)
            else:
                debounce.nothing(now)
            self._stop.wait(self.poll_s)

    def _present(self, clf: nfc.ContactlessFrontend, target: nfc.clf.RemoteTarget, uid: str,
                 now: float, debounce: PresenceDebouncer, on_read: ReadHandler) -> None:
        """Deliver what is on the reader: a phone's signed answer, or the UID."""
        iso_dep = bool(target.sel_res) and target.sel_res[0] & 0x20
        if self.phones and iso_dep:
            try:
                answer = _phone_answer(clf, target)
            except NotAPhone:
                pass
            except PhoneRefused as refused:
                self._health.drop(refused.drop)
                debounce.nothing(now)
                return
            else:
                key = answer.public_key.hex()
                if debounce.seen(key, now):
                    deliver(on_read, CardRead(self.id, "phone", key, now, answer.extra()))
                return
        if debounce.seen(uid, now):
            deliver(on_read, CardRead(self.id, "uid", uid, now))


def _phone_answer(clf: nfc.ContactlessFrontend, target: nfc.clf.RemoteTarget) -> PhoneAnswer:
    """Activate the ISO-DEP target (RATS) and run the applet exchange over it."""
    tag = nfc.tag.activate(clf, target)
    if not isinstance(tag, nfc.tag.tt4.Type4Tag):
        raise NotAPhone

    def transmit(apdu: bytes) -> bytes:
        try:
            return bytes(tag.transceive(bytearray(apdu)) or b"")
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError):
            return b""

    return exchange(transmit)
