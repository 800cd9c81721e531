"""FURS test endpoint: the JSON fiscal-verification service on loopback HTTPS.

What it does like the real service (technical specification v3.2, §4, §6.1, §8, §9):
  * two-way TLS under a test CA it generates (server certificate for 127.0.0.1/localhost),
  * ``POST /v1/cash_registers/invoices``, ``.../invoices/register``, ``.../echo``,
  * the request token must be RS256 JWS whose header serial names a taxpayer certificate
    it knows (else S004), whose signature verifies with that certificate (S003), whose
    certificate is neither revoked (S007) nor expired (S008), whose payload follows the
    JSON schema (S002: required fields, types, patterns) and whose TaxNumber is the one in
    the certificate (S005); with ``require_premise`` the premise must be registered (S006),
  * answers are RS256 JWS signed by a "FURS" certificate of the test CA, with ``x5c``,
    carrying the request's MessageID and a fresh UUID as UniqueInvoiceID (the EOR).

What a test or a technician can make it do: ``ok``, ``slow`` (answer after ``delay_s``),
``down`` (drop every connection without an answer), ``error`` (answer every invoice with
``error_code``, any of S001..S008 or S100).

    edge-sim furs init /tmp/furs --tax-number 12345678       # CA, certificates, taxpayer .p12
    edge-sim furs serve /tmp/furs --port 9002 [--mode slow --delay 5]
    edge-sim furs mode --dir /tmp/furs --port 9002 down     # change a running simulator
    python -m simulators.furs_endpoint serve /tmp/furs
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import jwt
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.pos.fiscal import jws
from agent.pos.fiscal.credentials import rfc2253
from agent.pos.fiscal.messages import ERROR_CODES

MODES = ("ok", "slow", "down", "error")

# -- test PKI ---------------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _issue(subject: x509.Name, key: rsa.RSAPrivateKey, ca_cert: x509.Certificate | None,
           ca_key: rsa.RSAPrivateKey, *, days: int = 825, is_ca: bool = False,
           san: list[x509.GeneralName] | None = None, client: bool = False,
           not_before: dt.datetime | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(days=1)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(ca_cert.subject if ca_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number() >> 96)  # 63-bit, like FURS' serials
               .not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                        critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def taxpayer_name(tax_number: int, name: str) -> x509.Name:
    """Subject like FURS' test certificates (spec §9.1): C, O, OU=DavPotRacTEST, OU=<tax
    number>, serialNumber, CN - printed most-specific first as in the JWS header."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SI"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "state-institutions"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DavPotRacTEST"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, str(tax_number)),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "1"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])


@dataclass(frozen=True)
class SimPki:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def taxpayer_p12(self) -> Path:
        return self.directory / "taxpayer.p12"

    @property
    def password_file(self) -> Path:
        return self.directory / "taxpayer.password"

    def password(self) -> bytes:
        return self.password_file.read_bytes().strip()


def generate_pki(directory: Path, tax_number: int = 12345678,
                 name: str = "TESTNO PODJETJE d.o.o.", *, expired: bool = False) -> SimPki:
    """Test CA, server and FURS signing certificates, and a taxpayer PKCS#12 with a random
    password (in taxpayer.password, mode 600). Existing CA material is reused."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key_path, ca_path = directory / "ca.key", directory / "ca.pem"
    if ca_path.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    else:
        ca_key = _key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "SI"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-suite test"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "Tax CA Test (simulated)")])
        ca_cert = _issue(ca_name, ca_key, None, ca_key, days=3650, is_ca=True)
        _write_private(ca_key_path, _pem_key(ca_key))
        ca_path.write_bytes(_pem(ca_cert))
        server_key = _key()
        server = _issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
                        server_key, ca_cert, ca_key,
                        san=[x509.DNSName("localhost"),
                             x509.IPAddress(IPv4Address("127.0.0.1"))])
        _write_private(directory / "server.key", _pem_key(server_key))
        (directory / "server.pem").write_bytes(_pem(server))
        sign_key = _key()
        signer = _issue(x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SI"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "state-institutions"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DavPotRacTEST"),
            x509.NameAttribute(NameOID.COMMON_NAME, "FURS")]), sign_key, ca_cert, ca_key)
        _write_private(directory / "furs-sign.key", _pem_key(sign_key))
        (directory / "furs-sign.pem").write_bytes(_pem(signer))
    key = _key()
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=400)) if expired else None
    cert = _issue(taxpayer_name(tax_number, name), key, ca_cert, ca_key, client=True,
                  days=30 if expired else 1825, not_before=start)
    password = secrets.token_urlsafe(18).encode()
    p12 = pkcs12.serialize_key_and_certificates(
        b"taxpayer", key, cert, None, serialization.BestAvailableEncryption(password))
    _write_private(directory / "taxpayer.p12", p12)
    _write_private(directory / "taxpayer.password", password + b"\n")
    # the simulator's register of taxpayer certificates, like ISFU's (spec §5: "ISFU will
    # have data about the public key of the certificate of the person liable")
    known = directory / "taxpayers"
    known.mkdir(exist_ok=True)
    (known / f"{cert.serial_number}.pem").write_bytes(_pem(cert))
    return SimPki(directory)


# -- validation like ISFU ---------------------------------------------------------------------

_UUID = re.compile(r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$")
_DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")
_IDENT = re.compile(r"^[0-9a-zA-Z]{1,20}$")


class _Refuse(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def _amount(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refuse("S002", f"{where} is not a number")
    if abs(value) >= 1e14 or abs(round(value * 100) - value * 100) > 1e-6:
        raise _Refuse("S002", f"{where} must have at most 2 decimals")


def _tax_number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not \
            10_000_000 <= value <= 99_999_999:
        raise _Refuse("S002", f"{where} is not an 8-digit integer")


def _header(node: Any) -> str:
    if not isinstance(node, dict) or not _UUID.match(str(node.get("MessageID", ""))) \
            or not _DT.match(str(node.get("DateTime", ""))):
        raise _Refuse("S002", "Header.MessageID / DateTime")
    return str(node["MessageID"])


def check_invoice(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(MessageID, Invoice) of a schema-valid InvoiceRequest, else _Refuse("S002")."""
    req = payload.get("InvoiceRequest")
    if not isinstance(req, dict) or set(payload) != {"InvoiceRequest"}:
        raise _Refuse("S002", "InvoiceRequest missing")
    message_id = _header(req.get("Header"))
    inv = req.get("Invoice")
    if not isinstance(inv, dict):
        raise _Refuse("S002", "Invoice missing (only electronic-device invoices simulated)")
    allowed = {"TaxNumber", "IssueDateTime", "NumberingStructure", "InvoiceIdentifier",
               "CustomerVATNumber", "InvoiceAmount", "ReturnsAmount", "PaymentAmount",
               "TaxesPerSeller", "OperatorTaxNumber", "ForeignOperator", "ProtectedID",
               "SubsequentSubmit", "ReferenceInvoice", "ReferenceSalesBook", "SpecialNotes"}
    required = {"TaxNumber", "IssueDateTime", "NumberingStructure", "InvoiceIdentifier",
                "InvoiceAmount", "PaymentAmount", "TaxesPerSeller", "ProtectedID"}
    if set(inv) - allowed or required - set(inv):
        raise _Refuse("S002", f"unknown {sorted(set(inv) - allowed)}, "
                              f"missing {sorted(required - set(inv))}")
    _tax_number(inv["TaxNumber"], "TaxNumber")
    if not _DT.match(str(inv["IssueDateTime"])):
        raise _Refuse("S002", "IssueDateTime")
    if inv["NumberingStructure"] not in ("B", "C"):
        raise _Refuse("S002", "NumberingStructure")
    ident = inv["InvoiceIdentifier"]
    if not isinstance(ident, dict) or set(ident) != {"BusinessPremiseID", "ElectronicDeviceID",
                                                     "InvoiceNumber"} \
            or not _IDENT.match(str(ident["BusinessPremiseID"])) \
            or not _IDENT.match(str(ident["ElectronicDeviceID"])) \
            or not isinstance(ident["InvoiceNumber"], str) \
            or not re.fullmatch(r"[1-9]\d{0,19}", ident["InvoiceNumber"]):
        raise _Refuse("S002", "InvoiceIdentifier")
    for name in ("InvoiceAmount", "PaymentAmount", "ReturnsAmount"):
        if name in inv:
            _amount(inv[name], name)
    sellers = inv["TaxesPerSeller"]
    if not isinstance(sellers, list) or not 1 <= len(sellers) <= 1000:
        raise _Refuse("S002", "TaxesPerSeller")
    for seller in sellers:
        if not isinstance(seller, dict):
            raise _Refuse("S002", "TaxesPerSeller item")
        for vat in seller.get("VAT", []):
            if not isinstance(vat, dict) or set(vat) != {"TaxRate", "TaxableAmount", "TaxAmount"}:
                raise _Refuse("S002", "VAT item")
            for k, v in vat.items():
                _amount(v, k)
        for k in ("OtherTaxesAmount", "ExemptVATTaxableAmount", "ReverseVATTaxableAmount",
                  "NontaxableAmount", "SpecialTaxRulesAmount"):
            if k in seller:
                _amount(seller[k], k)
    if "OperatorTaxNumber" in inv:
        _tax_number(inv["OperatorTaxNumber"], "OperatorTaxNumber")
    for flag in ("ForeignOperator", "SubsequentSubmit"):
        if flag in inv and not isinstance(inv[flag], bool):
            raise _Refuse("S002", flag)
    if not re.fullmatch(r"[0-9a-fA-F]{32}", str(inv["ProtectedID"])):
        raise _Refuse("S002", "ProtectedID")
    if "ReferenceInvoice" in inv:
        _check_reference(inv["ReferenceInvoice"])
    return message_id, inv


def _check_reference(refs: Any) -> None:
    """ReferenceInvoice (spec v3.2 R_3.14): the changed invoice's premise, device and number
    (R_3.14.1-3, rules as for InvoiceIdentifier) and its issue time (R_3.15)."""
    if not isinstance(refs, list) or not 1 <= len(refs) <= 1000:
        raise _Refuse("S002", "ReferenceInvoice")
    for ref in refs:
        if not isinstance(ref, dict) or not set(ref) <= {"ReferenceInvoiceIdentifier",
                                                         "ReferenceInvoiceIssueDateTime"}:
            raise _Refuse("S002", "ReferenceInvoice item")
        ident = ref.get("ReferenceInvoiceIdentifier")
        if not isinstance(ident, dict) or set(ident) != {"BusinessPremiseID",
                                                         "ElectronicDeviceID", "InvoiceNumber"} \
                or not _IDENT.match(str(ident["BusinessPremiseID"])) \
                or not _IDENT.match(str(ident["ElectronicDeviceID"])) \
                or not re.fullmatch(r"[1-9]\d{0,19}", str(ident["InvoiceNumber"])):
            raise _Refuse("S002", "ReferenceInvoiceIdentifier")
        when = ref.get("ReferenceInvoiceIssueDateTime")
        if when is not None and not _DT.match(str(when)):
            raise _Refuse("S002", "ReferenceInvoiceIssueDateTime")


def check_premise(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    req = payload.get("BusinessPremiseRequest")
    if not isinstance(req, dict):
        raise _Refuse("S002", "BusinessPremiseRequest missing")
    message_id = _header(req.get("Header"))
    bp = req.get("BusinessPremise")
    required = {"TaxNumber", "BusinessPremiseID", "BPIdentifier", "ValidityDate",
                "SoftwareSupplier"}
    if not isinstance(bp, dict) or required - set(bp):
        raise _Refuse("S002", "BusinessPremise fields")
    _tax_number(bp["TaxNumber"], "TaxNumber")
    if not _IDENT.match(str(bp["BusinessPremiseID"])):
        raise _Refuse("S002", "BusinessPremiseID")
    ident = bp["BPIdentifier"]
    if not isinstance(ident, dict) or len(ident) != 1 or \
            next(iter(ident)) not in ("RealEstateBP", "PremiseType", "VendingMachine"):
        raise _Refuse("S002", "BPIdentifier")
    if not isinstance(bp["SoftwareSupplier"], list) or not bp["SoftwareSupplier"]:
        raise _Refuse("S002", "SoftwareSupplier")
    return message_id, bp


# -- the server -----------------------------------------------------------------------------


@dataclass
class Behaviour:
    mode: str = "ok"
    delay_s: float = 5.0
    error_code: str = "S100"
    require_premise: bool = False


@dataclass
class Received:
    """What the simulator accepted, for tests and the technician's eye."""

    invoices: list[dict[str, Any]] = field(default_factory=list)
    premises: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    eors: dict[str, str] = field(default_factory=dict)  # ProtectedID -> EOR


class FursSimulator:
    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0,
                 behaviour: Behaviour | None = None) -> None:
        self.pki = SimPki(directory)
        self.behaviour = behaviour or Behaviour()
        self.received = Received()
        self.revoked: set[int] = set()
        self._lock = threading.Lock()
        sign_key = serialization.load_pem_private_key(
            (directory / "furs-sign.key").read_bytes(), None)
        assert isinstance(sign_key, rsa.RSAPrivateKey)
        self._sign_key = sign_key
        self._sign_cert = x509.load_pem_x509_certificate((directory / "furs-sign.pem").read_bytes())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(directory / "server.pem", directory / "server.key")
        ctx.load_verify_locations(cafile=str(directory / "ca.pem"))
        # the fiscal endpoints demand a client certificate (two-way TLS, spec §2); the
        # /sim control endpoints are loopback-only and need none
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self._ctx = ctx
        self._server = _Server((host, port), _Handler, self)
        bound_host, self.port = self._server.server_address[:2]
        assert isinstance(bound_host, str)  # an AF_INET socket reports its address as text
        self.host = bound_host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> FursSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="furs-sim",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, mode: str, *, delay_s: float | None = None,
                 error_code: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if error_code is not None and error_code.upper() not in ERROR_CODES:
            raise ValueError(f"error code must be one of {', '.join(ERROR_CODES)}")
        with self._lock:
            self.behaviour.mode = mode
            if delay_s is not None:
                self.behaviour.delay_s = delay_s
            if error_code is not None:
                self.behaviour.error_code = error_code.upper()

    # -- processing --------------------------------------------------------------------------

    def _known_cert(self, serial: Any) -> x509.Certificate:
        path = self.pki.directory / "taxpayers" / f"{serial}.pem"
        if not isinstance(serial, int) or not path.exists():
            raise _Refuse("S004", f"no certificate with serial {serial}")
        return x509.load_pem_x509_certificate(path.read_bytes())

    def handle(self, path: str, body: bytes) -> dict[str, Any]:
        root = "BusinessPremiseResponse" if path.endswith("/register") else "InvoiceResponse"
        message_id = str(uuid.uuid4())
        try:
            try:
                token = json.loads(body)["token"]
                header = jws.unverified_header(token)
            except (ValueError, KeyError, TypeError, jwt.InvalidTokenError):
                raise _Refuse("S002", "body is not {\"token\": JWS}") from None
            if header.get("alg") != "RS256":
                raise _Refuse("S003", "alg must be RS256")
            cert = self._known_cert(header.get("serial"))
            if header.get("subject_name") != rfc2253(cert.subject) or \
                    header.get("issuer_name") != rfc2253(cert.issuer):
                raise _Refuse("S004", "subject_name/issuer_name do not match the certificate")
            if cert.serial_number in self.revoked:
                raise _Refuse("S007")
            now = dt.datetime.now(dt.UTC)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise _Refuse("S008")
            public = cert.public_key()
            assert isinstance(public, rsa.RSAPublicKey)
            try:
                payload = json.loads(jws.verify(token, public))
            except jwt.InvalidSignatureError:
                raise _Refuse("S003") from None
            except (jwt.InvalidTokenError, ValueError):
                raise _Refuse("S002", "payload is not JSON") from None
            ou = [str(a.value) for a in
                  cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
            if root == "InvoiceResponse":
                message_id, inv = check_invoice(payload)
                if str(inv["TaxNumber"]) not in ou:
                    raise _Refuse("S005")
                key = (inv["TaxNumber"], inv["InvoiceIdentifier"]["BusinessPremiseID"])
                if self.behaviour.require_premise and key not in self.received.premises:
                    raise _Refuse("S006")
                if self.behaviour.mode == "error":
                    raise _Refuse(self.behaviour.error_code)
                eor = str(uuid.uuid4())
                with self._lock:
                    self.received.invoices.append(inv)
                    self.received.eors[inv["ProtectedID"]] = eor
                return {root: {"Header": self._head(message_id), "UniqueInvoiceID": eor}}
            message_id, bp = check_premise(payload)
            if str(bp["TaxNumber"]) not in ou:
                raise _Refuse("S005")
            with self._lock:
                self.received.premises[(bp["TaxNumber"], bp["BusinessPremiseID"])] = bp
            return {root: {"Header": self._head(message_id)}}
        except _Refuse as refuse:
            with self._lock:
                self.received.refused.append(refuse.code)
            return {root: {"Header": self._head(message_id),
                           "Error": {"ErrorCode": refuse.code,
                                     "ErrorMessage": ERROR_CODES.get(refuse.code, "")
                                     + (f" ({refuse.detail})" if refuse.detail else "")}}}

    @staticmethod
    def _head(message_id: str) -> dict[str, str]:
        return {"MessageID": message_id,
                "DateTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")}

    def sign_response(self, payload: dict[str, Any]) -> str:
        header = {"alg": "RS256", "subject_name": rfc2253(self._sign_cert.subject),
                  "issuer_name": rfc2253(self._sign_cert.issuer),
                  "serial": self._sign_cert.serial_number,
                  "x5c": [base64.b64encode(self._sign_cert.public_bytes(
                      serialization.Encoding.DER)).decode()]}
        return jws.sign(json.dumps(payload, ensure_ascii=False).encode(), self._sign_key, header)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 sim: FursSimulator) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, so one slow client never blocks
        # the accept loop
        try:
            tls = self.sim._ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; tests and the CLI read sim.received instead

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (slow mode)
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, 1 << 20))

    def do_GET(self) -> None:
        sim = self.server.sim
        if self.path == "/sim/state" and self.client_address[0] == "127.0.0.1":
            with sim._lock:
                self._reply(200, {"mode": sim.behaviour.mode, "delay_s": sim.behaviour.delay_s,
                                  "error_code": sim.behaviour.error_code,
                                  "invoices": len(sim.received.invoices),
                                  "premises": len(sim.received.premises),
                                  "refused": sim.received.refused[-20:]})
            return
        self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        sim = self.server.sim
        body = self._body()
        if self.path == "/sim/mode" and self.client_address[0] == "127.0.0.1":
            try:
                req = json.loads(body)
                sim.set_mode(req["mode"], delay_s=req.get("delay_s"),
                             error_code=req.get("error_code"))
            except (ValueError, KeyError, TypeError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, {"mode": sim.behaviour.mode})
            return
        if not self.path.startswith("/v1/cash_registers/"):
            self._reply(404, {"error": "not found"})
            return
        behaviour = sim.behaviour
        if behaviour.mode == "down":
            # drop the connection unanswered, as a FURS outage looks to the till
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour.mode == "slow":
            time.sleep(behaviour.delay_s)
        if self.path == "/v1/cash_registers/echo":
            try:
                self._reply(200, {"EchoResponse": json.loads(body)["EchoRequest"]})
            except (ValueError, KeyError, TypeError):
                self._reply(400, {"error": "EchoRequest expected"})
            return
        conn = self.connection
        if isinstance(conn, ssl.SSLSocket) and conn.getpeercert() is None:
            self._reply(403, {"error": "client certificate required (two-way TLS)"})
            return
        if self.path not in ("/v1/cash_registers/invoices",
                             "/v1/cash_registers/invoices/register"):
            self._reply(404, {"error": "not found"})
            return
        self._reply(200, {"token": sim.sign_response(sim.handle(self.path, body))})


# -- CLI (wired as `edge-sim furs`) ----------------------------------------------------------

app = typer.Typer(help="FURS test endpoint: fiscal verification over loopback HTTPS.",
                  no_args_is_help=True)


@app.command()
def init(directory: Path = typer.Argument(..., help="where to write the CA and certificates"),
         tax_number: int = typer.Option(12345678, "--tax-number", min=10_000_000,
                                        max=99_999_999),
         name: str = typer.Option("TESTNO PODJETJE d.o.o.", "--name")) -> None:
    """Generate the test CA, server/signing certificates and a taxpayer PKCS#12."""
    pki = generate_pki(directory, tax_number, name)
    typer.echo(f"CA:        {pki.ca_file}  (pos.furs_ca_file)")
    typer.echo(f"taxpayer:  {pki.taxpayer_p12}  (pos.pkcs12_path)")
    typer.echo(f"password:  {pki.password_file}  (pos.pkcs12_password_file)")


@app.command()
def serve(directory: Path = typer.Argument(..., help="a directory made by `init`"),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(9002, "--port"),
          mode: str = typer.Option("ok", "--mode", help="ok | slow | down | error"),
          delay: float = typer.Option(5.0, "--delay", help="seconds, for --mode slow"),
          error: str = typer.Option("S100", "--error", help="error code, for --mode error"),
          require_premise: bool = typer.Option(
              False, "--require-premise", help="answer S006 to unregistered premises"),
          ) -> None:
    """Run the simulator until Ctrl-C."""
    if not (directory / "ca.pem").exists():
        generate_pki(directory)
    sim = FursSimulator(directory, host, port, Behaviour(require_premise=require_premise))
    sim.set_mode(mode, delay_s=delay, error_code=error)
    sim.start()
    typer.echo(f"FURS simulator on {sim.url} (mode {mode}); CA {sim.pki.ca_file}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()


@app.command("mode")
def set_mode(mode: str = typer.Argument(..., help="ok | slow | down | error"),
             directory: Path = typer.Option(..., "--dir", help="the simulator's directory"),
             port: int = typer.Option(9002, "--port"),
             delay: float | None = typer.Option(None, "--delay"),
             error: str | None = typer.Option(None, "--error")) -> None:
    """Change the behaviour of a running simulator."""
    import httpx

    body: dict[str, Any] = {"mode": mode}
    if delay is not None:
        body["delay_s"] = delay
    if error is not None:
        body["error_code"] = error
    reply = httpx.post(f"https://127.0.0.1:{port}/sim/mode", json=body,
                       verify=ssl.create_default_context(cafile=str(directory / "ca.pem")))
    typer.echo(reply.text)
    raise typer.Exit(0 if reply.status_code == 200 else 1)


if __name__ == "__main__":
    app()
