"""HTTPS client for the FURS JSON service (spec v3.2 §6.1, §8): two-way TLS with the
taxpayer certificate, JWS-signed requests, JWS-signed responses checked against the CA
bundle, and a hard time limit so a slow FURS never holds a customer at the till."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from agent.pos.errors import FursRejected, FursUnavailable
from agent.pos.fiscal import jws
from agent.pos.fiscal.credentials import TaxpayerCredentials
from agent.pos.fiscal.messages import (
    ECHO_PATH,
    INVOICE_PATH,
    PREMISE_PATH,
    TRANSIENT_CODES,
    FursAnswer,
    business_premise_request,
    dumps,
    invoice_request,
    read_response,
)
from agent.pos.model import Receipt

log = logging.getLogger(__name__)


def load_ca_bundle(path: str | None) -> list[x509.Certificate]:
    if path is None:
        return []
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


class FursClient:
    def __init__(self, base_url: str, creds: TaxpayerCredentials, *, ca_file: str | None,
                 timeout_s: float = 2.0, verify_responses: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.creds = creds
        self.timeout_s = timeout_s
        self.verify_responses = verify_responses
        self._trusted = load_ca_bundle(ca_file)
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=creds.ssl_context(ca_file),
            timeout=httpx.Timeout(timeout_s),
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )

    def close(self) -> None:
        self._http.close()

    # -- the three services ----------------------------------------------------------------

    def submit_invoice(self, receipt: Receipt, *, subsequent: bool,
                       now: datetime | None = None) -> str:
        """The EOR for this receipt, or FursUnavailable / FursRejected."""
        message = invoice_request(receipt, subsequent=subsequent, sent_at=now or datetime.now(UTC))
        answer = self._exchange(INVOICE_PATH, message, "InvoiceResponse")
        if not answer.eor:
            raise FursUnavailable("FURS answered without a UniqueInvoiceID")
        return answer.eor

    def register_premise(self, *, validity: date, now: datetime | None = None,
                         **fields: Any) -> None:
        tax_number = self.creds.tax_number_in_certificate()
        if tax_number is None:
            raise FursRejected("LOCAL", "the certificate carries no tax number")
        message = business_premise_request(tax_number=tax_number, validity=validity,
                                           sent_at=now or datetime.now(UTC), **fields)
        self._exchange(PREMISE_PATH, message, "BusinessPremiseResponse")

    def echo(self, text: str = "furs") -> bool:
        try:
            reply = self._http.post(ECHO_PATH, content=json.dumps({"EchoRequest": text}))
            return bool(reply.status_code == 200 and reply.json().get("EchoResponse") == text)
        except (httpx.HTTPError, ValueError):
            return False

    # -- transport -------------------------------------------------------------------------

    def _exchange(self, path: str, message: dict[str, Any], root: str) -> FursAnswer:
        token = jws.sign_for_furs(dumps(message), self.creds)
        try:
            reply = self._http.post(path, content=json.dumps({"token": token}))
        except httpx.TimeoutException as exc:
            raise FursUnavailable(f"FURS did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise FursUnavailable(f"FURS unreachable: {type(exc).__name__}") from exc
        if reply.status_code >= 500:
            raise FursUnavailable(f"FURS HTTP {reply.status_code}")
        try:
            response_token = reply.json()["token"]
            payload = self._verified_payload(response_token)
            answer = read_response(payload, root)
        except (ValueError, KeyError, TypeError, jwt.InvalidTokenError) as exc:
            raise FursUnavailable(f"unusable FURS response (HTTP {reply.status_code}): "
                                  f"{exc}") from exc
        if answer.error_code:
            if answer.error_code in TRANSIENT_CODES:
                raise FursUnavailable(f"FURS {answer.error_code}: {answer.error_message}")
            raise FursRejected(answer.error_code, answer.error_message or "")
        return answer

    def _verified_payload(self, token: str) -> bytes:
        """Responses are signed by FURS (spec §8.1: the certificate travels in x5c); the
        signer must be issued by (or be) a certificate of the configured CA bundle."""
        header = jws.unverified_header(token)
        signer = jws.certificate_from_x5c(header)
        if self.verify_responses:
            if not any(signer == ca or _issued_by(signer, ca) for ca in self._trusted):
                raise jwt.InvalidTokenError("response signer is not issued by the FURS CA")
            now = datetime.now(UTC)
            if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
                raise jwt.InvalidTokenError("response signer certificate is not valid now")
        public = signer.public_key()
        if not isinstance(public, RSAPublicKey):
            raise jwt.InvalidTokenError("response signer key is not RSA")
        return jws.verify(token, public)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
