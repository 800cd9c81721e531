"""Issue 14 item 4: no device joins the bridges' shared-subscription group.

Real peers: Mosquitto running the configuration rendered from mosquitto/ (with the
share_guard plugin built from mosquitto/share-guard/), a real ``cloud-bridge serve``
process with its bridge certificate, and rogue devices with valid device certificates
that try to join the group. Without the plugin Mosquitto 2.0 grants the rogue's
``$share/...`` subscription, hands it every other event batch, and drops each one (the
rogue may not read it): the bridge then stores about half of the events on first
delivery. With it, the SUBACK says 0x87 and the bridge stores all of them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cloud_bridge.cli import app
from cloud_bridge.db_schema import events, make_engine
from cloud_bridge.share_group import ShareGroupError, check, load_or_create, read, share_group_file
from cloud_bridge.tenant_keys import create_tenant
from tests.bridge.conftest import stop_process
from tests.bridge.device_emulator import batch_payload, make_event
from tests.security.fleet_broker import Client, FleetBroker

ROOT = Path(__file__).resolve().parents[2]
NOT_AUTHORISED = 0x87
KINDS = ("events", "state", "cmd-result", "members/request")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetBroker]:
    broker = FleetBroker(tmp_path / "fleet")
    broker.workdir.mkdir()
    broker.setup({"t1": ("b1",), "t2": ()}).start()
    yield broker
    broker.stop()


def start_bridge(fleet: FleetBroker, db_url: str, keys_dir: Path, log: Path
                 ) -> subprocess.Popen[bytes]:
    ident = fleet.identity("t1", "b1", bridge=True)
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url,
             "--mqtt-port", str(fleet.ports["t1"]), "--mqtt-tls-ca", str(fleet.ca_file("t1")),
             "--mqtt-tls-cert", str(ident.cert), "--mqtt-tls-key", str(ident.key),
             "--http-port", "0", "--keys-dir", str(keys_dir), "--stats-interval", "0.2"],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_log(log: Path, needle: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{needle!r} not in {log}:\n{log.read_text()}"
        time.sleep(0.05)


@pytest.mark.slow
def test_rogue_device_cannot_join_the_group_and_every_event_is_stored_first_time(
        fleet: FleetBroker, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    create_tenant(keys_dir, "t1")
    db_url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    log = tmp_path / "bridge.log"
    proc = start_bridge(fleet, db_url, keys_dir, log)
    rogues: list[Client] = []
    try:
        wait_log(log, "connected to")
        # the worst case: the rogue knows the deployment's secret group name
        group = read(share_group_file(keys_dir))
        assert group not in log.read_text(), "the group name is a secret: never logged"
        for tenant in ("t1", "t2"):  # on the bridges' listener and on another tenant's
            rogue = Client(fleet, tenant, fleet.identity(tenant, "rogue"))
            assert rogue.connected, rogue.error
            rogues.append(rogue)
            for kind in KINDS:
                for name in (group, "bridge", "x"):
                    filt = f"$share/{name}/es/v1/+/+/{kind}"
                    assert rogue.subscribe(filt) == NOT_AUTHORISED, (tenant, filt)
            assert rogue.subscribe("$share/x/#") == NOT_AUTHORISED
            # plain subscriptions still go to the acl_file as before
            assert rogue.subscribe(f"es/v1/{tenant}/rogue/ack") == 1

        device = Client(fleet, "t1", fleet.identity("t1", "gate-1"))
        assert device.connected, device.error
        batches, per_batch = 40, 5
        for b in range(batches):  # each batch published once: no resend ever
            seqs = range(b * per_batch + 1, (b + 1) * per_batch + 1)
            payload = batch_payload("t1", "gate-1", [make_event("t1", "gate-1", s)
                                                     for s in seqs])
            assert device.publish("es/v1/t1/gate-1/events", payload) == 0
        engine = make_engine(db_url)
        try:
            total = batches * per_batch
            deadline = time.monotonic() + 20
            stored = 0
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    stored = conn.execute(select(func.count()).select_from(events)
                                          .where(events.c.tenant == "t1")).scalar_one()
                if stored == total:
                    break
                time.sleep(0.1)
            assert stored == total, f"the bridge stored {stored} of {total} events"
        finally:
            engine.dispose()
        device.close()
        assert "share_guard: refused" in (fleet.workdir / "mosquitto.log").read_text()
    finally:
        for rogue in rogues:
            rogue.close()
        stop_process(proc)


def test_group_name_is_created_once_per_keys_dir_secret_and_shared(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "keys")
    path = share_group_file(tmp_path / "keys")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.startswith("bridge-") and len(first) >= 39  # 128 random bits in hex
    assert load_or_create(tmp_path / "keys") == first  # every bridge of the deployment
    assert load_or_create(tmp_path / "other") != first  # another deployment
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["mqtt-share-group"]


@pytest.mark.parametrize("name", ["bridge", "bridge/x", "+", "#", "a" * 15, "a+" * 10])
def test_guessable_or_invalid_group_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ShareGroupError):
        check(name)
    share_group_file(tmp_path).write_text(name + "\n")
    with pytest.raises(ShareGroupError, match="share group must be"):
        load_or_create(tmp_path)


def test_serve_refuses_a_guessable_group_before_touching_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                                      "--http-port", "0", "--keys-dir", str(tmp_path),
                                      "--share-group", "bridge"])
    assert result.exit_code == 2
    assert "refusing to start" in result.output and "share group must be" in result.output
    assert not (tmp_path / "x.db").exists()
