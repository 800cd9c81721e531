"""The whole site end to end, every part a real process: a member made through the bridge
API reaches the agent signed, a tap there is granted and its event lands in the bridge DB
once; then the faults of the issue — broker stopped during a tap stream, bridge SIGKILLed
mid-ingest, agent SIGKILLed mid-batch, a duplicate delivery — and still every event
exactly once, none lost, and the gate deciding all the while the network was gone."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.control_client import AgentUnreachable
from agent.errors import EdgeError
from tests.cloud_harness import wait_until
from tests.e2e.site import TENANT, Site


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = Site(tmp_path, url, batch_size=20)
    yield s
    s.close()


def add_member(site: Site, member_id: str, uid: str, first_name: str = "Špela") -> None:
    now = int(time.time())
    for route, body in (
        ("members", {"id": member_id, "first_name": first_name}),
        ("credentials", {"id": f"{member_id}-c", "member_id": member_id, "kind": "card",
                         "uid": uid}),
        ("entitlements", {"id": f"{member_id}-e", "member_id": member_id,
                          "kind": "membership", "valid_from": now - 3600,
                          "valid_to": now + 86400}),
    ):
        reply = site.api.post(f"/{route}", json=body)
        assert reply.status_code in (200, 201), reply.text


def test_member_from_the_api_is_granted_at_the_gate_and_stored_once(site: Site) -> None:
    member = f"m-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the tests
    add_member(site, member, "04:A1:B2:C3:D4:E5:F6")  # the API normalises like readers do
    site.wait_synced()
    before = site.status()["last_seq"]
    reply = site.control().request("present", reader="entry", kind="uid",
                                   value="04A1B2C3D4E5F6")
    assert reply["granted"], reply
    assert reply["seq"] == before + 1
    site.wait_drained()
    stored = [(seq, kind, data) for seq, kind, data in site.stored() if seq == reply["seq"]]
    assert len(stored) == 1
    _, kind, data = stored[0]
    assert kind == "access.decision" and data["reason"] == "granted"
    assert data["member"] == member and data["credential"] == f"{member}-c"
    # no card UID in clear in what the bridge stored
    assert "04A1B2C3D4E5F6" not in json.dumps([d for _, _, d in site.stored()]).upper()


class Tapper(threading.Thread):
    """Taps at the agent's reader as fast as a busy gate would see them (about 40/s):
    known members and unknown cards. Records every decision with its event seq."""

    def __init__(self, site: Site, uids: list[str]) -> None:
        super().__init__(daemon=True)
        self.site, self.uids = site, uids
        self.decided: dict[int, str] = {}
        self.failures: list[str] = []
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        while not self.stopped.is_set():
            if self.paused.is_set():
                time.sleep(0.02)
                continue
            uid = (self.rng.choice(self.uids) if self.rng.random() < 0.5
                   else f"05{self.rng.getrandbits(48):012X}")
            try:
                reply = self.site.control().request("present", reader="entry", kind="uid",
                                                    value=uid)
            except (AgentUnreachable, EdgeError, OSError) as exc:
                if not self.paused.is_set():
                    self.failures.append(repr(exc))
                continue
            if reply.get("seq") is not None:
                self.decided[reply["seq"]] = reply["reason"]
            time.sleep(0.025)

    def count(self) -> int:
        return len(self.decided)


def duplicate_delivery(site: Site) -> None:
    """Publish events the bridge already stored once more, as a broker redelivery would."""
    stored = site.stored()[:5]
    batch = {"v": 1, "tenant": TENANT, "device": site.device, "events": [
        {"id": f"dup-{seq}", "tenant": TENANT, "device": site.device, "seq": seq,
         "ts": "2026-12-02T10:00:00.000Z", "type": kind, "data": data}
        for seq, kind, data in stored]}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dup", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", site.broker.port)
    client.loop_start()
    info = client.publish(f"es/v1/{TENANT}/{site.device}/events", json.dumps(batch), qos=1)
    info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


@pytest.mark.slow
def test_faults_leave_every_event_stored_exactly_once(site: Site) -> None:
    uids = [f"04{i:012X}" for i in range(1, 21)]
    run = uuid.uuid4().hex[:8]
    for i, uid in enumerate(uids, 1):
        add_member(site, f"m{i}-{run}", uid)
    site.wait_synced()
    tapper = Tapper(site, uids)
    tapper.start()
    wait_until(lambda: tapper.count() >= 40, timeout=60, what="a first stream of taps")

    # the broker goes away for a while: the gate keeps deciding, events wait in the outbox
    site.broker.stop()
    at_stop = tapper.count()
    time.sleep(3)
    offline = tapper.count() - at_stop
    assert offline >= 40, f"only {offline} decisions while the broker was down"
    assert site.status()["outbox_depth"] > 0
    site.broker.start()

    # the bridge dies in the middle of ingesting the backlog
    wait_until(lambda: len(site.stored()) > 0, timeout=60, what="ingest resumed")
    site.kill_bridge()
    time.sleep(1)
    site.start_bridge()

    # the agent dies in the middle of a batch: stop tapping, SIGKILL, start again
    wait_until(lambda: tapper.count() >= at_stop + offline + 40, timeout=60, what="more taps")
    tapper.paused.set()
    time.sleep(0.1)
    site.agent.stop(sig=9)
    site.agent = site.start_agent()
    tapper.paused.clear()
    wait_until(lambda: tapper.count() >= at_stop + offline + 80, timeout=60,
               what="taps after restart")

    duplicate_delivery(site)
    tapper.stopped.set()
    tapper.join(10)
    assert not tapper.failures, tapper.failures[:5]

    last = site.wait_drained()
    stored = site.stored()
    seqs = [seq for seq, _, _ in stored]
    assert seqs == list(range(1, last + 1)), "gaps or duplicates in the bridge DB"
    for seq, _kind, data in stored:
        if seq in tapper.decided:
            assert data["reason"] == tapper.decided[seq]
    assert set(tapper.decided) <= set(seqs)
    assert site.bridge_runs == 2 and site.agent_runs == 2
