"""The pieces of a release without building one: the signed manifest, the offer, the
guard's refusals, the atomic symlink switch and the rollout's choice of devices."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.update.guard import refusal
from agent.update.layout import INSTALLED_MARK, Journal, UpdateLayout
from cloud_bridge.releases.rollout import Rollout, RolloutControl, chosen
from contracts.errors import BadInput, SignatureError
from contracts.release_manifest import (
    ReleaseFile,
    ReleaseManifest,
    ReleaseOffer,
    open_manifest,
    parse_offer,
    sign_manifest,
    version_key,
)


def manifest(version: str = "1.1.0") -> ReleaseManifest:
    return ReleaseManifest(channel="stable", version=version,
                           requirement=f"edge-suite=={version}", created_ms=1,
                           files=[ReleaseFile(name="edge_suite-1.1.0-py3-none-any.whl",
                                              sha256="0" * 64, size=10)])


def test_a_manifest_opens_only_with_the_release_key() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_manifest(key, manifest())
    assert open_manifest(signed, key.public_key()) == manifest()
    with pytest.raises(SignatureError, match="release public key"):
        open_manifest(signed, Ed25519PrivateKey.generate().public_key())
    outer = json.loads(signed)
    raw = base64.b64decode(outer["payload"]).replace(b'"1.1.0"', b'"9.9.9"')
    tampered = json.dumps({**outer, "payload": base64.b64encode(raw).decode()}).encode()
    with pytest.raises(SignatureError):
        open_manifest(tampered, key.public_key())


def test_file_names_cannot_leave_the_download_folder() -> None:
    with pytest.raises(ValueError, match="plain wheel file name"):
        ReleaseFile(name="../../etc/evil.whl", sha256="0" * 64, size=1)


def test_versions_sort_numerically_and_offers_are_bounded() -> None:
    assert version_key("0.10.0") > version_key("0.9.9")
    with pytest.raises(BadInput, match=r"N\.N\.N"):
        version_key("1.0-rc1")
    with pytest.raises(BadInput, match="over"):
        parse_offer(b"{" + b" " * 5000 + b"}")
    with pytest.raises(BadInput, match="refused"):
        parse_offer(b'{"v": 1, "channel": "nightly"}')


def offer(version: str, rollback: bool = False, at: int | None = None) -> ReleaseOffer:
    return ReleaseOffer(channel="stable", version=version,
                        manifest_url="https://b/releases/stable/x/manifest.json",
                        rollback=rollback, offered_ms=at or int(time.time() * 1000))


def test_the_guard_refuses_downgrades_repeats_and_a_second_guard() -> None:
    assert refusal(offer("1.1.0"), "1.1.0", None) == "1.1.0 is already running"
    assert "not a rollback" in (refusal(offer("1.0.0"), "1.1.0", None) or "")
    assert refusal(offer("1.0.0", rollback=True), "1.1.0", None) is None
    busy = Journal("installing", "1.2.0", "1.1.0", "stable", guard_pid=os.getpid())
    assert "in progress" in (refusal(offer("1.3.0"), "1.1.0", busy) or "")
    failed = Journal("rolled_back", "1.2.0", "1.1.0", "stable", started_ms=2000,
                     reason="decision_path: broken")
    assert "already rolled back" in (refusal(offer("1.2.0", at=1000), "1.1.0", failed) or "")
    assert refusal(offer("1.2.0", at=3000), "1.1.0", failed) is None  # offered again: retry


def test_current_moves_atomically_and_only_to_installed_environments(tmp_path: Path) -> None:
    layout = UpdateLayout(tmp_path)
    layout.ensure()
    for v in ("1.0.0", "1.1.0"):
        layout.env_for(v).mkdir()
    (layout.env_for("1.0.0") / INSTALLED_MARK).write_text('{"version": "1.0.0"}')
    layout.point(layout.current, layout.env_for("1.0.0"))
    assert layout.version_of(layout.current_env()) == "1.0.0"
    layout.point(layout.current, layout.env_for("1.1.0"))  # no mark: half installed
    assert layout.current_env() is None
    assert not list(tmp_path.glob(".current*"))  # the temporary link was renamed over
    assert os.readlink(layout.current) == "envs/1.1.0"  # relative: the root can move


def test_widening_keeps_the_devices_already_chosen(tmp_path: Path) -> None:
    fleet = [f"gate-{i}" for i in range(50)]
    small = chosen(Rollout("t", "stable", "1.1.0", None, 0.1), fleet)
    large = chosen(Rollout("t", "stable", "1.1.0", None, 0.5), fleet)
    assert len(small) == 5 and len(large) == 25 and set(small) <= set(large)
    other = chosen(Rollout("t", "stable", "1.2.0", None, 0.1), fleet)
    assert other != small  # each release starts on other devices

    sent: list[str] = []

    class Recorder:
        def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
            assert retain
            sent.append(topic)

    control = RolloutControl(tmp_path, Recorder(), "https://bridge:8443")
    control.start("t", "stable", "1.1.0", 0.1, fleet)
    with pytest.raises(ValueError, match="only widens"):
        control.widen("t", "stable", 0.05, fleet)
    control.widen("t", "stable", 1.0, fleet)
    assert len(sent) == 50 and len(set(sent)) == 50  # nobody offered twice
    with pytest.raises(ValueError, match="no previous release"):
        control.roll_back("t", "stable")


def test_a_guard_that_cannot_start_is_reported_failed_once(tmp_path: Path) -> None:
    """The systemd back-end asked for a guard unit systemd does not have (or, with no
    systemd as PID 1, no systemd to ask): the real systemctl refuses. The attempt is
    written `failed` with systemctl's answer and reported once, and the same offer (the
    retained message at a reconnect) is not tried again."""
    from agent.update.service_systemd import GUARD_CONFIG, SystemdService
    from agent.update.trial import DetachedGuard, UpdateMonitor

    class Outbox:  # collects what the monitor puts into the agent's outbox
        def __init__(self) -> None:
            self.events: list[dict[str, object]] = []

        def record_update(self, data: dict[str, object]) -> None:
            self.events.append(data)

    layout = UpdateLayout(tmp_path)
    outbox = Outbox()
    guard = DetachedGuard(SystemdService("edge-agent-test-absent.service"), GUARD_CONFIG)
    monitor = UpdateMonitor(layout, "1.1.0", guard, outbox)
    payload = offer("1.2.0").model_dump_json().encode()
    said = monitor.offer(payload)
    assert said.startswith("guard not started: systemctl start edge-agent-test-absent-update@"
                           "apply.service: exit "), said
    journal = layout.read_journal()
    assert journal is not None and (journal.state, journal.reported) == ("failed", True)
    assert [e["outcome"] for e in outbox.events] == ["failed"]
    assert "the update guard did not start" in str(outbox.events[0]["reason"])
    assert "already failed" in monitor.offer(payload)
    assert len(outbox.events) == 1
