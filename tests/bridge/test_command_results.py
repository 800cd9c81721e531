"""Command results as the bridge stores them: a late ``expired`` answer to a redelivered
copy never hides that the command ran (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, insert, select

from cloud_bridge.db_schema import commands, write_tx
from cloud_bridge.device_reports import command_outcome, store_command_result
from cloud_bridge.wire import CommandResult


def sent(engine: Engine, tenant: str) -> str:
    request_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    with write_tx(engine) as conn:
        conn.execute(insert(commands).values(
            request_id=request_id, tenant=tenant, device="g1", name="open",
            args={"gate": "g1"}, sent_at=now, expires_at=now + 10_000))
    return request_id


def store(engine: Engine, tenant: str, request_id: str, ok: bool,
          error: str | None = None) -> bool:
    with write_tx(engine) as conn:
        return store_command_result(conn, tenant, "g1", CommandResult(
            v=1, request_id=request_id, name="open", ok=ok, error=error,
            result={"pulsed": True} if ok else {"expires_at": 1, "device_time": 2}))


def outcome(engine: Engine, request_id: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(select(commands).where(
            commands.c.request_id == request_id)).mappings().one()
    return command_outcome(dict(row), int(time.time() * 1000))


def test_a_late_expired_copy_keeps_the_ok_answer(engine: Engine, tenant: str) -> None:
    ran = sent(engine, tenant)
    assert store(engine, tenant, ran, True)
    assert not store(engine, tenant, ran, False, "expired")  # QoS 1 redelivery, read late
    assert outcome(engine, ran) == "ok"


def test_expired_and_errors_are_stored(engine: Engine, tenant: str) -> None:
    stale = sent(engine, tenant)
    assert store(engine, tenant, stale, False, "expired")
    assert outcome(engine, stale) == "expired"
    failed = sent(engine, tenant)
    assert store(engine, tenant, failed, False, "gate g1: controller unplugged")
    assert outcome(engine, failed) == "error"
    assert store(engine, tenant, failed, False, "expired")  # a failure may become expired
    assert outcome(engine, failed) == "expired"
    assert not store(engine, tenant, str(uuid.uuid4()), False, "expired")  # unknown
