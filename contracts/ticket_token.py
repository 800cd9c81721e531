"""Signed tickets and gift vouchers as printed QR codes, verified offline at a gate or a till.

A member's phone QR (``qr_token.py``) is short-lived and re-issued every 30 s by the
bridge. A ticket or voucher is the opposite: printed once (a till receipt, a PDF, an
e-mail) and shown days or months later, so it is long-lived and carries what it grants.
It is a bearer document: whoever shows it first uses it. Gates and tills count its use
locally (entries, amount) and report every use as an event; the bridge keeps the ledger.

Two signers are accepted, both ending at the tenant key the gates already trust
(``keys.tenant_public_key``), so no new trust configuration is needed:

- the **bridge** signs with the tenant key (version 1: body | signature);
- a **till** on the site signs with its own *issuer key*, carrying the tenant's
  delegation for that key (version 2: body | issuer public key | delegation valid_to |
  tenant signature over the delegation | issuer signature). A till that sells a ticket
  while the site is offline therefore prints a code every gate of the site accepts at
  once, without the bridge. The delegation is bound to one site (a till of site A cannot
  issue for site B) and expires; tickets tenant-wide (site tag zero) come only from the
  bridge.

Body (40 bytes, big-endian): version (1) | kind (1) | ticket id (UUID, 16) | valid_from
(u32, epoch s) | valid_to (u32) | entries (u16, 0 = not an entry ticket) | value in cents
(u32, 0 = no money value) | site tag (8: the first 8 bytes of SHA-256 of the site id,
zero = any site of the tenant). Encoded as "ET1" + RFC 4648 base32 without padding (QR
alphanumeric mode): 170 characters for version 1, 330 for version 2 (a version 11 QR at
error correction M, 61x61 modules, about 30 mm on an 80 mm receipt).

Each signature covers a context label before what it signs, so nothing else the tenant
key signs (membership batches, member QR tokens) can pass as a ticket or a delegation.
Written by hand because it is a fixed binary layout over ``cryptography``'s Ed25519; no
library defines a compact offline-verifiable ticket that fits a receipt's QR code.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import struct
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.reasons import Reason

PREFIX = "ET1"
TICKET_CONTEXT = b"edge-suite/ticket-token\x00"
DELEGATION_CONTEXT = b"edge-suite/ticket-issuer\x00"
_BODY = struct.Struct(">BB16sIIHI8s")
_DELEGATION = struct.Struct(">32sI")  # issuer public key | delegation valid_to
_SIG = 64
_BY_TENANT = 1
_BY_ISSUER = 2
_U32 = (1 << 32) - 1
ANY_SITE = bytes(8)
MAX_TOKEN_CHARS = 400


class TicketKind(enum.IntEnum):
    DAY_TICKET = 1  # entries on the day(s) of its validity
    ENTRY_VOUCHER = 2  # a number of entries (a gift of N visits)
    VALUE_VOUCHER = 3  # an amount in cents, spent at a till or exchanged for a ticket


@dataclass(frozen=True, slots=True)
class TicketToken:
    kind: TicketKind
    ticket_id: str
    valid_from: int
    valid_to: int
    entries: int
    value_cents: int
    site_tag: bytes
    # hex SHA-256 of the issuer's public key; "tenant" when the bridge signed it
    issuer: str


@dataclass(frozen=True, slots=True)
class IssuerDelegation:
    """The tenant's word that ``issuer_public_key`` may issue tickets for one site."""

    issuer_public_key: bytes
    site_tag: bytes
    valid_to: int
    signature: bytes


class TicketRejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def site_tag(site_id: str | None) -> bytes:
    """The 8-byte tag a ticket binds its site with; ``None`` = any site of the tenant."""
    if site_id is None:
        return ANY_SITE
    return hashlib.sha256(b"edge-suite/site\x00" + site_id.encode()).digest()[:8]


def looks_like_ticket(text: str) -> bool:
    return text.startswith(PREFIX)


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def delegate_issuer(
    tenant_key: Ed25519PrivateKey, issuer_public_key: bytes, site_id: str, valid_to: int
) -> IssuerDelegation:
    """Sign that a till's issuer key may issue tickets for ``site_id`` until ``valid_to``."""
    if len(issuer_public_key) != 32 or not 0 < valid_to <= _U32:
        raise ValueError("an issuer key is 32 bytes and valid_to an epoch second")
    tag = site_tag(site_id)
    signed = DELEGATION_CONTEXT + tag + _DELEGATION.pack(issuer_public_key, valid_to)
    return IssuerDelegation(issuer_public_key, tag, valid_to, tenant_key.sign(signed))


def issue_ticket(
    signer: Ed25519PrivateKey,
    *,
    kind: TicketKind,
    ticket_id: str,
    valid_from: int,
    valid_to: int,
    entries: int = 0,
    value_cents: int = 0,
    site_id: str | None = None,
    delegation: IssuerDelegation | None = None,
) -> str:
    """A printed ticket's text. ``signer`` is the tenant key, or a till's issuer key with
    its ``delegation`` (then the ticket must be for the delegation's site)."""
    if not 0 <= valid_from < valid_to <= _U32:
        raise ValueError("ticket times must be epoch seconds with valid_from < valid_to")
    if not 0 <= entries <= 0xFFFF or not 0 <= value_cents <= _U32:
        raise ValueError("entries must fit 16 bits and the value 32 bits")
    if (entries > 0) == (value_cents > 0) and kind != TicketKind.DAY_TICKET:
        raise ValueError("a voucher carries either entries or a value")
    if kind == TicketKind.DAY_TICKET and entries == 0:
        raise ValueError("a day ticket carries at least one entry")
    tag = site_tag(site_id)
    version = _BY_TENANT if delegation is None else _BY_ISSUER
    body = _BODY.pack(version, int(kind), uuid.UUID(ticket_id).bytes, valid_from, valid_to,
                      entries, value_cents, tag)
    if delegation is None:
        raw = body + signer.sign(TICKET_CONTEXT + body)
    else:
        if delegation.site_tag != tag or tag == ANY_SITE:
            raise ValueError("a till issues tickets only for the site of its delegation")
        if public_bytes(signer.public_key()) != delegation.issuer_public_key:
            raise ValueError("the signer is not the delegated issuer key")
        chain = (_DELEGATION.pack(delegation.issuer_public_key, delegation.valid_to)
                 + delegation.signature)
        raw = body + chain + signer.sign(TICKET_CONTEXT + body + chain)
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    if len(text) > MAX_TOKEN_CHARS:
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, "ticket code too long")
    data = text[len(PREFIX):]
    try:
        raw = base64.b32decode(data + "=" * (-len(data) % 8), casefold=True)
    except (binascii.Error, ValueError):
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, "ticket is not base32") from None
    if base64.b32encode(raw).decode().rstrip("=") != data.upper():
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, "ticket is not canonical base32")
    return raw


def _verify(key: Ed25519PublicKey, signature: bytes, signed: bytes, what: str) -> None:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        raise TicketRejected(Reason.BAD_SIGNATURE, f"{what} signature does not verify") from None


def _check_signatures(raw: bytes, version: int, tenant_key: Ed25519PublicKey) -> str:
    """Verify the signature chain of a decoded ticket; returns the issuer label."""
    body = raw[: _BODY.size]
    if version == _BY_TENANT:
        if len(raw) != _BODY.size + _SIG:
            raise TicketRejected(Reason.MALFORMED_CREDENTIAL, f"ticket has {len(raw)} bytes")
        _verify(tenant_key, raw[_BODY.size:], TICKET_CONTEXT + body, "ticket")
        return "tenant"
    if len(raw) != _BODY.size + _DELEGATION.size + 2 * _SIG:
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, f"ticket has {len(raw)} bytes")
    end = _BODY.size + _DELEGATION.size
    issuer_raw, delegation_to = _DELEGATION.unpack(raw[_BODY.size:end])
    delegation_sig, ticket_sig = raw[end:end + _SIG], raw[end + _SIG:]
    tag = body[-8:]
    if tag == ANY_SITE:
        raise TicketRejected(Reason.BAD_SIGNATURE, "a till-issued ticket names no site")
    _verify(tenant_key, delegation_sig,
            DELEGATION_CONTEXT + tag + raw[_BODY.size:end], "issuer delegation")
    issuer = Ed25519PublicKey.from_public_bytes(issuer_raw)
    _verify(issuer, ticket_sig, TICKET_CONTEXT + raw[:end + _SIG], "ticket")
    valid_from = _BODY.unpack(body)[3]
    if valid_from > delegation_to:
        raise TicketRejected(Reason.EXPIRED, "the till's issuer delegation had expired")
    return hashlib.sha256(issuer_raw).hexdigest()


def verify_ticket(
    text: str, tenant_key: Ed25519PublicKey, now_s: int, site_id: str | None
) -> TicketToken:
    """Encoding, signatures, site and validity of a ticket; raises TicketRejected.

    ``site_id`` is the verifying device's site (None: a device with no site accepts only
    tenant-wide tickets)."""
    raw = _decode(text)
    if len(raw) < _BODY.size:
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, f"ticket has {len(raw)} bytes")
    version, kind, tid, valid_from, valid_to, entries, value, tag = _BODY.unpack(
        raw[: _BODY.size])
    if version not in (_BY_TENANT, _BY_ISSUER):
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, f"ticket version {version}")
    if kind not in TicketKind._value2member_map_:
        raise TicketRejected(Reason.MALFORMED_CREDENTIAL, f"ticket kind {kind}")
    issuer = _check_signatures(raw, version, tenant_key)
    if tag not in (ANY_SITE, site_tag(site_id)):
        raise TicketRejected(Reason.WRONG_ZONE, "the ticket is for another site")
    if now_s < valid_from:
        raise TicketRejected(Reason.NOT_YET_VALID, "ticket not yet valid")
    if now_s >= valid_to:
        raise TicketRejected(Reason.EXPIRED, "ticket expired")
    return TicketToken(TicketKind(kind), str(uuid.UUID(bytes=tid)), valid_from, valid_to,
                       entries, value, tag, issuer)
