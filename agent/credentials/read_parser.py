"""Turns what a reader delivered into something to look up, or into a reason to refuse.

Reader input is untrusted: empty reads, binary noise and 10 kB lines end here as
MALFORMED_CREDENTIAL instead of reaching the store.

Four kinds of credential come out of here: a plain card UID and a static code (looked up
by keyed hash, copyable), a signed member QR token and a verified NTAG 424 SUN read
(``secure``: neither can be forged, and both are refused when replayed). A SUN read
arrives either as a URL (the NDEF message of the card, read by a phone or a reader that
returns the NDEF URL, or shown as a QR code) with ``picc_data``/``cmac`` (or ``e``/``c``)
query parameters, or from a reader back-end as a UID read whose ``extra`` carries the
same parameters under the keys of ``SUN_EXTRA_KEYS``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.credentials.ntag424_sun import SunKeys, SunMessage, SunRead, SunRejected, verify_sun
from agent.credentials.phone_key import PhoneRejected, phone_lookup_hash
from contracts.credential_format import MAX_QR_LEN, normalise_uid
from contracts.credential_hash import credential_hash, hash_ref
from contracts.qr_token import QrToken, TokenRejected, looks_like_token, verify_token
from contracts.reasons import Reason
from contracts.ticket_token import TicketRejected, TicketToken, looks_like_ticket, verify_ticket

_HEX = re.compile(r"^[0-9A-Fa-f]*$")
# URL query names of the SUN parameters, as NXP's examples and most deployments use them
_PICC_NAMES = ("picc_data", "e")
_CMAC_NAMES = ("cmac", "c")
_ENC_NAME = "enc"
# keys a reader back-end puts into CardRead.extra for a SUN read (hex values);
# "sun_mac_input" is optional (hex of the bytes the card MACs, empty by default)
SUN_EXTRA_KEYS = ("sun_picc_data", "sun_cmac", "sun_mac_input")


@dataclass(frozen=True, slots=True)
class ParsedCredential:
    problem: Reason | None = None
    detail: str = ""
    lookup_hash: str | None = None
    token: QrToken | None = None
    sun: SunRead | None = None
    phone: bool = False  # a phone's signature over a fresh challenge (phone_key.py)
    ticket: TicketToken | None = None  # a printed ticket or voucher, verified

    @property
    def secure(self) -> bool:
        """True for credentials that cannot be copied: signed tokens, SUN reads and
        phones that signed the reader's challenge."""
        return (self.token is not None or self.sun is not None or self.phone
                or self.ticket is not None)

    @property
    def ref(self) -> str | None:
        """Short keyed-hash reference for events; never the UID or code."""
        if self.lookup_hash is not None:
            return hash_ref(self.lookup_hash)
        if self.token is not None:
            return self.token.credential_id
        if self.ticket is not None:
            return f"ticket:{self.ticket.ticket_id}"
        return None


def _printable(text: str) -> bool:
    return text.isprintable()


def _hex_param(value: str, length: int, name: str) -> bytes:
    if len(value) != length or not _HEX.match(value):
        raise SunRejected(Reason.MALFORMED_CREDENTIAL,
                          f"SUN parameter {name} is not {length} hex digits")
    return bytes.fromhex(value)


def sun_message_from_url(text: str) -> SunMessage | None:
    """The SUN parameters of an NDEF/QR URL, or None when the URL carries none.

    ``...?picc_data=<32 hex>&cmac=<16 hex>`` (or ``e=``/``c=``) is NXP's usual layout, where
    the MAC covers no URL text. With SDMENCFileData (``&enc=<hex>&cmac=``, AN12196's second
    example) the MAC input window starts at the enc value and ends where the MAC begins.
    Raises SunRejected when the parameters are there but malformed."""
    if "?" not in text:
        return None
    query = urlsplit(text).query
    params = dict(parse_qsl(query, keep_blank_values=True))
    picc_name = next((n for n in _PICC_NAMES if n in params), None)
    cmac_name = next((n for n in _CMAC_NAMES if n in params), None)
    if picc_name is None and cmac_name is None:
        return None
    if picc_name is None or cmac_name is None:
        raise SunRejected(Reason.MALFORMED_CREDENTIAL, "SUN URL lacks picc_data or cmac")
    picc = _hex_param(params[picc_name], 32, picc_name)
    mac = _hex_param(params[cmac_name], 16, cmac_name)
    mac_input = b""
    if _ENC_NAME in params:
        enc = params[_ENC_NAME]
        if not enc or len(enc) % 32 or len(enc) > 512 or not _HEX.match(enc):
            raise SunRejected(Reason.MALFORMED_CREDENTIAL, "SUN enc is not whole AES blocks")
        start = query.find(f"{_ENC_NAME}={enc}")
        end = query.find(f"{cmac_name}={params[cmac_name]}")
        if start < 0 or end < start:
            raise SunRejected(Reason.MALFORMED_CREDENTIAL, "SUN URL parameters out of order")
        mac_input = query[start + len(_ENC_NAME) + 1:end + len(cmac_name) + 1].encode()
    return SunMessage(picc, mac, mac_input)


def sun_message_from_extra(extra: Sequence[tuple[str, str]]) -> SunMessage | None:
    """The SUN parameters a reader back-end attached to a UID read, or None."""
    fields = {k: v for k, v in extra if k in SUN_EXTRA_KEYS}
    if not fields:
        return None
    if "sun_picc_data" not in fields or "sun_cmac" not in fields:
        raise SunRejected(Reason.MALFORMED_CREDENTIAL, "reader sent incomplete SUN data")
    mac_input = fields.get("sun_mac_input", "")
    if len(mac_input) > 512 or len(mac_input) % 2 or not _HEX.match(mac_input):
        raise SunRejected(Reason.MALFORMED_CREDENTIAL, "reader sent a bad SUN MAC input")
    return SunMessage(_hex_param(fields["sun_picc_data"], 32, "sun_picc_data"),
                      _hex_param(fields["sun_cmac"], 16, "sun_cmac"), bytes.fromhex(mac_input))


def _parse_sun(message: SunMessage, hmac_key: bytes, sun_keys: SunKeys | None,
               claimed_uid: str | None = None) -> ParsedCredential:
    if sun_keys is None:
        return ParsedCredential(Reason.BAD_SIGNATURE, "SUN card but no SDM keys configured")
    try:
        read = verify_sun(message, sun_keys)
    except SunRejected as exc:
        return ParsedCredential(exc.reason, str(exc))
    if claimed_uid is not None and len(claimed_uid) == 14 and claimed_uid != read.uid_hex:
        # a genuine message relayed from another card: the anticollision UID disagrees
        return ParsedCredential(Reason.BAD_SIGNATURE, "SUN message belongs to another card")
    return ParsedCredential(lookup_hash=credential_hash(hmac_key, "uid", read.uid_hex), sun=read)


def _parse_ticket(text: str, public_key: Ed25519PublicKey | None, now_s: int,
                  site_id: str | None) -> ParsedCredential:
    if public_key is None:
        return ParsedCredential(Reason.BAD_SIGNATURE,
                                "printed ticket but no keys.tenant_public_key configured")
    try:
        return ParsedCredential(ticket=verify_ticket(text, public_key, now_s, site_id))
    except TicketRejected as exc:
        return ParsedCredential(exc.reason, str(exc))


def parse_read(
    kind: str,
    value: str,
    hmac_key: bytes,
    public_key: Ed25519PublicKey | None,
    now_s: int,
    sun_keys: SunKeys | None = None,
    extra: Sequence[tuple[str, str]] = (),
    site_id: str | None = None,
) -> ParsedCredential:
    """``site_id``: the device's site (config.site), which a printed ticket is bound to."""
    if kind == "uid":
        if len(value) > 64:
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, f"UID read of {len(value)} chars")
        uid = normalise_uid(value)
        try:
            sun_message = sun_message_from_extra(extra)
        except SunRejected as exc:
            return ParsedCredential(exc.reason, str(exc))
        if sun_message is not None:
            return _parse_sun(sun_message, hmac_key, sun_keys, uid)
        if uid is None:
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, "UID is not 4-10 bytes of hex")
        return ParsedCredential(lookup_hash=credential_hash(hmac_key, "uid", uid))
    if kind == "qr":
        text = value.strip()
        if not text:
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, "empty code")
        if len(text) > MAX_QR_LEN:
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, f"code of {len(text)} chars")
        if not _printable(text):
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, "code has control characters")
        if looks_like_ticket(text):
            return _parse_ticket(text, public_key, now_s, site_id)
        if looks_like_token(text):
            if public_key is None:
                return ParsedCredential(
                    Reason.BAD_SIGNATURE, "signed token but no keys.tenant_public_key configured"
                )
            try:
                return ParsedCredential(token=verify_token(text, public_key, now_s))
            except TokenRejected as exc:
                return ParsedCredential(exc.reason, str(exc))
        try:
            sun_message = sun_message_from_url(text)
        except SunRejected as exc:
            return ParsedCredential(exc.reason, str(exc))
        if sun_message is not None:
            return _parse_sun(sun_message, hmac_key, sun_keys)
        return ParsedCredential(lookup_hash=credential_hash(hmac_key, "qr", text))
    if kind == "phone":
        try:
            return ParsedCredential(lookup_hash=phone_lookup_hash(hmac_key, value, extra),
                                    phone=True)
        except PhoneRejected as exc:
            return ParsedCredential(exc.reason, str(exc))
    return ParsedCredential(Reason.MALFORMED_CREDENTIAL, f"unknown read kind {kind!r}")
