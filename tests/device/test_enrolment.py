"""The bridge's enrolment router on its own (FastAPI TestClient, in-memory SQLite): codes
are issued only by authorised staff of the tenant, for a valid device profile; a code is
redeemed exactly once and not after its expiry; the device's CSR is signed with a subject
the bridge chooses; the returned config loads with the agent's own loader."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine
from sqlalchemy.pool import StaticPool

from agent.config import load_config
from agent.provisioning import _new_key_and_csr
from cloud_bridge.enrolment import (
    BrokerSettings,
    DeviceCA,
    EnrolmentKeys,
    RateLimit,
    attempts_table,
    code_hash,
    enrolment_router,
    enrolment_table,
)
from tests.device.pki import make_ca

PROFILE: dict[str, Any] = {
    "timezone": "Europe/Ljubljana",
    "gates": [{"id": "g1", "url": "sim:", "zone": "main"}],
    "readers": [{"id": "entry", "url": "sim:", "gate": "g1", "direction": "in"}],
    "site_policy": {"anti_passback": True},
}


def staff(authorization: str = Header(default="")) -> SimpleNamespace:
    if authorization == "Bearer admin-gym":
        return SimpleNamespace(tenant="gym", username="ana")
    raise HTTPException(401, "log in first")


def make_app(clock: list[float], with_ca: bool = True) -> tuple[TestClient, Any, bytes]:
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    metadata = MetaData()
    table = enrolment_table(metadata)
    metadata.create_all(engine)
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                    PublicFormat.Raw)
    ca_pem, ca_key = make_ca()
    app = FastAPI()
    app.include_router(enrolment_router(
        engine, table,
        tenant_keys=lambda tenant: EnrolmentKeys(b"h" * 32, public),
        broker=BrokerSettings("mqtt.example", 8883, ca_pem=ca_pem),
        issuer=staff, device_ca=DeviceCA(ca_pem, ca_key) if with_ca else None,
        clock=lambda: clock[0]))
    return TestClient(app), engine, ca_pem


ADMIN = {"Authorization": "Bearer admin-gym"}


def test_issue_needs_staff_of_the_tenant_and_a_valid_profile() -> None:
    client, _, _ = make_app([1_800_000_000.0])
    body = {"device": "gate-01", "site": "center", "profile": PROFILE}
    assert client.post("/api/enrolment/codes", json=body).status_code == 401
    other = client.post("/api/enrolment/codes", json={**body, "tenant": "other"}, headers=ADMIN)
    assert other.status_code == 403
    bad = client.post("/api/enrolment/codes", headers=ADMIN, json={
        **body, "profile": {"readers": [{"id": "r", "url": "sim:", "gate": "nope"}]}})
    assert bad.status_code == 422 and "readers[0].gate" in bad.json()["detail"]
    ok = client.post("/api/enrolment/codes", json=body, headers=ADMIN)
    assert ok.status_code == 201
    code = ok.json()["code"]
    assert len(code) == 19 and code.count("-") == 3


def test_redeem_once_with_csr_and_config_that_loads(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    client, engine, ca_pem = make_app(clock)
    code = client.post("/api/enrolment/codes", headers=ADMIN, json={
        "device": "gate-01", "site": "center", "profile": PROFILE}).json()["code"]
    # the code is stored only as a hash
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT code_hash FROM device_enrolment_codes").scalar()
    assert stored == code_hash(code) and code not in stored

    key_pem, csr_pem = _new_key_and_csr()
    reply = client.post("/api/enrolment/redeem",
                        json={"code": code.lower(), "csr_pem": csr_pem, "data_dir": "data"})
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert (got["tenant"], got["device"], got["site"]) == ("gym", "gate-01", "center")
    assert base64.b64decode(got["credential_hmac_key"]) == b"h" * 32
    assert got["ca_pem"] == ca_pem.decode()
    cert = x509.load_pem_x509_certificate(got["device_cert_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gate-01"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "gym"
    assert cert.issuer == x509.load_pem_x509_certificate(ca_pem).subject
    # the config, with the files it names, is one the agent loads
    (tmp_path / "agent.toml").write_text(got["config_toml"])
    for role, rel in got["files"].items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        content = {"credential_hmac_key": got["credential_hmac_key"], "ca": got["ca_pem"],
                   "cert": got["device_cert_pem"], "key": key_pem.decode()}[role]
        (tmp_path / rel).write_text(content)
        (tmp_path / rel).chmod(0o600)  # the agent refuses keys others can read
    cfg = load_config(tmp_path / "agent.toml")
    assert cfg.device == "gate-01" and cfg.site_policy.anti_passback
    assert cfg.mqtt is not None and cfg.mqtt.host == "mqtt.example" and cfg.mqtt.tls_cert
    assert cfg.hmac_key() == b"h" * 32

    again = client.post("/api/enrolment/redeem", json={"code": code})
    assert again.status_code == 409 and "že uporabljena" in again.json()["detail"]


def test_expired_unknown_and_replaced_codes() -> None:
    clock = [1_800_000_000.0]
    client, _, _ = make_app(clock, with_ca=False)
    body = {"device": "gate-02", "site": "center", "ttl_s": 600}
    first = client.post("/api/enrolment/codes", json=body, headers=ADMIN).json()["code"]
    second = client.post("/api/enrolment/codes", json=body, headers=ADMIN).json()["code"]
    # a new code for the same device replaces the unused one
    assert client.post("/api/enrolment/redeem", json={"code": first}).status_code == 404
    clock[0] += 601
    expired = client.post("/api/enrolment/redeem", json={"code": second})
    assert expired.status_code == 410 and "potekla" in expired.json()["detail"]
    assert client.post("/api/enrolment/redeem",
                       json={"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 404
    assert client.post("/api/enrolment/redeem",
                       json={"code": "AAAA-BBBB", "csr_pem": "junk"}).status_code == 422


@pytest.mark.parametrize("field", ["code"])
def test_redeem_rejects_extra_fields(field: str) -> None:
    client, _, _ = make_app([1_800_000_000.0])
    assert client.post("/api/enrolment/redeem",
                       json={field: "AAAA-BBBB-CCCC-DDDD", "device": "x"}).status_code == 422


def test_wrong_tenant_is_refused_without_using_the_code_and_failures_are_rate_limited(
        ) -> None:
    clock = [1_800_000_000.0]
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    metadata = MetaData()
    table, failures = enrolment_table(metadata), attempts_table(metadata)
    metadata.create_all(engine)
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                    PublicFormat.Raw)
    app = FastAPI()
    app.include_router(enrolment_router(
        engine, table, tenant_keys=lambda tenant: EnrolmentKeys(b"h" * 32, public),
        broker=BrokerSettings("mqtt.example"), issuer=staff, attempts=failures,
        rate_limit=RateLimit(max_failures=3, window_s=600), clock=lambda: clock[0]))
    client = TestClient(app)
    code = client.post("/api/enrolment/codes", headers=ADMIN, json={
        "device": "gate-03", "site": "center"}).json()["code"]
    wrong = client.post("/api/enrolment/redeem", json={"code": code, "tenant": "other"})
    assert wrong.status_code == 403 and "'other'" in wrong.json()["detail"]
    for _ in range(2):  # with the wrong tenant: three failures from this client
        assert client.post("/api/enrolment/redeem",
                           json={"code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 404
    # the limit holds even for a right code, and says when to come back
    limited = client.post("/api/enrolment/redeem", json={"code": code, "tenant": "gym"})
    assert limited.status_code == 429 and "10 min" in limited.json()["detail"]
    assert limited.headers["retry-after"] == "600"
    clock[0] += 601  # the window passes; the code was not used up by the refusals
    ok = client.post("/api/enrolment/redeem", json={"code": code, "tenant": "gym"})
    assert ok.status_code == 200, ok.text
