"""`edge-agent doctor` finds each fault it is meant to find, says what to fix, and exits
non-zero on failures: bad config, a peripheral down (opened briefly and through a running
agent), clock skew against the bridge's Date header, low disk, unreachable and refusing
brokers, expired certificates, a damaged store and an old outbox backlog."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.doctor import FAIL, OK, UNKNOWN, WARN, DoctorOptions, Finding, run_checks
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from tests.agent_process import AgentProcess
from tests.mqtt_broker import Broker, free_port
from tests.store_helpers import damage_store

FAILING_PRINTER = '\n[[printers]]\nid = "p1"\nurl = "sim:"\nfail = true\n'


def by_check(findings: list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check == check]
    assert found, f"no finding {check!r} in {[f.check for f in findings]}"
    return found[0]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def test_healthy_device_passes_and_cli_exits_zero(
    write_config: Callable[..., Path], broker: Broker,
) -> None:
    config = write_config(f"[mqtt]\nport = {broker.port}\n")
    done = subprocess.run([sys.executable, "-m", "agent", "doctor", "-c", str(config), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    statuses = {f["check"]: f["status"] for f in report["findings"]}
    assert report["ok"] is True
    assert statuses["config"] == OK and statuses["broker"] == OK and statuses["store"] == OK
    assert statuses["reader entry"] == OK and statuses["agent"] == WARN  # not running
    assert statuses["clock skew"] == UNKNOWN  # no bridge to compare with


def test_invalid_config_fails_with_the_key_named(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('tenant = "t"\ndevice = "d"\nsite = "s"\n[keys]\n'
                   'credential_hmac_key = "base64:AAAA"\n')
    f = by_check(run_checks(bad), "config")
    assert f.status == FAIL and "keys.credential_hmac_key" in f.detail and "check-config" in f.fix
    done = subprocess.run([sys.executable, "-m", "agent", "doctor", "-c", str(bad)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1 and "FAIL" in done.stdout


def test_peripheral_down_opened_briefly_and_via_running_agent(
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = write_config(FAILING_PRINTER)
    f = by_check(run_checks(config), "printer p1")
    assert f.status == FAIL and "opened briefly" in f.detail and f.fix
    assert by_check(run_checks(config), "reader entry").status == OK
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        findings = run_checks(config)
        assert by_check(findings, "agent").status == OK
        f = by_check(findings, "printer p1")
        assert f.status == FAIL and "running agent" in f.detail
    finally:
        agent.stop()


class _SkewedDate(BaseHTTPRequestHandler):
    skew_s = 0.0

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(time.time() + self.skew_s, usegmt=True)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def skewed_bridge() -> Iterator[Callable[[float], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(skew: float) -> str:
        handler = type("H", (_SkewedDate,), {"skew_s": skew})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for s in servers:
        s.shutdown()


def test_clock_skew_against_the_bridge_date_header(
    write_config: Callable[..., Path], skewed_bridge: Callable[[float], str],
) -> None:
    config = write_config()
    ahead = by_check(run_checks(config, DoctorOptions(bridge_url=skewed_bridge(600))),
                     "clock skew")
    # the Date header has whole seconds: 599.x or, at a second's boundary, 600.0
    assert ahead.status == FAIL and re.match(r"device clock (59\d|600)\.\d s", ahead.detail)
    assert "behind the bridge" in ahead.detail
    assert "timedatectl" in ahead.fix
    assert by_check(run_checks(config, DoctorOptions(bridge_url=skewed_bridge(10))),
                    "clock skew").status == WARN
    assert by_check(run_checks(config, DoctorOptions(bridge_url=skewed_bridge(0))),
                    "clock skew").status == OK
    # the bridge URL is found in enrolment.json after provisioning
    (config.parent / "enrolment.json").write_text(json.dumps({"bridge": skewed_bridge(-900)}))
    behind = by_check(run_checks(config), "clock skew")
    assert behind.status == FAIL and "ahead of the bridge" in behind.detail


def test_low_disk_fails(write_config: Callable[..., Path]) -> None:
    f = by_check(run_checks(write_config(), DoctorOptions(min_free_mb=10**9)), "disk space")
    assert f.status == FAIL and "journalctl --vacuum-size" in f.fix


def test_broker_unreachable_and_refusing(write_config: Callable[..., Path], tmp_path: Path
                                         ) -> None:
    closed = by_check(run_checks(write_config(f"[mqtt]\nport = {free_port()}\n")), "broker")
    assert closed.status == FAIL and "TCP connect failed" in closed.detail
    strict = Broker(tmp_path / "strict", extra_config="allow_anonymous false\n").start()
    try:
        refused = by_check(run_checks(write_config(f"[mqtt]\nport = {strict.port}\n")),
                           "broker")
    finally:
        strict.stop()
    assert refused.status == FAIL and "refused" in refused.detail and "re-provision" in refused.fix


def _cert(path: Path, not_before: datetime, not_after: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_expired_and_soon_expiring_certificates(write_config: Callable[..., Path],
                                                tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _cert(tmp_path / "ca.crt", now - timedelta(days=400), now - timedelta(days=1))
    _cert(tmp_path / "device.crt", now - timedelta(days=10), now + timedelta(days=5))
    config = write_config(f'[mqtt]\nport = {free_port()}\ntls_ca = "ca.crt"\n'
                          'tls_cert = "device.crt"\ntls_key = "device.key"\n')
    findings = run_checks(config)
    ca = by_check(findings, "certificate tls_ca")
    assert ca.status == FAIL and "expired" in ca.detail and "provision --force" in ca.fix
    dev = by_check(findings, "certificate tls_cert")
    assert dev.status == WARN and "days left" in dev.detail


def test_damaged_store_fails_with_recovery_steps(write_config: Callable[..., Path]) -> None:
    config = write_config()
    damage_store(config.parent / "data" / "agent.sqlite3")
    f = by_check(run_checks(config), "store")
    assert f.status == FAIL and "Recovery:" in f.fix and ".recover" in f.fix


def test_old_outbox_backlog_fails(write_config: Callable[..., Path], broker: Broker) -> None:
    config = write_config(f"[mqtt]\nport = {broker.port}\n")
    store = LocalStore(config.parent / "data" / "agent.sqlite3")
    outbox = Outbox(store, "t1", "dev1")
    with store.transaction() as conn:
        outbox.append(conn, "access.decision", {}, datetime.now(UTC))
        conn.execute("UPDATE outbox SET created_ms = ?",
                     (int((time.time() - 2 * 86400) * 1000),))
    store.close()
    f = by_check(run_checks(config), "outbox backlog")
    assert f.status == FAIL and "1 events waiting, oldest 2.0 days old" in f.detail
    assert "broker" in f.fix
