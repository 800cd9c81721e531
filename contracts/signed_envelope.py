"""Ed25519-signed envelopes for membership data (docs/protocol.md, "Membership data down").

The signature covers the exact payload bytes, carried base64-encoded, so no JSON
canonicalisation is needed on either side.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts import strict_json
from contracts.errors import BadInput, SignatureError

MAX_ENVELOPE_BYTES = 8 * 1024 * 1024


def sign_payload(private_key: Ed25519PrivateKey, payload: dict[str, Any]) -> bytes:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return json.dumps({
        "v": 1,
        "payload": base64.b64encode(raw).decode(),
        "sig": base64.b64encode(private_key.sign(raw)).decode(),
    }).encode()


def open_envelope(message: bytes, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify and decode; raises SignatureError or BadInput and never returns unverified data."""
    raw = verify_envelope(message, public_key)
    try:
        payload = strict_json.loads(raw)
    except strict_json.StrictJsonError as exc:
        raise BadInput(f"signed payload refused: {exc}") from None
    if not isinstance(payload, dict):
        raise BadInput("signed payload must be an object")
    return payload


def verify_envelope(message: bytes, public_key: Ed25519PublicKey) -> bytes:
    """The verified payload bytes, for callers that parse and validate in one pass."""
    if len(message) > MAX_ENVELOPE_BYTES:
        raise BadInput(f"envelope of {len(message)} bytes is over the {MAX_ENVELOPE_BYTES} limit")
    try:
        outer = strict_json.loads(message)
    except strict_json.StrictJsonError as exc:
        raise BadInput(f"envelope refused: {exc}") from None
    if not isinstance(outer, dict) or outer.get("v") != 1:
        raise BadInput("envelope must be an object with v=1")
    if not isinstance(outer.get("payload"), str) or not isinstance(outer.get("sig"), str):
        raise SignatureError("envelope is unsigned (payload and sig required)")
    try:
        raw = base64.b64decode(outer["payload"], validate=True)
        sig = base64.b64decode(outer["sig"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("envelope payload/sig are not base64") from None
    try:
        public_key.verify(sig, raw)
    except InvalidSignature:
        raise SignatureError("signature does not verify with the tenant public key") from None
    return raw
