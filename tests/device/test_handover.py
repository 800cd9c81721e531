"""Replacing a device: export-outbox on the old one (refused while it runs, retires its
store), import-outbox on the replacement (same tenant/device id, fresh store), and the
replacement resends exactly the unacknowledged events with their original ids and seqs,
then continues the seq without a gap; local entry counters and presence come along."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.store import local_store
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from tests.agent_process import AgentProcess, edge_sim
from tests.cloud_harness import CloudHarness
from tests.conftest import config_text
from tests.mqtt_broker import Broker


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=120)


def test_replace_a_device_without_losing_unsent_events(
    write_config: Callable[..., Path], tmp_path: Path, hmac_key: bytes,
) -> None:
    old_cfg = write_config()
    old = AgentProcess(old_cfg, tmp_path / "old.log")
    try:
        assert edge_sim("members", "--count", "20", "--json", config=old_cfg).returncode == 0
        for args in (("--member", "5"), ("--member", "6"), ("04DEADBEEF0001",),
                     ("--member", "5", "--reader", "exit"), ("--member", "7")):
            done = edge_sim("tap", *args, "--json", config=old_cfg)
            assert done.returncode == 0, done.stderr
        handover = tmp_path / "gate.handover"
        running = _cli("export-outbox", "-c", str(old_cfg), "--out", str(handover))
        assert running.returncode == 2 and "stop it first" in running.stderr
    finally:
        assert old.stop() == 0

    store_path = tmp_path / "data" / "agent.sqlite3"
    store = LocalStore(store_path)
    Outbox(store, "t1", "dev1").ack(2)  # the bridge had acknowledged the first two
    counters = store.conn.execute("SELECT * FROM entry_counters ORDER BY 1").fetchall()
    presence = store.conn.execute("SELECT * FROM presence ORDER BY 1").fetchall()
    unsent = store.conn.execute("SELECT seq, id FROM outbox ORDER BY seq").fetchall()
    store.close()
    assert [s for s, _ in unsent] == [3, 4, 5] and presence

    done = _cli("export-outbox", "-c", str(old_cfg), "--out", str(handover))
    assert done.returncode == 0, done.stderr
    assert "exported 3 unsent events" in done.stdout
    assert (handover.stat().st_mode & 0o777) == 0o600
    # the old device can never send again with seqs the replacement uses
    local_store._checked.clear()
    with pytest.raises(RuntimeError, match="handed over to a replacement device"):
        AgentProcess(old_cfg, tmp_path / "old-again.log")
    assert _cli("export-outbox", "-c", str(old_cfg), "--out", str(tmp_path / "x")
                ).returncode == 2

    broker = Broker(tmp_path / "broker").start()
    new_cfg = tmp_path / "new.toml"
    new_cfg.write_text(config_text(tmp_path / "new-data", hmac_key,
                                   extra=f"[mqtt]\nport = {broker.port}\n"))
    other = tmp_path / "other.toml"
    other.write_text(config_text(tmp_path / "other", hmac_key).replace('"dev1"', '"dev9"'))
    wrong = _cli("import-outbox", str(handover), "-c", str(other))
    assert wrong.returncode == 2 and "belongs to t1/dev1" in wrong.stderr
    imported = _cli("import-outbox", str(handover), "-c", str(new_cfg))
    assert imported.returncode == 0, imported.stderr
    assert "next event is seq 6" in imported.stdout
    twice = _cli("import-outbox", str(handover), "-c", str(new_cfg))
    assert twice.returncode == 2 and "already has events" in twice.stderr

    cloud = CloudHarness(broker.port, auto_ack=False)
    new = AgentProcess(new_cfg, tmp_path / "new.log")
    try:
        cloud.wait_for(lambda t, p: t.endswith("/events"), timeout=20)
        assert edge_sim("tap", "04DEADBEEF0002", "--json", config=new_cfg).returncode == 0
        cloud.wait_for(lambda t, p: t.endswith("/events") and
                       json.loads(p)["events"][-1]["seq"] == 6, timeout=20)
        got = {seq: ev["id"] for (dev, seq), ev in cloud.events.items() if dev == "dev1"}
        assert sorted(got) == [3, 4, 5, 6]  # nothing acked is resent, nothing unsent missing
        assert [(s, got[s]) for s in (3, 4, 5)] == unsent  # the very same events
    finally:
        new.stop()
        cloud.client.loop_stop()
        cloud.client.disconnect()
        broker.stop()
    fresh = LocalStore(tmp_path / "new-data" / "agent.sqlite3")
    assert fresh.conn.execute("SELECT * FROM entry_counters ORDER BY 1").fetchall() == counters
    assert fresh.conn.execute("SELECT * FROM presence ORDER BY 1").fetchall() == presence
    fresh.close()
