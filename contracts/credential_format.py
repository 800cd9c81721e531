"""How a card UID and a QR text look on the wire: shared by the reader path on the device
and the bridge's API, which must accept exactly what a gate can later match."""

from __future__ import annotations

import re

_UID_SEPARATORS = re.compile(r"[\s:\-]")
_HEX_UID = re.compile(r"^(?:[0-9A-F]{2}){4,10}$")  # 4-byte NUID up to 10-byte triple UID
MAX_QR_LEN = 1024


def normalise_uid(value: str) -> str | None:
    """Upper-case hex of a 4-10 byte UID without separators, or None when it is not one."""
    uid = _UID_SEPARATORS.sub("", value).upper()
    return uid if _HEX_UID.match(uid) else None
