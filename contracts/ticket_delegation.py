"""The tenant's delegation for a till's ticket issuer key as a line of text, so it can be
made on the bridge (``cloud-bridge till delegate``) and installed on the till (its local
``PUT /till/api/tickets/delegation``, docs/pos.md) by a technician.

"ETD1" + RFC 4648 base32 without padding of: issuer public key (32) | site tag (8) |
valid_to (u32, epoch s) | the tenant's signature (64) - the fields of
``contracts.ticket_token.IssuerDelegation``. The text authenticates itself: the till
checks it by signing a probe ticket with it and verifying that with the tenant public key
it already has (``agent/till/ticket_issuer.py``), exactly as a gate will.
"""

from __future__ import annotations

import base64
import binascii
import struct

from contracts.ticket_token import IssuerDelegation

PREFIX = "ETD1"
_LAYOUT = struct.Struct(">32s8sI64s")
MAX_CHARS = 200


def encode_delegation(delegation: IssuerDelegation) -> str:
    raw = _LAYOUT.pack(delegation.issuer_public_key, delegation.site_tag,
                       delegation.valid_to, delegation.signature)
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def decode_delegation(text: str) -> IssuerDelegation:
    """The delegation in ``text``; ValueError when it is not one (nothing is verified)."""
    text = text.strip()
    if not text.startswith(PREFIX) or len(text) > MAX_CHARS:
        raise ValueError(f"a delegation starts with {PREFIX} and has at most {MAX_CHARS} "
                         "characters")
    data = text[len(PREFIX):]
    try:
        raw = base64.b32decode(data + "=" * (-len(data) % 8), casefold=True)
    except (binascii.Error, ValueError):
        raise ValueError("a delegation is base32 after its prefix") from None
    if len(raw) != _LAYOUT.size:
        raise ValueError(f"a delegation has {_LAYOUT.size} bytes, this one {len(raw)}")
    issuer, tag, valid_to, signature = _LAYOUT.unpack(raw)
    return IssuerDelegation(issuer, tag, valid_to, signature)
