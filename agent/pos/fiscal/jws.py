"""JWS compact serialisation (RFC 7515, RS256) as FURS wants it, with PyJWT.

PyJWT is used for the signature and its verification; two of its defaults are turned off
so the header is the spec's (v3.2 §8.1/§9.1): keys in the order alg, subject_name,
issuer_name, serial (``sort_headers=False``), no ``typ``, and UTF-8 rather than ``\\uXXXX``
escapes (a name like "ŠPELA" is sent as the spec's example shows it).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from agent.pos.fiscal.credentials import TaxpayerCredentials

_JWS = jwt.PyJWS(options={"verify_signature": True})


class _Utf8Json(json.JSONEncoder):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["ensure_ascii"] = False
        super().__init__(**kwargs)


def furs_header(creds: TaxpayerCredentials) -> dict[str, Any]:
    return {"alg": "RS256", "subject_name": creds.subject_name,
            "issuer_name": creds.issuer_name, "serial": creds.serial}


def header_segment(header: dict[str, Any]) -> str:
    """The base64url header segment exactly as sign() produces it (for tests)."""
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign(payload: bytes, key: RSAPrivateKey, header: dict[str, Any]) -> str:
    extra = {k: v for k, v in header.items() if k != "alg"}
    return _JWS.encode(payload, key, algorithm="RS256", headers={"typ": None, **extra},
                       json_encoder=_Utf8Json, sort_headers=False)


def sign_for_furs(payload: bytes, creds: TaxpayerCredentials) -> str:
    return sign(payload, creds.key, furs_header(creds))


def unverified_header(token: str) -> dict[str, Any]:
    return dict(_JWS.get_unverified_header(token))


def verify(token: str, public_key: RSAPublicKey) -> bytes:
    """Payload bytes of an RS256 token signed by ``public_key``; raises jwt.InvalidTokenError."""
    return bytes(_JWS.decode(token, key=public_key, algorithms=["RS256"]))


def certificate_from_x5c(header: dict[str, Any]) -> x509.Certificate:
    """The signer certificate FURS puts in its responses' header (spec §8.1, "x5c")."""
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise jwt.InvalidTokenError("response header has no x5c certificate")
    return x509.load_der_x509_certificate(base64.b64decode(chain[0]))
