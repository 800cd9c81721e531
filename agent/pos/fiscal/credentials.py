"""The taxpayer's FURS certificate: loaded once from the PKCS#12 file, kept in memory.

The key and the password are never logged, never in a repr, and never written to disk in
clear: the TLS client context gets them through a private temporary directory holding the
key encrypted under a one-time random passphrase, deleted right after loading.
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12

from agent.pos.errors import CredentialError


@dataclass(frozen=True)
class TaxpayerCredentials:
    key: RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False, default=())

    # -- what the FURS JWS header carries (spec v3.2 §8.1) -------------------------------

    @property
    def subject_name(self) -> str:
        return rfc2253(self.certificate.subject)

    @property
    def issuer_name(self) -> str:
        return rfc2253(self.certificate.issuer)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    def tax_number_in_certificate(self) -> int | None:
        """FURS certificates carry the tax number as an 8-digit OU."""
        for attr in self.certificate.subject.get_attributes_for_oid(
                x509.NameOID.ORGANIZATIONAL_UNIT_NAME):
            value = str(attr.value)
            if re.fullmatch(r"[1-9]\d{7}", value):
                return int(value)
        return None

    def ssl_context(self, cafile: str | None) -> ssl.SSLContext:
        """Client context for two-way TLS with FURS (spec §2)."""
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        passphrase = secrets.token_bytes(32)
        with tempfile.TemporaryDirectory(prefix="furs-") as tmp:
            os.chmod(tmp, 0o700)
            cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            pem = self.certificate.public_bytes(serialization.Encoding.PEM)
            pem += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)
            cert_path.write_bytes(pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(passphrase)))
            ctx.load_cert_chain(cert_path, key_path, password=passphrase)
        return ctx


# attribute types RFC 2253 names; any other is written as <dotted OID>=#<DER hex>
_RFC2253_KEYWORDS = {"CN", "L", "ST", "O", "OU", "C", "STREET", "DC", "UID"}


def _der_value(attr: x509.NameAttribute[str | bytes]) -> bytes:
    raw = attr.value if isinstance(attr.value, bytes) else str(attr.value).encode("utf-8")
    tag = attr._type.value  # the ASN.1 string type, e.g. 19 = PrintableString
    n = len(raw)
    length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + \
        n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + raw


def rfc2253(name: x509.Name) -> str:
    """A distinguished name as Java's X500Principal.getName() (RFC 2253) writes it, which
    is the form of the spec's JWS header example (v3.2 §9.1):
    ``CN=ITM STORITVE\\, ŠPELA PERGAR S.P.,2.5.4.5=#130131,OU=99999862,...,C=SI`` -
    most specific RDN first, serialNumber as hex DER (cryptography's rfc4514_string would
    write ``2.5.4.5=1``)."""
    parts = []
    for rdn in reversed(list(name.rdns)):
        values = []
        for attr in rdn:
            text = attr.rfc4514_string()
            keyword = text.partition("=")[0]
            if keyword not in _RFC2253_KEYWORDS:
                text = f"{attr.oid.dotted_string}=#{_der_value(attr).hex()}"
            values.append(text)
        parts.append("+".join(values))
    return ",".join(parts)


def load_pkcs12(path: Path, password: bytes) -> TaxpayerCredentials:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"pos.pkcs12_path: cannot read {path}: {exc.strerror}") from None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        # never echo the password; the usual cause is the wrong one
        raise CredentialError(f"pos.pkcs12_path: {path} cannot be opened (wrong password or "
                              "not a PKCS#12 file)") from None
    if not isinstance(key, RSAPrivateKey) or cert is None:
        raise CredentialError(f"pos.pkcs12_path: {path} must hold an RSA key and its "
                              "certificate (FURS signs with RS256)")
    return TaxpayerCredentials(key, cert, tuple(extra or ()))
