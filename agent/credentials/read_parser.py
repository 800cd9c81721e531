"""Turns what a reader delivered into something to look up, or into a reason to refuse.

Reader input is untrusted: empty reads, binary noise and 10 kB lines end here as
MALFORMED_CREDENTIAL instead of reaching the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.access.reasons import Reason
from agent.credentials.credential_hash import credential_hash, hash_ref
from agent.credentials.qr_token import QrToken, TokenRejected, looks_like_token, verify_token

_UID_SEPARATORS = re.compile(r"[\s:\-]")
_HEX_UID = re.compile(r"^(?:[0-9A-F]{2}){4,10}$")  # 4-byte NUID up to 10-byte triple UID
MAX_QR_LEN = 1024


@dataclass(frozen=True, slots=True)
class ParsedCredential:
    problem: Reason | None = None
    detail: str = ""
    lookup_hash: str | None = None
    token: QrToken | None = None

    @property
    def ref(self) -> str | None:
        """Short keyed-hash reference for events; never the UID or code."""
        if self.lookup_hash is not None:
            return hash_ref(self.lookup_hash)
        if self.token is not None:
            return self.token.credential_id
        return None


def normalise_uid(value: str) -> str | None:
    uid = _UID_SEPARATORS.sub("", value).upper()
    return uid if _HEX_UID.match(uid) else None


def _printable(text: str) -> bool:
    return text.isprintable()


def parse_read(
    kind: str,
    value: str,
    hmac_key: bytes,
    public_key: Ed25519PublicKey | None,
    now_s: int,
) -> ParsedCredential:
    if kind == "uid":
        if len(value) > 64:
            return ParsedCredential(Reason.MALFORMED_CREDENTIAL, f"UID read of {len(value)} chars")
        uid = normalise_uid(value)
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
        if looks_like_token(text):
            if public_key is None:
                return ParsedCredential(
                    Reason.BAD_SIGNATURE, "signed token but no keys.tenant_public_key configured"
                )
            try:
                return ParsedCredential(token=verify_token(text, public_key, now_s))
            except TokenRejected as exc:
                return ParsedCredential(exc.reason, str(exc))
        return ParsedCredential(lookup_hash=credential_hash(hmac_key, "qr", text))
    return ParsedCredential(Reason.MALFORMED_CREDENTIAL, f"unknown read kind {kind!r}")
