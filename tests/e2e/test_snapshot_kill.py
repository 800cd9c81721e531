"""A kill -9 of the agent during a membership snapshot, at every phase of the apply
(staging a chunk, after a chunk, building an index, inside the swap, after it), over
seeded runs plus a few kills at random moments. Every peer is real: Mosquitto, the
``cloud-bridge serve`` process (SQLite; it answers every request with a snapshot) and
the ``edge-agent run`` process, which kills itself with SIGKILL at the fault point the
test names (agent/fault_points.py) or is SIGKILLed by the test.

After every kill the store holds one consistent membership version (the old one or the
new one, never a mix); after a restart the agent reaches the bridge's version, nothing
of the staging is left, the live tables carry each index once, and the next snapshot
applies (issue 14, item 2: a kill after the index build used to leave duplicate indexes
that made every later snapshot fail with ``index ... already exists``)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from agent.config import load_config
from agent.control_client import AgentUnreachable
from agent.fault_points import ENV as FAULT_ENV
from cloud_bridge.db_schema import credentials, entitlements, members
from tests.cloud_harness import wait_until
from tests.e2e.site import TENANT, Site
from tests.e2e.test_site_e2e import add_member

MEMBERS = 12  # 36 rows, 6 per chunk: snapshots of 6 chunks (and more as runs add members)
CHUNK_ROWS = 6
INDEXES = {"ux_members_id", "ux_credentials_hash", "ux_credentials_id",
           "ix_credentials_member_id", "ux_entitlements_id", "ix_entitlements_member_id"}
# fault point -> how many passes a snapshot makes through it
PHASES = {"snapshot.stage": 6, "snapshot.staged": 6, "snapshot.index": len(INDEXES),
          "snapshot.swap": 1, "snapshot.swapped": 1}
SEEDED_RUNS = int(os.environ.get("SNAPSHOT_KILL_RUNS", "10"))
RANDOM_KILLS = int(os.environ.get("SNAPSHOT_RANDOM_KILLS", "3"))

Membership = tuple[frozenset[str], frozenset[str], frozenset[str]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, f"sqlite:///{tmp_path / 'bridge.sqlite3'}", bridge_args=(
        "--snapshot-lag", "0", "--snapshot-chunk", str(CHUNK_ROWS)))
    yield s
    s.close()


def bridge_membership(site: Site) -> Membership:
    with site.engine.connect() as conn:
        return tuple(frozenset(str(r[0]) for r in conn.execute(  # type: ignore[return-value]
            select(t.c.id).where(t.c.tenant == TENANT)))
            for t in (members, credentials, entitlements))


def agent_membership(conn: sqlite3.Connection) -> Membership:
    return tuple(frozenset(str(r[0]) for r in conn.execute(  # type: ignore[return-value]
        f"SELECT id FROM {t}")) for t in ("members", "credentials", "entitlements"))


def open_store(site: Site) -> sqlite3.Connection:
    return sqlite3.connect(load_config(site.config).store_path, timeout=10)


def forget_agent_session(site: Site) -> None:
    """Drop the agent's broker session, so the change made while it was away reaches it
    as a snapshot (answer to its request) rather than as a queued change batch."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{TENANT}-{site.device}",
                         protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", site.broker.port, clean_start=True, properties=props)
    client.loop_start()
    assert connected.wait(10)
    client.disconnect()
    client.loop_stop()


def assert_one_version(site: Site, versions: dict[int, Membership]) -> int:
    """The store right after a kill: one version, and exactly that version's data."""
    with open_store(site) as conn:
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'membership_version'"
                                   ).fetchone()[0])
        assert version in versions, f"version {version} is none the bridge had"
        assert agent_membership(conn) == versions[version], \
            f"data of version {version} is not what the bridge had at {version}"
    return version


def assert_clean(site: Site, want: Membership) -> None:
    with open_store(site) as conn:
        assert agent_membership(conn) == want
        assert conn.execute("SELECT COUNT(*) FROM snapshot_staging").fetchone()[0] == 0
        assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'snap%' AND "
                            "name != 'snapshot_staging'").fetchall() == []
        assert conn.execute("SELECT 1 FROM meta WHERE key = 'snapshot_staging'").fetchone() \
            is None
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
            "('members', 'credentials', 'entitlements')")]
    bases = [n.split("__g")[0] for n in names]
    assert sorted(bases) == sorted(INDEXES), f"live indexes: {sorted(names)}"


def one_change(site: Site, run: str, versions: dict[int, Membership]) -> int:
    """With the agent stopped: a new member at the bridge; returns the new version."""
    add_member(site, f"m-{run}", f"04{uuid.uuid4().hex[:12].upper()}")
    version = site.bridge_version()
    versions[version] = bridge_membership(site)
    forget_agent_session(site)
    return version


def agent_version(site: Site) -> int:
    try:
        return int(site.status()["membership_version"])
    except AgentUnreachable:  # the socket file is there a moment before it listens
        return -1


def restart_and_check(site: Site, version: int, versions: dict[int, Membership]) -> None:
    site.agent = site.start_agent()
    wait_until(lambda: agent_version(site) == version, 60,
               f"agent at version {version} after the kill", every=0.1)
    assert_clean(site, versions[version])
    site.agent.stop()


@pytest.mark.slow
def test_a_kill_at_any_phase_of_a_snapshot_leaves_one_version_and_the_next_applies(
        site: Site) -> None:
    for i in range(MEMBERS):
        add_member(site, f"m{i}", f"04{i + 1:012X}")
    site.wait_synced()
    site.agent.stop()
    versions = {site.bridge_version(): bridge_membership(site)}
    killed_at: list[str] = []
    for seed in range(SEEDED_RUNS):
        rng = random.Random(seed)
        phase = list(PHASES)[seed % len(PHASES)]  # every phase, then again
        hit = rng.randint(1, PHASES[phase])
        version = one_change(site, f"s{seed}", versions)
        agent = site.start_agent(env={FAULT_ENV: f"{phase}:{hit}"}, wait_socket=False)
        assert agent.proc.wait(60) == -signal.SIGKILL, agent.log_text()[-2000:]
        agent.stop()
        killed_at.append(f"{phase}:{hit}")
        after = assert_one_version(site, versions)
        # a kill before the swap's commit leaves the old version, after it the new one
        assert (after == version) == (phase == "snapshot.swapped"), (phase, hit, after)
        restart_and_check(site, version, versions)
    for seed in range(100, 100 + RANDOM_KILLS):
        rng = random.Random(seed)
        version = one_change(site, f"r{seed}", versions)
        agent = site.start_agent()
        time.sleep(rng.uniform(0.0, 0.6))
        agent.stop(sig=signal.SIGKILL)
        assert_one_version(site, versions)
        restart_and_check(site, version, versions)
    # and one more snapshot, on the store the last kill left
    version = one_change(site, "last", versions)
    restart_and_check(site, version, versions)
    assert set(killed_at) >= {f"{p}:1" for p in ("snapshot.swap", "snapshot.swapped")}
