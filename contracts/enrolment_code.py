"""The shape of a one-time enrolment code, shared by the bridge that issues it
(cloud_bridge/enrolment.py) and the device that redeems it (agent/provisioning.py), so
a garbled code is refused on the device before anything goes over the network."""

from __future__ import annotations

import re

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud safely
CODE_LENGTH = 16  # 16 symbols of 30 ≈ 78 bits
_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_code(code: str) -> str:
    """Upper case, without the dashes and spaces people add when they copy it."""
    return _SEPARATORS.sub("", code).upper()


def well_formed(code: str) -> bool:
    norm = normalise_code(code)
    return len(norm) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in norm)
