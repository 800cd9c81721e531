"""Signed updates with automatic rollback, end to end with real builds: the project's
wheel at three versions (old, new, and a broken one whose self-test tap fails), served
over HTTPS, installed by the guard with pip into new environments, the agent restarted
under its supervising process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_bridge.releases.rollout import RolloutControl
from contracts.release_manifest import ReleaseOffer
from tests.mqtt_broker import Broker
from tests.update.device import Device
from tests.update.release_kit import BROKEN, NEW, OLD, ReleaseKit

pytestmark = pytest.mark.slow


def offer(kit: ReleaseKit, version: str, **extra: Any) -> bytes:
    fields = {"offered_ms": int(time.time() * 1000), **extra}
    return ReleaseOffer(channel="stable", version=version, manifest_url=kit.manifest_url(version),
                        **fields).model_dump_json().encode()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_rollout_offer_updates_the_device_and_it_reports(
        kit: ReleaseKit, make_device: Callable[..., Device], tmp_path: Any) -> None:
    broker = Broker(tmp_path / "broker").start()
    publisher = Publisher(broker.port)
    try:
        device = make_device(extra=f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker.port}\n")
        device.start()
        device.wait_version(OLD)
        control = RolloutControl(tmp_path / "rollouts", publisher, kit.server.url)
        (tmp_path / "rollouts").mkdir()
        state = control.start("t1", "stable", NEW, 1.0, ["gate-1"])
        assert state.offered == {"gate-1": NEW}

        journal = device.wait_journal("confirmed", "rolled_back", "failed")
        assert journal.state == "confirmed", journal.reason
        device.wait_version(NEW)
        assert device.layout.version_of(device.layout.current_env()) == NEW
        assert device.layout.version_of(device.layout.previous_env()) == OLD
        status = device.status()
        assert status is not None and status["update"]["state"] == "confirmed"
        events = device.wait_update_events()
        assert [(e["outcome"], e["from"], e["to"]) for e in events] == [
            ("confirmed", OLD, NEW)]
        # the retained offer comes again at every reconnect: running it already, no guard
        assert device.layout.read_journal() == journal.moved(journal.state, reported=True)

        # a technician goes back by hand
        status = device.update_cli("status")
        assert json.loads(status.stdout)["previous"] == OLD
        back = device.update_cli("rollback")
        assert back.returncode == 0 and f"now on {OLD}" in back.stdout, back.stderr
        device.wait_version(OLD)
    finally:
        publisher.close()
        broker.stop()


def test_broken_release_rolls_back_by_itself(kit: ReleaseKit,
                                             make_device: Callable[..., Device]) -> None:
    device = make_device(confirm_timeout_s=20)
    device.start()
    device.wait_version(OLD)
    done = device.run_guard(offer(kit, BROKEN))
    assert done.returncode == 1, done.stderr
    journal = device.layout.read_journal()
    assert journal is not None and journal.state == "rolled_back"
    assert "broken build: the decision path fails" in journal.reason
    device.wait_version(OLD)
    assert device.layout.version_of(device.layout.current_env()) == OLD
    (event,) = device.wait_update_events()
    assert event["outcome"] == "rolled_back" and event["to"] == BROKEN
    assert event["running"] == OLD and "decision path" in event["reason"]
    # the same offer again (the retained message at a reconnect) is not retried
    again = device.run_guard(offer(kit, BROKEN, offered_ms=journal.started_ms - 1))
    assert again.returncode == 2 and "already rolled back" in again.stderr


def test_a_tampered_wheel_is_refused_before_anything_changes(
        kit: ReleaseKit, make_device: Callable[..., Device], tmp_path: Any) -> None:
    device = make_device()
    # a copy of the new release whose wheel differs from what the manifest signed
    release = kit.store.release_dir("stable", NEW)
    wheel = next(release.glob("*.whl"))
    original = wheel.read_bytes()
    try:
        wheel.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        done = device.run_guard(offer(kit, NEW))
    finally:
        wheel.write_bytes(original)
    journal = device.layout.read_journal()
    assert done.returncode == 1 and journal is not None and journal.state == "failed"
    assert "does not match the signed manifest" in journal.reason
    assert device.layout.version_of(device.layout.current_env()) == OLD
    assert not device.layout.env_for(NEW).exists()


# (fault point, journal state it leaves, outcome after the next start, version then)
STEPS = [
    ("update.download", "downloading", "failed", OLD),
    ("update.install", "installing", "failed", OLD),
    ("update.switch", "installing", "failed", OLD),
    ("update.confirm", "switched", "confirmed", NEW),
]


@pytest.mark.parametrize(("point", "left", "outcome", "version"), STEPS,
                         ids=[s[0] for s in STEPS])
def test_power_cut_at_each_step_leaves_a_device_that_starts(
        kit: ReleaseKit, make_device: Callable[..., Device], point: str, left: str,
        outcome: str, version: str) -> None:
    device = make_device()
    done = device.run_guard(offer(kit, NEW), fault=point)
    assert done.returncode == -9, done.stderr  # the guard died there, by SIGKILL
    journal = device.layout.read_journal()
    assert journal is not None and journal.state == left
    device.power_cut()  # and everything else with it

    device.start()
    device.wait_version(version if left == "switched" else OLD)  # it starts
    final = device.wait_journal("confirmed", "rolled_back", "failed")
    assert final.state == outcome, final.reason
    device.wait_version(version)
    current = device.layout.current_env()
    assert current is not None and device.layout.version_of(current) == version
    leftovers = {p.name for p in device.layout.envs.iterdir() if not p.name.startswith(".")}
    assert leftovers <= {OLD, NEW} and (version == NEW or NEW not in leftovers)
    assert json.loads(device.layout.journal_path.read_text())["state"] == outcome


def test_a_refused_restart_switches_back_and_reports_why(
        kit: ReleaseKit, make_device: Callable[..., Device]) -> None:
    """The systemd back-end with a unit systemd does not have (or, on a machine without
    systemd as PID 1, no systemd to ask): the real systemctl refuses the restart after the
    switch. The old agent still runs, so `current` goes back to it at once and the attempt
    is `failed` with systemctl's answer (not left `switched` for a later start to run)."""
    device = make_device()
    device.config.write_text(device.config.read_text().replace(
        f'service = "process:{device.root}/agent.pid"',
        'service = "systemd:edge-agent-test-absent.service"'))
    done = device.run_guard(offer(kit, NEW))
    assert done.returncode == 1, done.stderr
    journal = device.layout.read_journal()
    assert journal is not None and journal.state == "failed", journal
    assert journal.reason.startswith("restart: systemctl restart --no-block: exit "), journal
    assert device.layout.version_of(device.layout.current_env()) == OLD
    assert not device.layout.env_for(NEW).exists(), "the failed version's environment stays"
