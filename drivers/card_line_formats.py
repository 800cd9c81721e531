"""Line formats of serial card readers and scanners: one text line in, one read out.

Every parser returns a ``LineResult``: a read (kind and value) or the counted reason the
line was dropped. Reader input is untrusted, so nothing here raises on bad input.

Formats (option ``format``):

``hex``
    The UID as hex digits, separators ``: - space`` allowed (``04:A1:B2:C3``), 4-10 bytes.
``dec10``
    The 10-digit decimal many USB/serial Mifare and EM readers print (``0012345678``),
    a 32-bit number. ``dec_order`` says how it maps to the 4 UID bytes:
    ``reversed`` (default; what Mifare readers in "10-digit decimal" mode do: they print the
    first 4 UID bytes read as a *little-endian* integer, so UID ``04 A1 B2 C3`` prints as
    ``0xC3B2A104`` = ``3283263748``) or ``msb`` (EM4100 readers and the number printed on
    EM cards: the low 32 bits of the ID, most significant byte first).
``wiegand26`` / ``wiegand34``
    Either the raw frame as a bit string (``0`` and ``1``, 26 or 34 of them, leading even
    parity over the first half, trailing odd parity over the second half; both checked) or
    decimal ``FC,CARD`` (``:`` or ``/`` also accepted; FC 0-255 and CARD 0-65535 for 26
    bits, both 0-65535 for 34 bits; no parity to check). The value is the data bits as an
    8-hex-digit number (FC then card number, zero padded), which is what the agent stores
    as the card's UID.
``qr``
    A barcode/QR scanner in serial mode: the whole line is the code text (kind ``qr``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from drivers.protocols import ReadKind

DropReason = Literal["bad_format", "bad_parity", "noise", "too_long"]
FORMATS = ("hex", "dec10", "wiegand26", "wiegand34", "qr")
DEC_ORDERS = ("reversed", "msb")

_SEPARATORS = re.compile(r"[\s:\-]")
_HEX = re.compile(r"^(?:[0-9A-F]{2}){4,10}$")
_DEC10 = re.compile(r"^\d{10}$")
_BITS = re.compile(r"^[01]+$")
_FC_CARD = re.compile(r"^(\d{1,5})\s*[,:/]\s*(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class LineResult:
    kind: ReadKind | None = None
    value: str = ""
    dropped: DropReason | None = None


def _drop(reason: DropReason) -> LineResult:
    return LineResult(dropped=reason)


def _printable(text: str) -> bool:
    return text.isprintable()


def parse_hex(text: str) -> LineResult:
    uid = _SEPARATORS.sub("", text).upper()
    return LineResult("uid", uid) if _HEX.match(uid) else _drop("bad_format")


def parse_dec10(text: str, order: str = "reversed") -> LineResult:
    if not _DEC10.match(text):
        return _drop("bad_format")
    number = int(text)
    if number >= 1 << 32:
        return _drop("bad_format")
    raw = number.to_bytes(4, "little" if order == "reversed" else "big")
    return LineResult("uid", raw.hex().upper())


def _parity_ok(bits: str) -> bool:
    half = (len(bits) - 2) // 2
    first = bits[0: 1 + half]  # even parity bit + first half of the data
    second = bits[1 + half:]  # second half of the data + odd parity bit
    return first.count("1") % 2 == 0 and second.count("1") % 2 == 1


def parse_wiegand(text: str, length: int) -> LineResult:
    data_bits = length - 2
    if _BITS.match(text):
        if len(text) != length:
            return _drop("bad_format")
        if not _parity_ok(text):
            return _drop("bad_parity")
        data = int(text[1:-1], 2)
    else:
        m = _FC_CARD.match(text)
        if m is None:
            return _drop("bad_format")
        fc, card = int(m.group(1)), int(m.group(2))
        fc_bits = data_bits - 16
        if fc >= 1 << fc_bits or card >= 1 << 16:
            return _drop("bad_format")
        data = fc << 16 | card
    return LineResult("uid", f"{data:08X}")


def parse_qr(text: str) -> LineResult:
    return LineResult("qr", text)


def parse_line(raw: bytes, fmt: str, dec_order: str = "reversed") -> LineResult:
    """One framed line (terminators already removed) -> a read or a drop reason."""
    try:
        text = raw.decode("utf-8" if fmt == "qr" else "ascii")
    except UnicodeDecodeError:
        return _drop("noise")
    if not _printable(text):
        return _drop("noise")
    text = text.strip()
    if not text:
        return _drop("noise")
    if fmt == "hex":
        return parse_hex(text)
    if fmt == "dec10":
        return parse_dec10(text, dec_order)
    if fmt == "wiegand26":
        return parse_wiegand(text, 26)
    if fmt == "wiegand34":
        return parse_wiegand(text, 34)
    if fmt == "qr":
        return parse_qr(text)
    raise ValueError(f"unknown format {fmt!r}")  # options are validated at construction


STX, ETX = 0x02, 0x03
_TERMINATORS = frozenset(b"\r\n\x03")


class LineFramer:
    """Splits a byte stream into lines on CR, LF or ETX; STX starts a fresh frame.

    Lines longer than ``max_line`` bytes are dropped whole (``too_long``): the rest of the
    frame up to the next terminator is skipped, so a reader streaming garbage cannot grow
    memory. Empty lines (the LF of a CR LF pair) produce nothing."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | DropReason]:
        out: list[bytes | DropReason] = []
        for byte in data:
            if byte == STX:
                if self._buf and not self._skipping:
                    out.append("noise")  # a frame cut short by the next one
                self._buf.clear()
                self._skipping = False
            elif byte in _TERMINATORS:
                if not self._skipping and self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                self._skipping = False
            elif not self._skipping:
                self._buf.append(byte)
                if len(self._buf) > self.max_line:
                    out.append("too_long")
                    self._buf.clear()
                    self._skipping = True
        return out

    def reset(self) -> bool:
        """Forget a partial line (the port was reopened); True if there was one."""
        partial = bool(self._buf) and not self._skipping
        self._buf.clear()
        self._skipping = False
        return partial
