"""Provisioning end to end: a real bridge process side (the enrolment router served by
uvicorn), a real Mosquitto with TLS that requires client certificates from the device CA,
and the real `edge-agent provision`, `check-config`, `doctor` and `run`. The provisioned
agent connects with the certificate it got and delivers a tap's event."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import MetaData, create_engine

from cloud_bridge.enrolment import (
    BrokerSettings,
    DeviceCA,
    EnrolmentKeys,
    enrolment_router,
    enrolment_table,
)
from tests.agent_process import AgentProcess, edge_sim
from tests.cloud_harness import CloudHarness
from tests.device.pki import make_ca, server_cert
from tests.mqtt_broker import Broker, free_port

HMAC_KEY = b"s" * 32
PROFILE = {
    "gates": [{"id": "g1", "url": "sim:", "zone": "main"}],
    "readers": [{"id": "entry", "url": "sim:", "gate": "g1", "direction": "in"}],
}


def _staff(authorization: str = Header(default="")) -> SimpleNamespace:
    if authorization != "Bearer t":
        raise HTTPException(401, "log in first")
    return SimpleNamespace(tenant="t1", username="tech")


class Site(SimpleNamespace):
    bridge: str
    plain_port: int


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    ca_pem, ca_key = make_ca()
    # mosquitto drops root for its own user: its files must be outside pytest's 0700 tmp
    pki = Path(tempfile.mkdtemp(prefix="edge-pki-", dir="/tmp"))
    pki.chmod(0o755)
    (pki / "ca.crt").write_bytes(ca_pem)
    crt, key = server_cert(ca_pem, ca_key, pki)
    for f in pki.iterdir():
        f.chmod(0o644)
    plain = free_port()
    broker = Broker(tmp_path / "broker", extra_config=(
        f"cafile {pki / 'ca.crt'}\ncertfile {crt}\nkeyfile {key}\n"
        "require_certificate true\nuse_identity_as_username true\n"
        f"listener {plain} 127.0.0.1\n")).start()
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                    PublicFormat.Raw)
    engine = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    metadata = MetaData()
    table = enrolment_table(metadata)
    metadata.create_all(engine)
    app = FastAPI()
    app.include_router(enrolment_router(
        engine, table, tenant_keys=lambda _t: EnrolmentKeys(HMAC_KEY, public),
        broker=BrokerSettings("127.0.0.1", broker.port, ca_pem=ca_pem), issuer=_staff,
        device_ca=DeviceCA(ca_pem, ca_key)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield Site(bridge=f"http://127.0.0.1:{port}", plain_port=plain)
    server.should_exit = True
    thread.join(10)
    broker.stop()
    shutil.rmtree(pki, ignore_errors=True)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=120)


def _issue(site: Site, device: str = "gate-01") -> str:
    reply = httpx.post(f"{site.bridge}/api/enrolment/codes", headers={"Authorization":
                       "Bearer t"}, json={"device": device, "site": "center",
                                          "profile": PROFILE})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["code"])


def test_provision_then_run_over_tls_with_the_issued_certificate(site: Site, tmp_path: Path
                                                                 ) -> None:
    etc, data = tmp_path / "etc", tmp_path / "var"
    code = _issue(site)
    done = _cli("provision", "--bridge", site.bridge, "--code", code, "--dir", str(etc),
                "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert "nameščeno: t1/gate-01" in done.stdout and "velja do" in done.stdout
    secret = base64.b64encode(HMAC_KEY).decode()
    assert secret not in done.stdout + done.stderr and code not in done.stdout
    files = sorted(p.relative_to(etc).as_posix() for p in etc.rglob("*") if p.is_file())
    assert files == ["agent.toml", "enrolment.json", "keys/credential_hmac.key",
                     "tls/ca.crt", "tls/device.crt", "tls/device.key"]
    for p in etc.rglob("*"):
        assert (p.stat().st_mode & 0o777) == (0o700 if p.is_dir() else 0o600), p
    assert json.loads((etc / "enrolment.json").read_text())["bridge"] == site.bridge
    config = etc / "agent.toml"
    assert _cli("check-config", str(config)).returncode == 0

    # doctor: the broker accepts the certificate, the clock is compared with the bridge
    report = json.loads(_cli("doctor", "-c", str(config), "--json").stdout)
    status = {f["check"]: f["status"] for f in report["findings"]}
    assert status["broker"] == "ok", report
    assert status["certificate tls_cert"] == "ok" and status["clock skew"] == "ok"

    cloud = CloudHarness(site.plain_port)
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        cloud.wait_for(lambda t, p: t.endswith("gate-01/state") and json.loads(p)["online"],
                       timeout=20)
        assert edge_sim("tap", "04AABBCCDDEEFF", "--json", config=config).returncode == 0
        cloud.wait_for(lambda t, p: t.endswith("gate-01/events"), timeout=20)
        assert cloud.contiguous("gate-01") == 1
    finally:
        agent.stop()
        cloud.client.loop_stop()
        cloud.client.disconnect()

    # the code worked once; an existing provisioning is not overwritten by accident
    again = _cli("provision", "--bridge", site.bridge, "--code", code, "--dir", str(etc),
                 "--force")
    assert again.returncode == 2 and "že uporabljena" in again.stderr
    fresh = _issue(site)
    kept = _cli("provision", "--bridge", site.bridge, "--code", fresh, "--dir", str(etc))
    assert kept.returncode == 2 and "že nameščena" in kept.stderr
    replaced = _cli("provision", "--bridge", site.bridge, "--code", fresh, "--dir", str(etc),
                    "--data-dir", str(data), "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert list(etc.glob(".replaced-*/agent.toml"))


def test_plain_http_to_a_remote_bridge_is_refused(tmp_path: Path) -> None:
    done = _cli("provision", "--bridge", "http://bridge.example", "--code", "X" * 16,
                "--dir", str(tmp_path))
    assert done.returncode == 2 and "https://" in done.stderr


def test_the_debian_package_default_config_is_replaced_without_force(tmp_path: Path) -> None:
    """packaging/deb/agent.toml means "not provisioned": provision goes on to the bridge
    (here: none listening) instead of refusing; an edited device name is a provisioning."""
    default = Path(__file__).resolve().parents[2] / "packaging/deb/agent.toml"
    shutil.copy(default, tmp_path / "agent.toml")
    args = ("provision", "--bridge", f"https://127.0.0.1:{free_port()}", "--code",
            "ABCD-EFGH-JKMN-PQRS", "--dir", str(tmp_path))
    done = _cli(*args)
    assert done.returncode == 2 and "ni mogoče doseči" in done.stderr, done.stderr
    assert (tmp_path / "agent.toml").read_bytes() == default.read_bytes()
    (tmp_path / "agent.toml").write_text(default.read_text().replace(
        'device = "unprovisioned"', 'device = "gate-01"'))
    kept = _cli(*args)
    assert kept.returncode == 2 and "že nameščena" in kept.stderr, kept.stderr
