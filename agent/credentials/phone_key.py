"""A member's phone as a contactless credential, verified offline (docs/phone_nfc.md).

The reader ran the exchange (drivers/phone_applet.py): the phone gave its Ed25519 public
key and signed the reader's fresh challenge. Here the signature is checked against that
key; only then is the key looked up among the enrolled credentials, by the keyed hash
``credential_hash(tenant key, "phone", <public key hex>)`` the bridge put into the signed
membership data when the member enrolled the phone. So a key nobody enrolled opens
nothing, and a response recorded at an earlier tap (another challenge) does not verify.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.credential_hash import credential_hash
from contracts.reasons import Reason
from drivers.phone_applet import (
    CHALLENGE_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    signed_message,
)


class PhoneRejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _hex_field(extra: Sequence[tuple[str, str]], name: str, size: int) -> bytes:
    value = dict(extra).get(name, "")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise PhoneRejected(Reason.MALFORMED_CREDENTIAL, f"{name} is not {size} bytes of hex")
    return raw


def phone_lookup_hash(hmac_key: bytes, public_key_hex: str,
                      extra: Sequence[tuple[str, str]]) -> str:
    """The credential hash of a phone whose signature verified; raises PhoneRejected."""
    try:
        public = bytes.fromhex(public_key_hex)
    except ValueError:
        public = b""
    if len(public) != PUBLIC_KEY_BYTES:
        raise PhoneRejected(Reason.MALFORMED_CREDENTIAL, "phone key is not 32 bytes of hex")
    challenge = _hex_field(extra, "phone_challenge", CHALLENGE_BYTES)
    signature = _hex_field(extra, "phone_signature", SIGNATURE_BYTES)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, signed_message(challenge))
    except (InvalidSignature, ValueError) as exc:
        raise PhoneRejected(Reason.BAD_SIGNATURE, "phone signature does not verify") from exc
    return credential_hash(hmac_key, "phone", public.hex())
