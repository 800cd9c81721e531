"""Compact signed member QR tokens (Ed25519, tenant key), verified offline at the gate.

Layout before encoding (93 bytes): version (1) | credential id (UUID, 16) |
valid_from (u32, epoch s) | valid_to (u32) | time step (u32, epoch s // step) | signature (64).
Encoded as "ES1" + RFC 4648 base32 without padding: only characters of the QR
alphanumeric mode, so the code stays small for cheap scanners (152 characters: a version 6
QR code at error correction M, 41x41 modules, easy for a turnstile camera on a phone screen).

What a token binds: the credential (a UUID known only to the member's devices and the
bridge), its validity, and the 30 s time step it was issued in; the tenant through the
signing key. The signature covers a context label before the body, so nothing else the
tenant key signs (membership batches) can ever pass as a token, nor a token as a batch.
Freshness: a token is accepted within ``TOKEN_SKEW_STEPS`` steps of the gate's clock; the
bridge issues it from its own (NTP) clock, so phone clocks do not matter. Within that
window ``replay_guard`` refuses a second use at this device (docs/security.md discusses
the residual window across devices of one site).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.reasons import Reason

PREFIX = "ES1"
VERSION = 1
STEP_S = 30
TOKEN_SKEW_STEPS = 2  # ±60 s of phone/gate clock difference
_BODY = struct.Struct(">B16sIII")
_SIG_LEN = 64
# domain separation: what the Ed25519 signature actually covers is this label + body
SIGN_CONTEXT = b"edge-suite/member-qr-token\x00"
TOKEN_CHARS = len(PREFIX) + -(-(_BODY.size + _SIG_LEN) * 8 // 5)
_U32 = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class QrToken:
    credential_id: str
    valid_from: int
    valid_to: int
    step: int
    # hash of the whole token, the key of the replay guard
    digest: bytes


class TokenRejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def looks_like_token(text: str) -> bool:
    return text.startswith(PREFIX)


def issue_token(
    private_key: Ed25519PrivateKey, credential_id: str, valid_from: int, valid_to: int, now_s: int
) -> str:
    """A token for one credential, fresh for the time step of ``now_s``."""
    cred = uuid.UUID(credential_id).bytes
    if not 0 <= valid_from <= valid_to <= _U32 or not 0 <= now_s <= _U32:
        raise ValueError("token times must be epoch seconds with valid_from <= valid_to")
    body = _BODY.pack(VERSION, cred, valid_from, valid_to, now_s // STEP_S)
    raw = body + private_key.sign(SIGN_CONTEXT + body)
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def verify_token(
    text: str, public_key: Ed25519PublicKey, now_s: int, skew_steps: int = TOKEN_SKEW_STEPS
) -> QrToken:
    """Check encoding, signature, validity and freshness; raises TokenRejected."""
    body_b32 = text[len(PREFIX):]
    expected_len = _BODY.size + _SIG_LEN
    if len(body_b32) > 2 * expected_len:
        raise TokenRejected(Reason.MALFORMED_CREDENTIAL, "token too long")
    try:
        raw = base64.b32decode(body_b32 + "=" * (-len(body_b32) % 8), casefold=True)
    except (binascii.Error, ValueError):
        raise TokenRejected(Reason.MALFORMED_CREDENTIAL, "token is not base32") from None
    if len(raw) != expected_len:
        raise TokenRejected(Reason.MALFORMED_CREDENTIAL, f"token has {len(raw)} bytes")
    if base64.b32encode(raw).decode().rstrip("=") != body_b32.upper():
        # set padding bits: one token must have one spelling (strict parsing at the edge)
        raise TokenRejected(Reason.MALFORMED_CREDENTIAL, "token is not canonical base32")
    body, signature = raw[: _BODY.size], raw[_BODY.size:]
    version, cred, valid_from, valid_to, step = _BODY.unpack(body)
    if version != VERSION:
        raise TokenRejected(Reason.MALFORMED_CREDENTIAL, f"token version {version}")
    try:
        public_key.verify(signature, SIGN_CONTEXT + body)
    except InvalidSignature:
        raise TokenRejected(Reason.BAD_SIGNATURE, "token signature does not verify") from None
    if now_s < valid_from:
        raise TokenRejected(Reason.NOT_YET_VALID, "token not yet valid")
    if now_s >= valid_to:
        raise TokenRejected(Reason.EXPIRED, "token expired")
    if abs(now_s // STEP_S - step) > skew_steps:
        # an old screenshot, or a phone clock far off
        raise TokenRejected(Reason.EXPIRED, "token time step is stale")
    return QrToken(
        credential_id=str(uuid.UUID(bytes=cred)),
        valid_from=valid_from,
        valid_to=valid_to,
        step=step,
        digest=hashlib.sha256(raw).digest(),
    )
