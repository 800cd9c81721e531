"""PostgreSQL's monthly event partitions: made on demand, exactly-once through the key
ledger, retention by whole months (older resends refused with a reason), and an older
unpartitioned database refused until migrated. Each test has a database of its own:
retention drops partitions, which tests sharing a database must not see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from cloud_bridge.cli import app
from cloud_bridge.db_faults import refusal_reason
from cloud_bridge.db_schema import events, make_engine, metadata, quarantine, write_tx
from cloud_bridge.ingest import Ingestor
from cloud_bridge.partitions import (
    MIGRATE_COMMAND,
    PartitionKeeper,
    UnpartitionedEvents,
    current_month,
    event_keys,
    events_kind,
    months_back,
)
from cloud_bridge.startup_checks import StartupError, open_database
from cloud_bridge.wire import EventBatch, EventIn
from tests.bridge.conftest import PG_ADMIN

TENANT, DEVICE = "tp", "gate1"


@pytest.fixture
def fresh_url() -> Iterator[str]:
    from bench.pg_scratch import pg_database

    try:
        url, drop = pg_database(PG_ADMIN, "edge_part")
    except Exception as exc:  # no server: skip like the other PG tests
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield url
    drop()


@pytest.fixture
def pg(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


def ev(seq: int, month: str, event_id: str | None = None) -> EventIn:
    return EventIn(id=event_id or str(uuid.uuid4()), tenant=TENANT, device=DEVICE, seq=seq,
                   ts=f"{month}-15T10:00:00.000Z", type="access.decision",
                   data={"member": "m1", "granted": True})


def batch(*evs: EventIn) -> EventBatch:
    return EventBatch(v=1, tenant=TENANT, device=DEVICE, events=list(evs))


def placed(engine: Engine) -> dict[int, str]:
    """seq -> the partition holding it."""
    with engine.connect() as conn:
        return {int(s): str(p) for s, p in conn.exec_driver_sql(
            "SELECT seq, tableoid::regclass::text FROM events WHERE tenant = %s",
            (TENANT,)).all()}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_events_go_to_their_month_made_on_demand_and_are_stored_once(pg: Engine) -> None:
    now = current_month()
    old = months_back(now, 20)  # no partition ahead for it: made on demand
    ingestor = Ingestor(pg)
    sent = batch(ev(1, old), ev(2, now), ev(3, now))
    assert ingestor.ingest([sent]).acks == {(TENANT, DEVICE): 3}
    where = placed(pg)
    assert where == {1: f"events_y{old[:4]}m{old[5:]}", 2: f"events_y{now[:4]}m{now[5:]}",
                     3: f"events_y{now[:4]}m{now[5:]}"}
    # a resend (new bridge process: nothing cached) stores nothing twice
    again = Ingestor(pg).ingest([sent])
    assert again.acks == {(TENANT, DEVICE): 3}
    assert count(pg, events) == 3 and count(pg, event_keys) == 3
    with pg.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events_default").scalar() == 0


def test_an_event_id_reused_under_another_seq_is_refused_by_the_ledger(pg: Engine) -> None:
    first = ev(1, current_month())
    Ingestor(pg).ingest([batch(first)])
    reused = ev(2, months_back(current_month(), 1), event_id=first.id)
    with pytest.raises(IntegrityError) as caught:
        Ingestor(pg).ingest([batch(reused)])
    assert refusal_reason(caught.value).startswith("event id already stored under another")
    assert set(placed(pg)) == {1}


def test_rows_in_the_default_partition_are_split_into_their_month(pg: Engine) -> None:
    month = months_back(current_month(), 30)
    with write_tx(pg) as conn:  # as if stored before its month existed
        conn.execute(events.insert(), [{
            "tenant": TENANT, "device": DEVICE, "seq": 7, "id": str(uuid.uuid4()),
            "ts": f"{month}-01T00:00:00.000Z", "type": "x.y", "data": {},
            "received_at": 0}])
    assert placed(pg) == {7: "events_default"}
    with write_tx(pg) as conn:
        PartitionKeeper(pg).ensure(conn, [month])
    assert placed(pg) == {7: f"events_y{month[:4]}m{month[5:]}"}


def test_retention_drops_old_months_and_refuses_their_resend(pg: Engine,
                                                            fresh_url: str) -> None:
    now = current_month()
    old, kept = months_back(now, 3), months_back(now, 1)
    sent = batch(ev(1, old), ev(2, kept), ev(3, now))
    Ingestor(pg).ingest([sent])
    result = CliRunner().invoke(app, ["events", "retention", "--db", fresh_url,
                                      "--keep-months", "2"])
    assert result.exit_code == 0, result.output
    assert f"events_y{old[:4]}m{old[5:]}" in result.output
    assert set(placed(pg)) == {2, 3}
    assert count(pg, event_keys) == 2
    # a device restored from an old backup sends seq 1 again: refused with the reason,
    # kept in the quarantine, and it still counts for the ack
    again = Ingestor(pg).ingest([sent])
    assert [r.seq for r in again.refused] == [1]
    assert "retention horizon" in again.refused[0].reason
    assert again.acks == {(TENANT, DEVICE): 3}
    assert set(placed(pg)) == {2, 3}
    with pg.connect() as conn:
        reasons = conn.execute(select(quarantine.c.reason).where(
            quarantine.c.tenant == TENANT)).scalars().all()
    assert len(reasons) == 1 and "retention horizon" in reasons[0]


def test_an_unpartitioned_database_is_refused_until_migrated(fresh_url: str) -> None:
    engine = make_engine(fresh_url, create=False)
    with write_tx(engine) as conn:  # the schema of a bridge before partitioning
        metadata.create_all(conn)
        conn.execute(events.insert(), [
            {"tenant": TENANT, "device": DEVICE, "seq": s, "id": str(uuid.uuid4()),
             "ts": f"{m}-15T10:00:00.000Z", "type": "access.decision", "data": {"k": s},
             "received_at": 0}
            for s, m in ((1, months_back(current_month(), 5)), (2, current_month()))])
    with pytest.raises(UnpartitionedEvents):
        make_engine(fresh_url)
    with pytest.raises(StartupError) as refused:
        open_database(fresh_url)
    assert MIGRATE_COMMAND.split(" --db")[0] in str(refused.value)
    result = CliRunner().invoke(app, ["events", "partition", "--db", fresh_url])
    assert result.exit_code == 0, result.output
    assert "2 events moved" in result.output
    migrated = make_engine(fresh_url)
    with migrated.connect() as conn:
        assert events_kind(conn) == "p"
        assert conn.exec_driver_sql("SELECT data::text FROM events WHERE seq = 2"
                                    ).scalar() == '{"k": 2}'
    assert count(migrated, event_keys) == 2
    # the device resends seq 2 (same id and ts) and sends seq 3: stored once each
    with migrated.connect() as conn:
        id2 = conn.exec_driver_sql("SELECT id FROM events WHERE seq = 2").scalar()
    resent = EventIn(id=str(id2), tenant=TENANT, device=DEVICE, seq=2,
                     ts=f"{current_month()}-15T10:00:00.000Z", type="access.decision",
                     data={"k": 2})
    Ingestor(migrated).ingest([batch(resent, ev(3, current_month()))])
    assert set(placed(migrated)) == {1, 2, 3} and count(migrated, events) == 3
    migrated.dispose()
    engine.dispose()
