"""Personal data on a device, end to end: the real ``edge-agent run`` process, a real
broker, a signed membership batch, taps, events delivered and acked. Then every byte the
device wrote (store, WAL, logs) and every event it sent is searched for the card UID in
every notation, for the first name (stored by design, to greet, but never logged or sent)
and for a surname and e-mail (which cannot reach a device at all)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.credential_hash import credential_hash
from tests.agent_process import AgentProcess, edge_sim
from tests.cloud_harness import CloudHarness, wait_until
from tests.mqtt_broker import Broker

UID = "04C0FFEE5A1E77"
FIRST = "Zorislava"
SURNAME = "Kovačevič-Nadlišek"
EMAIL = "zorislava.k@example.si"


def uid_notations(uid: str) -> list[bytes]:
    pairs = [uid[i:i + 2] for i in range(0, len(uid), 2)]
    texts = {uid.upper(), uid.lower(), ":".join(pairs).upper(), ":".join(pairs).lower(),
             " ".join(pairs).upper(), "-".join(pairs).upper()}
    return [t.encode() for t in texts] + [bytes.fromhex(uid), bytes.fromhex(uid)[::-1]]


def device_bytes(data_dir: Path, log: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
             and not p.name.endswith(".sock")}
    files["agent.log"] = log.read_bytes()
    return files


@pytest.fixture
def site(tmp_path: Path, write_config: Callable[..., Path]
         ) -> Iterator[tuple[AgentProcess, CloudHarness, Ed25519PrivateKey]]:
    broker = Broker(tmp_path / "broker").start()
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    cfg = write_config(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n',
                       public_key=public)
    cloud = CloudHarness(broker.port)
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    # the agent subscribes before it asks for members: after the ask, batches reach it
    cloud.wait_for(lambda topic, _p: topic.endswith("/members/request"), timeout=20)
    yield agent, cloud, key
    agent.stop()
    cloud.close()
    broker.stop()


def batch(cloud: CloudHarness, key: Ed25519PrivateKey, frm: int, changes: list[dict]) -> None:
    cloud.publish("es/v1/t1/members/changes", cloud.signed(key, {
        "v": 1, "tenant": "t1", "kind": "changes", "from_version": frm, "to_version": frm + 1,
        "changes": changes}))


def status(agent: AgentProcess) -> dict:
    done = edge_sim("status", "--json", config=agent.config)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def test_no_uid_anywhere_first_name_only_in_the_store_no_surname_at_all(
        site: tuple[AgentProcess, CloudHarness, Ed25519PrivateKey], tmp_path: Path,
        hmac_key: bytes) -> None:
    agent, cloud, key = site
    member = {"entity": "member", "op": "upsert", "id": "m1", "first_name": FIRST}
    card = {"entity": "credential", "op": "upsert", "id": "c1", "member_id": "m1",
            "kind": "card", "hash": credential_hash(hmac_key, "uid", UID)}
    pass_ = {"entity": "entitlement", "op": "upsert", "id": "e1", "member_id": "m1",
             "kind": "punch_card", "entries_total": 10}
    # a bridge that tried to send more than the protocol allows: refused as a whole
    batch(cloud, key, 0, [{**member, "last_name": SURNAME, "email": EMAIL}, card, pass_])
    batch(cloud, key, 0, [member, card, pass_])
    wait_until(lambda: status(agent).get("membership_version") == 1, what="batch applied")

    tap = edge_sim("tap", UID, "--json", config=agent.config)
    assert json.loads(tap.stdout)["granted"], tap.stdout
    colons = ":".join(UID[i:i + 2] for i in range(0, 14, 2)).lower()
    assert not json.loads(edge_sim("tap", "04DEADBEEF0001", "--json",
                                   config=agent.config).stdout)["granted"]
    edge_sim("tap", colons, "--reader", "exit", "--json", config=agent.config)
    wait_until(lambda: cloud.contiguous("dev1") >= 3, what="events at the cloud")
    wait_until(lambda: status(agent).get("outbox_depth") == 0, what="acked")
    sent = b"".join(p for _t, p in list(cloud.messages.queue))
    sent += json.dumps(list(cloud.events.values())).encode()
    assert agent.stop() == 0

    data_dir = tmp_path / "data"
    everything = device_bytes(data_dir, tmp_path / "agent.log")
    assert any(name.startswith("agent.sqlite3") for name in everything)
    for name, blob in {**everything, "mqtt-sent": sent}.items():
        for notation in uid_notations(UID):
            assert notation not in blob, f"UID {notation!r} found in {name}"
        for text in (SURNAME, EMAIL, "Nadli"):
            assert text.encode() not in blob, f"{text} found in {name}"
    for name, blob in (("agent.log", everything["agent.log"]), ("mqtt-sent", sent)):
        assert FIRST.encode() not in blob, f"first name in {name}"
    store = b"".join(b for n, b in everything.items() if n.startswith("agent.sqlite3"))
    assert FIRST.encode() in store  # by design: the gate greets by first name


def test_erasure_through_mqtt_leaves_no_trace_in_the_files(
        site: tuple[AgentProcess, CloudHarness, Ed25519PrivateKey], tmp_path: Path,
        hmac_key: bytes) -> None:
    """Deleted rows must not linger in free pages or the WAL. This holds because the
    SQLite build zeroes deleted content (secure_delete: Debian compiles SQLite with
    SQLITE_SECURE_DELETE; LocalStore should also set the pragma explicitly)."""
    agent, cloud, key = site
    batch(cloud, key, 0, [
        {"entity": "member", "op": "upsert", "id": "m1", "first_name": FIRST},
        {"entity": "credential", "op": "upsert", "id": "c1", "member_id": "m1", "kind": "card",
         "hash": credential_hash(hmac_key, "uid", UID)},
        {"entity": "entitlement", "op": "upsert", "id": "e1", "member_id": "m1",
         "kind": "punch_card", "entries_total": 10}])
    wait_until(lambda: status(agent).get("membership_version") == 1, what="batch applied")
    assert json.loads(edge_sim("tap", UID, "--json", config=agent.config).stdout)["granted"]
    batch(cloud, key, 1, [{"entity": "member", "op": "delete", "id": "m1"}])
    wait_until(lambda: status(agent).get("membership_version") == 2, what="erasure applied")
    assert not json.loads(edge_sim("tap", UID, "--json", config=agent.config).stdout)["granted"]
    assert agent.stop() == 0
    db = tmp_path / "data" / "agent.sqlite3"
    rows = subprocess.run(["sqlite3", str(db), "SELECT COUNT(*) FROM members; "
                           "SELECT COUNT(*) FROM credentials; SELECT COUNT(*) FROM presence;"],
                          capture_output=True, text=True)
    if rows.returncode == 0:
        assert rows.stdout.split() == ["0", "0", "0"]
    hashed = credential_hash(hmac_key, "uid", UID).encode()
    for name, blob in device_bytes(tmp_path / "data", tmp_path / "agent.log").items():
        assert FIRST.encode() not in blob, f"first name left in {name}"
        assert hashed not in blob, f"card hash left in {name}"
