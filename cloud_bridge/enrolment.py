"""One-time enrolment codes: how a fresh device becomes a site device without anyone
typing a secret.

Staff issue a code for (tenant, device, site) with an expiry; the technician runs
``edge-agent provision --bridge URL --code CODE`` on the device, which redeems it once
and receives the device config (TOML), the tenant's credential HMAC key, the tenant's
public signing key and — when the bridge has a device CA — a certificate for the key
pair the device generated itself (it sends a CSR; its private key never leaves it).

Only a SHA-256 of each code is stored (codes carry 80 random bits, so no slow hash is
needed); redeeming is one conditional UPDATE, so a code works exactly once even with
several bridge processes. The tables take the caller's MetaData so the bridge's schema
can include them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from contracts.device_config import DeviceConfigError, check_device_config
from contracts.enrolment_code import CODE_ALPHABET, CODE_LENGTH, normalise_code

HMAC_KEY_FILE = "keys/credential_hmac.key"
TLS_FILES = {"ca": "tls/ca.crt", "cert": "tls/device.crt", "key": "tls/device.key"}
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def enrolment_table(metadata: MetaData) -> Table:
    return Table(
        "device_enrolment_codes", metadata,
        Column("code_hash", String(64), primary_key=True),
        Column("tenant", String(64), nullable=False),
        Column("device", String(64), nullable=False),
        Column("site", String(64), nullable=False),
        Column("profile", JSON, nullable=False),  # the device's config without keys
        Column("created_ms", BigInteger, nullable=False),
        Column("expires_ms", BigInteger, nullable=False),
        Column("created_by", String(120), nullable=False),
        Column("redeemed_ms", BigInteger, nullable=True),
        Column("redeemed_from", String(64), nullable=True),
        Index("ix_device_enrolment_codes_device", "tenant", "device"),
    )


def attempts_table(metadata: MetaData) -> Table:
    """Failed redemptions per client address, for the rate limit (in the database, so it
    holds across bridge processes)."""
    return Table(
        "device_enrolment_failures", metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("client", String(64), nullable=False),
        Column("at_ms", BigInteger, nullable=False),
        Index("ix_device_enrolment_failures_client", "client", "at_ms"),
    )


# What the technician reads (edge-agent provision prints the bridge's detail as it is).
MESSAGES = {
    "unknown": "strežnik te kode ne pozna: preverite, ali je prav prepisana, ali izdajte "
               "novo na strani Naprave",
    "used": "ta koda je bila že uporabljena ({at}): izdajte novo",
    "expired": "ta koda je potekla ({at}): izdajte novo",
    "wrong_tenant": "ta koda ni za najemnika '{tenant}': preverite najemnika ali kodo",
    "too_many": "preveč napačnih poskusov s tega naslova: poskusite znova čez {minutes} min",
    "just_used": "ta koda je bila pravkar uporabljena: izdajte novo",
}


@dataclass(frozen=True, slots=True)
class EnrolmentKeys:
    credential_hmac_key: bytes
    tenant_public_key: bytes  # raw Ed25519, 32 bytes


@dataclass(frozen=True, slots=True)
class DeviceCA:
    cert_pem: bytes
    key_pem: bytes
    validity_days: int = 825

    def sign(self, csr: x509.CertificateSigningRequest, tenant: str, device: str,
             now: datetime) -> bytes:
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        ca_key = serialization.load_pem_private_key(self.key_pem, password=None)
        # the subject is ours, never the CSR's: a device cannot name itself another device
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, tenant),
                             x509.NameAttribute(NameOID.COMMON_NAME, device)])
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=self.validity_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:edge-suite:{tenant}:{device}")]),
                critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """What a device needs to reach the broker (written into its [mqtt] table)."""

    host: str
    port: int = 8883
    topic_prefix: str = "es/v1"
    # the CA that signed the broker's server certificate; None = plain MQTT (tests, LAN)
    ca_pem: bytes | None = None

    @property
    def tls(self) -> bool:
        return self.ca_pem is not None


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(default=None, pattern=_ID,
                               description="defaults to the issuing staff member's tenant")
    device: str = Field(pattern=_ID)
    site: str = Field(pattern=_ID)
    ttl_s: int = Field(default=24 * 3600, ge=300, le=14 * 24 * 3600)
    # readers, gates, printers, site_policy, timezone … — everything but keys and [mqtt]
    profile: dict[str, Any] = Field(default_factory=dict)


class IssueResponse(BaseModel):
    code: str
    tenant: str
    device: str
    expires_at: str


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=8, max_length=64)
    # the tenant the technician expects; a code of another tenant is refused, not used up
    tenant: str | None = Field(default=None, pattern=_ID)
    csr_pem: str | None = Field(default=None, max_length=16_384)
    data_dir: str = Field(default="/var/lib/edge-agent", max_length=512)


class RedeemResponse(BaseModel):
    tenant: str
    device: str
    site: str
    config_toml: str
    credential_hmac_key: str  # base64
    tenant_public_key: str  # base64
    ca_pem: str | None = None
    device_cert_pem: str | None = None
    files: dict[str, str]  # role -> path relative to the config file


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def render_config(tenant: str, device: str, site: str, profile: dict[str, Any],
                  data_dir: str, keys: EnrolmentKeys, broker: BrokerSettings,
                  with_cert: bool) -> str:
    config: dict[str, Any] = {
        "tenant": tenant, "device": device, "site": site, "data_dir": data_dir,
        **{k: v for k, v in profile.items() if k not in ("keys", "mqtt", "tenant", "device",
                                                          "site", "data_dir")},
        "keys": {
            "credential_hmac_key": f"file:{HMAC_KEY_FILE}",
            "tenant_public_key": "base64:" + base64.b64encode(keys.tenant_public_key).decode(),
        },
    }
    mqtt: dict[str, Any] = {"host": broker.host, "port": broker.port,
                            "topic_prefix": broker.topic_prefix}
    if broker.tls:
        mqtt["tls_ca"] = TLS_FILES["ca"]
        if with_cert:
            mqtt["tls_cert"] = TLS_FILES["cert"]
            mqtt["tls_key"] = TLS_FILES["key"]
    config["mqtt"] = mqtt
    return "# written by edge-agent provision from the bridge's enrolment; edit with care\n" \
        + tomli_w.dumps(config)


def check_profile(tenant: str, device: str, site: str, profile: dict[str, Any]) -> None:
    """Validate the device config now, with stand-in keys, not at the device."""
    raw = {**profile, "tenant": tenant, "device": device, "site": site,
           "keys": {"credential_hmac_key": "base64:" + base64.b64encode(b"x" * 32).decode()}}
    raw.pop("mqtt", None)
    check_device_config(raw, source="profile")


def _load_csr(pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise HTTPException(422, "csr_pem is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise HTTPException(422, "the CSR's signature does not verify")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise HTTPException(422, "RSA keys must have at least 2048 bits")
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey |
                      rsa.RSAPublicKey):
        raise HTTPException(422, "unsupported key type in the CSR")
    return csr


Signer = Callable[[x509.CertificateSigningRequest, str, str, datetime], bytes]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max_failures`` refused redemptions per client address per window."""

    max_failures: int = 10
    window_s: int = 15 * 60


def issue_code(engine: Engine, table: Table, *, tenant: str, device: str, site: str,
               profile: dict[str, Any], ttl_s: int, created_by: str,
               now_ms: int) -> IssueResponse:
    """Make a code for (tenant, device, site): checks the profile, replaces the device's
    unused codes, stores only the code's hash. Raises DeviceConfigError for a bad profile."""
    check_profile(tenant, device, site, profile)
    code = new_code()
    expires_ms = now_ms + ttl_s * 1000
    with engine.begin() as conn:
        # a new code for a device replaces its unused ones
        conn.execute(delete(table).where(table.c.tenant == tenant, table.c.device == device,
                                         table.c.redeemed_ms.is_(None)))
        conn.execute(insert(table).values(
            code_hash=code_hash(code), tenant=tenant, device=device, site=site,
            profile=profile, created_ms=now_ms, expires_ms=expires_ms,
            created_by=created_by[:120]))
    return IssueResponse(code=code, tenant=tenant, device=device, expires_at=_iso(expires_ms))


def _per_tenant(value: Any) -> Callable[[str], Any]:
    return value if callable(value) else (lambda _tenant: value)


def enrolment_router(
    engine: Engine,
    table: Table,
    *,
    tenant_keys: Callable[[str], EnrolmentKeys],
    broker: BrokerSettings | Callable[[str], BrokerSettings],
    issuer: Callable[..., Any],
    device_ca: DeviceCA | None = None,
    signer: Callable[[str], Signer | None] | None = None,
    attempts: Table | None = None,
    rate_limit: RateLimit = RateLimit(),
    clock: Callable[[], float] = time.time,
    prefix: str = "/api/enrolment",
) -> APIRouter:
    """``issuer`` is a FastAPI dependency that authorises staff to issue codes and returns
    them (an object with ``tenant`` — None for an operator who may name any tenant — and
    ``username``); it raises 401/403 itself. ``broker`` and ``signer`` may depend on the
    tenant (one broker listener and one device CA per tenant); ``attempts`` turns on the
    per-client rate limit of redemptions."""
    router = APIRouter(prefix=prefix, tags=["enrolment"])
    broker_for = _per_tenant(broker)
    signer_for: Callable[[str], Signer | None] = signer or (
        lambda _t: device_ca.sign if device_ca is not None else None)

    @router.post("/codes", response_model=IssueResponse, status_code=201)
    def issue(body: IssueRequest, staff: Any = Depends(issuer)) -> IssueResponse:
        tenant = body.tenant or staff.tenant
        if tenant is None:
            raise HTTPException(422, "name the tenant the code is for")
        if staff.tenant is not None and tenant != staff.tenant:
            raise HTTPException(403, "codes can only be issued for your own tenant")
        broker_for(tenant)  # a code that this bridge could not redeem is not issued
        try:
            return issue_code(engine, table, tenant=tenant, device=body.device,
                              site=body.site, profile=body.profile, ttl_s=body.ttl_s,
                              created_by=str(getattr(staff, "username", "?")),
                              now_ms=int(clock() * 1000))
        except DeviceConfigError as exc:
            raise HTTPException(422, f"device profile is invalid: {exc}") from None

    @router.post("/redeem", response_model=RedeemResponse)
    def redeem(body: RedeemRequest, request: Request) -> RedeemResponse:
        client = (request.client.host if request.client else "unknown")[:64]
        now_ms = int(clock() * 1000)
        if attempts is not None:
            _check_rate(engine, attempts, rate_limit, client, now_ms)
        csr = _load_csr(body.csr_pem) if body.csr_pem else None
        try:
            return _redeem(engine, table, body, csr, now_ms, client, tenant_keys,
                           broker_for, signer_for)
        except HTTPException as exc:
            if attempts is not None and exc.status_code in (403, 404, 409, 410):
                with engine.begin() as conn:
                    conn.execute(insert(attempts).values(client=client, at_ms=now_ms))
            raise

    return router


def _check_rate(engine: Engine, attempts: Table, limit: RateLimit, client: str,
                now_ms: int) -> None:
    since = now_ms - limit.window_s * 1000
    with engine.begin() as conn:
        conn.execute(delete(attempts).where(attempts.c.at_ms <= since))
        count, oldest = conn.execute(select(func.count(), func.min(attempts.c.at_ms)).where(
            attempts.c.client == client, attempts.c.at_ms > since)).one()
    if count >= limit.max_failures:
        retry_s = max(1, (int(oldest) + limit.window_s * 1000 - now_ms) // 1000)
        raise HTTPException(429, MESSAGES["too_many"].format(minutes=-(-retry_s // 60)),
                            headers={"Retry-After": str(retry_s)})


def _redeem(engine: Engine, table: Table, body: RedeemRequest,
            csr: x509.CertificateSigningRequest | None, now_ms: int, client: str,
            tenant_keys: Callable[[str], EnrolmentKeys],
            broker_for: Callable[[str], BrokerSettings],
            signer_for: Callable[[str], Signer | None]) -> RedeemResponse:
    digest = code_hash(body.code)
    with engine.begin() as conn:
        row = conn.execute(select(table).where(table.c.code_hash == digest)).first()
        if row is None:
            raise HTTPException(404, MESSAGES["unknown"])
        if body.tenant is not None and body.tenant != row.tenant:
            raise HTTPException(403, MESSAGES["wrong_tenant"].format(tenant=body.tenant))
        if row.redeemed_ms is not None:
            raise HTTPException(409, MESSAGES["used"].format(at=_iso(row.redeemed_ms)))
        if row.expires_ms <= now_ms:
            raise HTTPException(410, MESSAGES["expired"].format(at=_iso(row.expires_ms)))
        keys = tenant_keys(row.tenant)
        broker = broker_for(row.tenant)
        sign = signer_for(row.tenant)
        cert_pem = None
        if sign is not None and csr is not None:
            cert_pem = sign(csr, row.tenant, row.device,
                            datetime.fromtimestamp(now_ms / 1000, UTC))
        config_toml = render_config(row.tenant, row.device, row.site, dict(row.profile),
                                    body.data_dir, keys, broker, cert_pem is not None)
        # the condition makes it once-only even against a concurrent redeem
        done = conn.execute(update(table).where(
            table.c.code_hash == digest, table.c.redeemed_ms.is_(None),
            table.c.expires_ms > now_ms).values(redeemed_ms=now_ms, redeemed_from=client))
        if done.rowcount != 1:
            raise HTTPException(409, MESSAGES["just_used"])
    files = {"credential_hmac_key": HMAC_KEY_FILE}
    if broker.tls:
        files["ca"] = TLS_FILES["ca"]
    if cert_pem is not None:
        files |= {"cert": TLS_FILES["cert"], "key": TLS_FILES["key"]}
    return RedeemResponse(
        tenant=row.tenant, device=row.device, site=row.site, config_toml=config_toml,
        credential_hmac_key=base64.b64encode(keys.credential_hmac_key).decode(),
        tenant_public_key=base64.b64encode(keys.tenant_public_key).decode(),
        ca_pem=broker.ca_pem.decode() if broker.ca_pem else None,
        device_cert_pem=cert_pem.decode() if cert_pem else None,
        files=files,
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
