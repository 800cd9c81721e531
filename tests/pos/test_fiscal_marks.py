"""ZOI, the QR data record and the JWS, against the FURS specification's published examples.

Source of every published value: FURS "Tehnične specifikacije za davčno potrjevanje računov /
Technical specifications for fiscal verification of invoices", version 3.2 (23.03.2026),
http://datoteke.durs.gov.si/dpr/index.html - stored copy used here:
https://github.com/gjanezic/python-furs-fiscal/blob/0e0b795f957bdf65ec9983a6347202d42ffff015/specs/TehnicnaDokumentacijaVer3.2.txt
(chapter 11 for the QR examples, §9.1 for the JWS header example, ch. 10 for the ZOI).

The ZOI itself has no published example with a known private key (the spec's example mark
48c7d8888809f95edae149fa14e17a43 and its test certificate's key are not public), so it is
tested against an independent computation: the OpenSSL command line signs the same bytes
and MD5 is taken of that signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from agent.pos.compose import compose
from agent.pos.errors import CredentialError
from agent.pos.fiscal import jws
from agent.pos.fiscal.client import FursClient
from agent.pos.fiscal.credentials import load_pkcs12, rfc2253
from agent.pos.fiscal.messages import dumps, invoice_request
from agent.pos.fiscal.zoi import LJUBLJANA, compute_zoi, qr_data, zoi_input
from agent.pos.job import parse_job
from agent.pos.model import InvoiceId, Receipt
from simulators.furs_endpoint import SimPki, check_invoice

from .conftest import TAX_NUMBER, job

ISSUED = datetime(2015, 8, 15, 10, 13, 32, tzinfo=LJUBLJANA)


def test_qr_record_equals_spec_example_1() -> None:
    """Spec v3.2 ch. 11, "Primer 1 / Example 1"."""
    zoi = "a7e5f55e1dbb48b799268e1a6d8618a3"
    assert str(int(zoi, 16)) == "223175087923687075112234402528973166755"
    record = qr_data(zoi, 12345678, ISSUED)
    assert record == "223175087923687075112234402528973166755123456781508151013321"
    assert len(record) == 60 and record[-1] == "1"  # digit sum 231 -> 1


def test_qr_record_equals_spec_example_2_leading_zero() -> None:
    """Spec v3.2 ch. 11, "Primer 2 (z dodano vodilno ničlo)": 38 decimal digits padded to 39."""
    zoi = "3024e56bf1ddd2e7eeb5715c6859a913"
    record = qr_data(zoi, 12345678, ISSUED)
    assert record == "063994519708649896901260100447252359443123456781508151013320"


def test_qr_record_uses_ljubljana_wall_time() -> None:
    utc = datetime(2015, 8, 15, 8, 13, 32, tzinfo=UTC)  # 10:13:32 CEST
    assert qr_data("a7e5f55e1dbb48b799268e1a6d8618a3", 12345678, utc)[47:59] == "150815101332"


def test_zoi_input_concatenation_matches_spec_reference_code() -> None:
    """Ch. 10 Java/C# reference: taxnumber + dd.MM.yyyy HH:mm:ss + InvoiceNumber +
    BusinessPremiseID + ElectronicDeviceID + InvoiceAmount (decimal dot)."""
    text = zoi_input(12345678, ISSUED, 12345, "blag001", "11245", 124556)
    assert text == "1234567815.08.2015 10:13:3212345blag001112451245.56"
    assert zoi_input(12345678, ISSUED, 1, "P1", "B1", 6670).endswith("P1B166.70")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_zoi_equals_independent_openssl_computation(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    data_file = tmp_path / "data.txt"
    # the spec's Java example values, with a Slovenian premise id
    data_file.write_bytes(b"1234567815.08.2015 10:13:3212345blag001112451245.56")
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_file), str(data_file)],
                         check=True, capture_output=True).stdout
    expected = hashlib.md5(sig).hexdigest()
    assert compute_zoi(key, 12345678, ISSUED, 12345, "blag001", "11245", 124556) == expected
    assert len(expected) == 32


def test_zoi_is_deterministic_and_depends_on_every_input() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = (key, 12345678, ISSUED, 1, "P1", "B1", 1000)
    zoi = compute_zoi(*base)
    assert zoi == compute_zoi(*base)
    variants = [(key, 12345679, ISSUED, 1, "P1", "B1", 1000),
                (key, 12345678, ISSUED.replace(second=33), 1, "P1", "B1", 1000),
                (key, 12345678, ISSUED, 2, "P1", "B1", 1000),
                (key, 12345678, ISSUED, 1, "P2", "B1", 1000),
                (key, 12345678, ISSUED, 1, "P1", "B2", 1000),
                (key, 12345678, ISSUED, 1, "P1", "B1", 1001)]
    assert len({compute_zoi(*v) for v in variants} | {zoi}) == 7


def _spec_example_names() -> tuple[x509.Name, x509.Name]:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SI"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "state-institutions"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DavPotRacTEST"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "99999862"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "1"),
        x509.NameAttribute(NameOID.COMMON_NAME, "ITM STORITVE, ŠPELA PERGAR S.P.")])
    issuer = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SI"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "state-institutions"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tax CA Test")])
    return subject, issuer


SPEC_91_HEADER = (
    "eyJhbGciOiJSUzI1NiIsInN1YmplY3RfbmFtZSI6IkNOPUlUTSBTVE9SSVRWRVxcLCDFoFBFTEEgUEVSR0F"
    "SIFMuUC4sMi41LjQuNT0jMTMwMTMxLE9VPTk5OTk5ODYyLE9VPURhdlBvdFJhY1RFU1QsTz1zdGF0ZS1"
    "pbnN0aXR1dGlvbnMsQz1TSSIsImlzc3Vlcl9uYW1lIjoiQ049VGF4IENBIFRlc3QsTz1zdGF0ZS1pbnN0aXR1dGl"
    "vbnMsQz1TSSIsInNlcmlhbCI6MjU3NTk4ODQ2OTgxMTY4NjY0N30")


def test_jws_header_equals_spec_example_byte_for_byte() -> None:
    """Spec v3.2 §9.1: the base64url JWS header of the invoice example, built from a
    certificate with the example's subject, issuer and serial 2575988469811686647."""
    subject, issuer = _spec_example_names()
    assert rfc2253(subject) == ("CN=ITM STORITVE\\, ŠPELA PERGAR S.P.,2.5.4.5=#130131,"
                                "OU=99999862,OU=DavPotRacTEST,O=state-institutions,C=SI")
    header = {"alg": "RS256", "subject_name": rfc2253(subject),
              "issuer_name": rfc2253(issuer), "serial": 2575988469811686647}
    assert jws.header_segment(header) == SPEC_91_HEADER
    # and the token PyJWT produces starts with exactly that segment
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert jws.sign(b"{}", key, header).split(".")[0] == SPEC_91_HEADER


def test_jws_verifies_with_the_taxpayer_certificate(furs_pki: SimPki) -> None:
    creds = load_pkcs12(furs_pki.taxpayer_p12, furs_pki.password())
    payload = dumps({"InvoiceRequest": {"x": 1}})
    token = jws.sign_for_furs(payload, creds)
    header = jws.unverified_header(token)
    assert list(header) == ["alg", "subject_name", "issuer_name", "serial"]
    assert header["serial"] == creds.certificate.serial_number
    public = creds.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert jws.verify(token, public) == payload
    # independently of PyJWT: RSASSA-PKCS1-v1_5 SHA-256 over "header.payload" (RFC 7515)
    head, body, sig = token.split(".")
    public.verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
                  f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    tampered = f"{head}.{base64.urlsafe_b64encode(b'{}').rstrip(b'=').decode()}.{sig}"
    with pytest.raises(jwt.InvalidSignatureError):
        jws.verify(tampered, public)


def test_invoice_request_fields_and_amount_format(furs_pki: SimPki) -> None:
    creds = load_pkcs12(furs_pki.taxpayer_p12, furs_pki.password())
    sale = compose(parse_job(job()))
    issued = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC)  # 03:30:05 CEST, DST day
    zoi = compute_zoi(creds.key, TAX_NUMBER, issued, 7, "P1", "BLAG1", sale.totals.total_cents)
    receipt = Receipt(InvoiceId("P1", "BLAG1", 7), issued, TAX_NUMBER, "B", sale, zoi,
                      qr_data(zoi, TAX_NUMBER, issued))
    message = invoice_request(receipt, subsequent=True, sent_at=issued)
    raw = dumps(message)
    assert b'"InvoiceAmount":13.69' in raw and b'"TaxRate":9.50' in raw
    assert b'"ExemptVATTaxableAmount":5.00' in raw
    payload = json.loads(raw)
    _, inv = check_invoice(payload)  # the simulator's schema checks
    assert inv["IssueDateTime"] == "2026-03-29T03:30:05"
    assert inv["InvoiceIdentifier"] == {"BusinessPremiseID": "P1", "ElectronicDeviceID": "BLAG1",
                                        "InvoiceNumber": "7"}
    assert inv["OperatorTaxNumber"] == 87654321 and inv["SubsequentSubmit"] is True
    assert inv["ProtectedID"] == zoi and inv["NumberingStructure"] == "B"
    vat = inv["TaxesPerSeller"][0]["VAT"]
    assert [v["TaxRate"] for v in vat] == [22.0, 9.5, 5.0]
    assert round(sum(v["TaxableAmount"] + v["TaxAmount"] for v in vat) + 5.00, 2) == 13.69


def test_response_from_an_untrusted_signer_is_refused(furs_pki: SimPki) -> None:
    creds = load_pkcs12(furs_pki.taxpayer_p12, furs_pki.password())
    client = FursClient("https://127.0.0.1:9", creds, ca_file=str(furs_pki.ca_file))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FURS")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now.replace(year=now.year + 1)).sign(key, hashes.SHA256()))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    token = jws.sign(b'{"InvoiceResponse":{}}', key, {"alg": "RS256", "x5c": [x5c]})
    with pytest.raises(jwt.InvalidTokenError, match="not issued by the FURS CA"):
        client._verified_payload(token)
    client.close()


def test_wrong_pkcs12_password_is_a_clear_error_without_the_password(furs_pki: SimPki) -> None:
    with pytest.raises(CredentialError) as info:
        load_pkcs12(furs_pki.taxpayer_p12, b"not-the-password-xyz")
    assert "wrong password" in str(info.value)
    assert "not-the-password-xyz" not in str(info.value)
    creds = load_pkcs12(furs_pki.taxpayer_p12, furs_pki.password())
    assert "PRIVATE" not in repr(creds) and furs_pki.password().decode() not in repr(creds)
