"""Desired device configs on the bridge (SQLite and PostgreSQL): checked before they are
stored, numbered per device, delivered signed and retained, compared with what the
device reports; and the ``cloud-bridge device-config`` CLI as a real process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from cloud_bridge.db_schema import devices, read_tx
from cloud_bridge.device_config_publisher import DesiredConfigPublisher
from cloud_bridge.device_configs import (
    diff_text,
    drift_of,
    enrolment_profile,
    ensure_device_config_schema,
    fleet_drift,
    get_desired,
    latest_versions,
    set_desired,
)
from cloud_bridge.enrolment import issue_code
from cloud_bridge.enrolment_service import enrolment_codes
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant
from contracts.device_config import DeviceConfigError
from contracts.remote_config import DesiredConfig
from contracts.signed_envelope import verify_envelope

GOOD: dict[str, Any] = {"site": "s1", "gates": [{"id": "g1", "url": "sim:"}],
                        "readers": [{"id": "entry", "url": "sim:", "gate": "g1"}]}


class RetainingPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.messages.append((topic, payload, retain))


@pytest.fixture
def t1() -> str:
    """A tenant of its own: the PostgreSQL database is shared by the tests."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def schema(engine: Engine) -> Engine:
    ensure_device_config_schema(engine)
    return engine


def test_versions_count_up_and_refusals_store_nothing(schema: Engine, t1: str) -> None:
    with pytest.raises(DeviceConfigError, match=r"keys\.credential_hmac_key: a secret in clear"):
        set_desired(schema, t1, "d1", {**GOOD, "keys": {"credential_hmac_key": "hex:00"}},
                    by="test", now_ms=1)
    with read_tx(schema) as conn:
        assert get_desired(conn, t1, "d1") is None
    first = set_desired(schema, t1, "d1", GOOD, by="test", now_ms=1)
    second = set_desired(schema, t1, "d1", {**GOOD, "timezone": "Europe/Vienna"},
                         by="test", now_ms=2)
    other = set_desired(schema, t1, "d2", GOOD, by="test", now_ms=3)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    with read_tx(schema) as conn:
        assert latest_versions(conn, t1) == {(t1, "d1"): 2, (t1, "d2"): 1}
        newest = get_desired(conn, t1, "d1")
        old = get_desired(conn, t1, "d1", 1)
    assert newest is not None and old is not None
    assert '+timezone = "Europe/Vienna"' in diff_text(old.config, newest.config, "1", "2")


def test_published_signed_and_retained_once_per_version(schema: Engine, t1: str,
                                                        tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    create_tenant(keys_dir, t1)
    keys = TenantKeyStore(keys_dir)
    out = RetainingPublisher()
    publisher = DesiredConfigPublisher(schema, keys, out, "es/v1")
    set_desired(schema, t1, "d1", GOOD, by="test", now_ms=5)
    assert publisher.refresh() == 1
    assert publisher.refresh() == 0  # nothing new
    assert publisher.refresh(force=True) == 1  # after a reconnect: again
    topic, payload, retain = out.messages[0]
    assert topic == f"es/v1/{t1}/d1/config/desired" and retain
    desired = DesiredConfig.model_validate_json(
        verify_envelope(payload, keys.get(t1).public_key))
    assert (desired.tenant, desired.device, desired.version) == (t1, "d1", 1)
    assert desired.config == GOOD


def test_drift_from_the_reported_state(schema: Engine, t1: str) -> None:
    assert drift_of("d", 2, {"config": {"applied_version": 2, "status": "applied"}}).drift \
        is False
    rolled = drift_of("d", 2, {"config": {"applied_version": 1, "status": "rolled_back",
                                          "attempted_version": 2, "reason": "reader down"}})
    assert (rolled.drift, rolled.status, rolled.reason) == (True, "rolled_back", "reader down")
    assert drift_of("d", 2, {"config": {"applied_version": 1, "status": "applied",
                                        "attempted_version": 1}}).status == "pending"
    assert drift_of("d", 1, {"online": True}).status == "no_report"
    assert drift_of("d", None, None).drift is False
    set_desired(schema, t1, "d1", GOOD, by="test", now_ms=1)
    with schema.begin() as conn:
        conn.execute(insert(devices).values(tenant=t1, device="d9", online=True,
                                            last_seen=1, state={"v": 1, "online": True}))
    assert [(d.device, d.status) for d in fleet_drift(schema, t1)] == [
        ("d1", "no_report"), ("d9", "no_desired")]


def test_the_enrolment_profile_is_a_starting_point(schema: Engine, t1: str) -> None:
    profile = {**GOOD, "site_policy": {"anti_passback": True}, "mqtt": {"host": "x"},
               "data_dir": "/elsewhere"}
    profile.pop("site")
    issue_code(schema, enrolment_codes, tenant=t1, device="d1", site="s7", profile=profile,
               ttl_s=3600, created_by="test", now_ms=1)
    with read_tx(schema) as conn:
        start = enrolment_profile(conn, t1, "d1")
        assert enrolment_profile(conn, t1, "never-enrolled") is None
    assert start == {"site": "s7", "gates": GOOD["gates"], "readers": GOOD["readers"],
                     "site_policy": {"anti_passback": True}}
    assert set_desired(schema, t1, "d1", start, by="test", now_ms=2).version == 1


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloud_bridge", "device-config", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_set_show_diff(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    ident = ["--tenant", "t1", "--device", "d1", "--db", db]
    good = tmp_path / "good.toml"
    good.write_text('site = "s1"\n[[gates]]\nid = "g1"\nurl = "sim:"\n')
    clear = tmp_path / "clear.toml"
    clear.write_text(good.read_text() + "[keys]\n"
                     'credential_hmac_key = "base64:QUFBQUFBQUFBQUFBQUFBQUFBQUFB"\n')
    nothing = cli("set", *ident, "--from-enrolment")
    assert nothing.returncode == 2 and "never given an enrolment code" in nothing.stderr
    refused = cli("set", *ident, str(clear))
    assert refused.returncode == 2
    assert "keys.credential_hmac_key: a secret in clear" in refused.stderr
    assert "QUFB" not in refused.stderr + refused.stdout
    done = cli("set", *ident, str(good))
    assert done.returncode == 0 and "version 1 stored" in done.stdout, done.stderr
    changed = tmp_path / "changed.toml"
    changed.write_text('timezone = "Europe/Vienna"\n' + good.read_text())
    assert "version 2" in cli("set", *ident, str(changed)).stdout
    shown = cli("show", *ident, "--version", "1")
    assert shown.returncode == 0 and 'site = "s1"' in shown.stdout
    assert "has not reported" not in shown.stdout and "no_report" in shown.stdout
    diff = cli("diff", *ident)
    assert '+timezone = "Europe/Vienna"' in diff.stdout, diff.stderr
    assert cli("diff", *ident, "--file", str(changed)).stdout.strip() == "no differences"
