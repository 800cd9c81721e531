"""The enrolment codes as the bridge serves them (cloud_bridge/enrolment.py is the logic):
the tables in the bridge's database, each tenant's device CA (``serve --ca-dir``) and
broker endpoint for devices, and the JSON API's staff check.

Per tenant, ``<ca-dir>/<tenant>/`` holds the CA (``cloud-bridge ca init``) and
``device-endpoint.json`` (``cloud-bridge enrolment broker``): the host and port of that
tenant's TLS listener as devices reach it, which goes into every device's ``[mqtt]``.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency's signature

import hmac
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI, HTTPException, Request
from sqlalchemy import Engine, MetaData

from cloud_bridge.db_schema import create_tables
from cloud_bridge.device_ca import CaError, TenantCA
from cloud_bridge.enrolment import (
    BrokerSettings,
    EnrolmentKeys,
    Signer,
    attempts_table,
    enrolment_router,
    enrolment_table,
)
from cloud_bridge.errors import Unavailable
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore

enrolment_metadata = MetaData()
enrolment_codes = enrolment_table(enrolment_metadata)
enrolment_failures = attempts_table(enrolment_metadata)
_SCHEMA_LOCK = 0x65646765656E726F  # pg advisory lock id ("edgeenro")
ENDPOINT_FILE = "device-endpoint.json"


class NotReady(Unavailable):
    """This bridge cannot enrol devices of the tenant yet; the message says what to run."""


def ensure_enrolment_schema(engine: Engine) -> None:
    create_tables(engine, enrolment_metadata, _SCHEMA_LOCK)


def write_device_endpoint(ca_dir: Path, tenant: str, host: str, port: int,
                          prefix: str = "es/v1") -> Path:
    folder = TenantCA.load(ca_dir, tenant).directory
    assert folder is not None
    path = folder / ENDPOINT_FILE
    path.write_text(json.dumps({"host": host, "port": port, "topic_prefix": prefix},
                               indent=1) + "\n")
    return path


def device_broker(ca_dir: Path | None, tenant: str) -> BrokerSettings:
    """Where devices of ``tenant`` reach the broker, with the CA that signed it."""
    if ca_dir is None:
        raise NotReady("the bridge runs without a device CA: start it with "
                       "'cloud-bridge serve --ca-dir DIR'")
    try:
        ca = TenantCA.load(ca_dir, tenant)
    except CaError as exc:
        raise NotReady(str(exc)) from None
    assert ca.directory is not None
    try:
        endpoint = json.loads((ca.directory / ENDPOINT_FILE).read_text())
    except (OSError, ValueError):
        raise NotReady(f"no broker endpoint for devices of tenant {tenant!r}: run "
                       f"'cloud-bridge enrolment broker --ca-dir {ca_dir} --tenant {tenant} "
                       "--host HOST --port PORT'") from None
    return BrokerSettings(str(endpoint["host"]), int(endpoint["port"]),
                          str(endpoint.get("topic_prefix", "es/v1")), ca_pem=ca.cert_pem)


def device_signer(ca_dir: Path | None, tenant: str) -> Signer:
    """Signs a device's CSR with its tenant's CA: CN tenant/device, as the broker's ACL
    expects (the CSR's own subject is ignored)."""
    if ca_dir is None:
        raise NotReady("the bridge runs without a device CA (--ca-dir)")
    ca = TenantCA.load(ca_dir, tenant)

    def sign(csr: x509.CertificateSigningRequest, tenant_: str, device: str,
             now: datetime) -> bytes:
        public = csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise HTTPException(422, "the CSR must carry an EC (P-256) public key")
        return ca.issue_device(device, public, now).cert_pem

    return sign


def check_ready(ca_dir: Path | None, tenant: str) -> None:
    """Raises NotReady unless codes of ``tenant`` can be redeemed here."""
    device_broker(ca_dir, tenant)


def _http(work: Callable[[str], Any]) -> Callable[[str], Any]:
    def call(tenant: str) -> Any:
        try:
            return work(tenant)
        except (NotReady, CaError) as exc:
            raise HTTPException(503, f"enrolment is not set up on this bridge: {exc}") from None

    return call


def api_issuer(keys: TenantKeyStore, api_token: str | None) -> Callable[..., Any]:
    """The JSON API's check: the operator's token issues for any tenant named in the body,
    a tenant's own token for that tenant only."""

    async def issuer(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        tenant = body.get("tenant") if isinstance(body, dict) else None
        tenant = tenant if isinstance(tenant, str) else None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if api_token is None:
            return _Issuer(None, "insecure-dev")
        if scheme.lower() == "bearer" and token:
            if hmac.compare_digest(token.encode(), api_token.encode()):
                return _Issuer(None, "operator")
            if tenant is not None and keys.api_token_ok(tenant, token):
                return _Issuer(tenant, "api-token")
        raise HTTPException(401, "missing or wrong API token (Authorization: Bearer …); "
                            "a tenant's token needs the tenant in the body",
                            headers={"WWW-Authenticate": "Bearer"})

    return issuer


class _Issuer:
    def __init__(self, tenant: str | None, username: str) -> None:
        self.tenant = tenant
        self.username = username


def mount_enrolment(app: FastAPI, engine: Engine, keys: TenantKeyStore, ca_dir: Path | None,
                    api_token: str | None, web: Any = None) -> None:
    """``POST /api/enrolment/codes`` and ``/redeem``, and with ``web`` (a WebContext) the
    staff page that issues codes."""
    ensure_enrolment_schema(engine)

    def tenant_keys(tenant: str) -> EnrolmentKeys:
        try:
            k = keys.get(tenant)
        except TenantKeyError as exc:
            raise HTTPException(503, f"the tenant's keys are missing here: {exc}") from None
        return EnrolmentKeys(k.hmac_key, k.public_key_raw)

    router: APIRouter = enrolment_router(
        engine, enrolment_codes, tenant_keys=tenant_keys,
        broker=_http(lambda t: device_broker(ca_dir, t)),
        signer=_http(lambda t: device_signer(ca_dir, t)),
        issuer=api_issuer(keys, api_token), attempts=enrolment_failures)
    app.include_router(router)
    if web is not None:
        from cloud_bridge.web.enrolment_page import mount_enrolment_page

        mount_enrolment_page(app, ca_dir)
