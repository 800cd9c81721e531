"""Poison already in a store (issue 14, item 1), every part a real process: an event
whose data holds NaN sits in the agent's outbox (written by older software, or by hand).
The bridge refuses it, keeps it in the quarantine and acks past it; the agent's outbox
drains and every later event is stored. On the old bridge the SQLite ingest retried the
"malformed JSON" forever and PostgreSQL refused the whole batch: the outbox never
drained."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud_bridge.db_schema import device_cursor, quarantine
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


def tap(site: Site) -> int:
    reply = site.control().request("present", reader="entry", kind="uid",
                                   value=f"05{uuid.uuid4().hex[:12].upper()}")
    return int(reply["seq"])


def plant_poison(site: Site) -> int:
    """Append an event with NaN in its data to the stopped agent's outbox, as
    Outbox.append would (the seq counter in meta, then the row); returns its seq."""
    db = sqlite3.connect(site.workdir / "agent" / "data" / "agent.sqlite3")
    with db:
        seq = int(db.execute(
            "INSERT INTO meta(key, value) VALUES ('last_seq', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value").fetchone()[0])
        db.execute("INSERT INTO outbox(seq, id, type, ts, data, created_ms) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (seq, str(uuid.uuid4()), "device.health", "2026-12-02T10:00:00.000Z",
                    '{"cpu_temp":NaN,"load":Infinity}', int(time.time() * 1000)))
    db.close()
    return seq


@pytest.mark.slow
def test_a_poisoned_event_in_the_outbox_is_kept_aside_and_the_rest_flows(site: Site) -> None:
    first = [tap(site) for _ in range(3)]
    site.agent.stop()
    poison = plant_poison(site)
    site.agent = site.start_agent()
    later = [tap(site) for _ in range(5)]
    assert min(later) == poison + 1

    def drained() -> bool:
        seqs = [seq for seq, _, _ in site.stored()]
        return site.status()["outbox_depth"] == 0 and seqs == first + later
    wait_until(drained, 60, "the outbox drained past the poisoned event", every=0.2)
    with site.engine.connect() as conn:
        rows = conn.execute(select(quarantine.c.seq, quarantine.c.reason, quarantine.c.raw)
                            .where(quarantine.c.tenant == TENANT,
                                   quarantine.c.device == site.device)).all()
    assert [(r.seq, "NaN" in r.reason) for r in rows] == [(poison, True)]
    assert b"NaN" in bytes(rows[0].raw)
    with site.engine.connect() as conn:
        acked = conn.execute(select(device_cursor.c.acked_seq).where(
            device_cursor.c.tenant == TENANT, device_cursor.c.device == site.device)).scalar()
    assert acked == later[-1]
