"""PC/SC contactless readers (ACR122U, ACR1252U, Identiv uTrust, HID OMNIKEY 5x22...)
through pcscd, via pyscard.

URLs: ``pcsc:`` (the first reader pcscd knows) or ``pcsc:?reader=ACR122`` (the first whose
name contains the text, case-insensitive; option ``reader`` works too).

A polling thread waits in SCardGetStatusChange (bounded, so stop() is quick). When a card
arrives it connects, sends the PC/SC part 3 pseudo-APDU GET DATA (FF CA 00 00 00) and
delivers the UID if the status word is 90 00; other status words are dropped as
``bad_status`` (e.g. 6A 81: the reader does not support it for this card). Each insertion
is one read; the same card again counts only after removal plus ``holdoff_ms`` (800).

Phones (``phone``, default true): before GET DATA the reader SELECTs the member app's AID;
a phone that answers signs a fresh challenge and is delivered as a ``phone`` read
(drivers/phone_applet.py); a card without the applet is read by its UID as before.

Health: DOWN while pcscd is not running, no (matching) reader is connected or the reader
was unplugged; the thread keeps retrying with back-off and recovers without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from smartcard import scard

from drivers.phone_applet import NotAPhone, PhoneRefused, Transmit, exchange
from drivers.protocols import CardRead, HealthState, ReadHandler, ReadKind
from drivers.reader_support import (
    Backoff,
    PollingReader,
    PresenceDebouncer,
    ReaderHealth,
    deliver,
    option_float,
    split_query,
)
from drivers.url_options import option_bool

log = logging.getLogger(__name__)

# start() waits this long for the first open attempt (see ReaderHealth.begin)

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
_WAIT_MS = 250  # one SCardGetStatusChange wait: bounds how fast stop() returns
_SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED,
                 getattr(scard, "SCARD_E_INVALID_HANDLE", -1)}


class _ReaderLost(Exception):
    """The context or reader went away: start over with a new context."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _error_text(hresult: int) -> str:
    return f"{scard.SCardGetErrorMessage(hresult).strip()} (0x{hresult & 0xFFFFFFFF:08X})"


class PcscReader(PollingReader):
    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = reader_id
        self.url = url
        _base, query = split_query(url.partition(":")[2])
        opts = {**options, **query}
        self.name_match = str(opts.get("reader", "")).strip()
        self.holdoff_s = option_float(opts, "holdoff_ms", 800, 0, 60_000) / 1000
        self.phones = option_bool(opts, "phone", True)
        self._health = ReaderHealth(reader_id)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reader_name: str | None = None

    # -- the polling thread -----------------------------------------------------------

    def _run(self, on_read: ReadHandler) -> None:
        backoff = Backoff(0.2, 5.0)
        # removal is an explicit PC/SC event here, never inferred from missed polls
        debounce = PresenceDebouncer(absent_after_s=float("inf"), holdoff_s=self.holdoff_s)
        while not self._stop.is_set():
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                self._health.set(HealthState.DOWN,
                                 f"pcscd is not reachable: {_error_text(hresult)} — "
                                 "start it with 'systemctl start pcscd'")
                self._stop.wait(backoff.next_delay())
                continue
            try:
                reader = self._find_reader(context)
                if reader is None:
                    self._stop.wait(backoff.next_delay())
                    continue
                backoff.reset()
                self.reader_name = reader
                self._health.set(HealthState.OK, f"reader '{reader}' ready")
                self._watch(context, reader, debounce, on_read)
            except _ReaderLost as lost:
                # the debouncer keeps the card it saw: if it is still there when the reader
                # is back, that is the same presentation, not a new read
                self._health.set(HealthState.DOWN, lost.detail)
                self._stop.wait(backoff.next_delay())
            except Exception as exc:  # pyscard surprises: start over, never die
                log.exception("reader %s: unexpected PC/SC error", self.id)
                self._health.set(HealthState.DOWN, f"PC/SC error ({exc!r}); reconnecting")
                self._stop.wait(backoff.next_delay())
            finally:
                self.reader_name = None
                with contextlib.suppress(Exception):
                    scard.SCardReleaseContext(context)

    def _find_reader(self, context: int) -> str | None:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult in _SERVICE_GONE:
            raise _ReaderLost(f"pcscd stopped: {_error_text(hresult)}")
        if hresult != scard.SCARD_S_SUCCESS or not readers:
            self._health.set(HealthState.DOWN,
                             "no PC/SC reader connected — plug the reader in; for an ACR122U "
                             "check that the pn533 kernel modules are blacklisted")
            return None
        wanted = self.name_match.lower()
        for name in readers:
            if wanted in name.lower():
                return str(name)
        self._health.set(HealthState.DOWN, f"no reader name contains '{self.name_match}' "
                                           f"(connected: {', '.join(readers)})")
        return None

    def _watch(self, context: int, reader: str, debounce: PresenceDebouncer,
               on_read: ReadHandler) -> None:
        state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            hresult, states = scard.SCardGetStatusChange(context, _WAIT_MS, [(reader, state)])
            if hresult == scard.SCARD_E_TIMEOUT:
                continue
            if hresult != scard.SCARD_S_SUCCESS:
                raise _ReaderLost(f"reader '{reader}' lost: {_error_text(hresult)}; "
                                  "waiting for it to come back")
            _name, event, _atr = states[0]
            previous, state = state, event & ~scard.SCARD_STATE_CHANGED
            if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                raise _ReaderLost(f"reader '{reader}' unplugged; waiting for it to come back")
            present = bool(event & scard.SCARD_STATE_PRESENT) \
                and not event & scard.SCARD_STATE_MUTE
            if not present:
                debounce.removed()
                continue
            # pcsc-lite counts insertions/removals in the high 16 bits: a card swapped
            # between two waits still shows up as a new insertion
            if previous & scard.SCARD_STATE_PRESENT and previous >> 16 == event >> 16:
                continue  # same insertion, another flag changed (e.g. INUSE)
            seen_at = time.monotonic()
            read = self._read_card(context, reader)
            if read is not None and debounce.seen(read[1], seen_at):
                deliver(on_read, CardRead(self.id, read[0], read[1], seen_at, read[2]))

    def _read_card(self, context: int, reader: str
                   ) -> tuple[ReadKind, str, tuple[tuple[str, str], ...]] | None:
        """(kind, value, extra) of the card on the reader: a phone's signed answer, or
        the UID; None when dropped."""
        hresult, card, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult in _SERVICE_GONE:
            raise _ReaderLost(f"pcscd stopped: {_error_text(hresult)}")
        if hresult != scard.SCARD_S_SUCCESS:
            self._health.drop("card_error")  # taken away too fast, or not a card we can talk to
            return None
        try:
            if self.phones:
                try:
                    answer = exchange(_transmitter(card, protocol))
                    return "phone", answer.public_key.hex(), answer.extra()
                except NotAPhone:
                    pass  # a card: read its UID
                except PhoneRefused as refused:
                    self._health.drop(refused.drop)
                    return None
            hresult, response = scard.SCardTransmit(card, protocol, GET_UID)
            if hresult != scard.SCARD_S_SUCCESS:
                self._health.drop("card_error")
                return None
            if len(response) < 2 or response[-2:] != [0x90, 0x00]:
                self._health.drop("bad_status")
                return None
            uid = bytes(response[:-2])
            if not 4 <= len(uid) <= 10:
                self._health.drop("bad_format")
                return None
            return "uid", uid.hex().upper(), ()
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)


def _transmitter(card: int, protocol: int) -> Transmit:
    def transmit(apdu: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(card, protocol, list(apdu))
        return bytes(response) if hresult == scard.SCARD_S_SUCCESS else b""
    return transmit
