"""The group commit of phone punches (cloud_bridge/attendance/group_writer.py) on a real
SQLite file: jobs queued together commit together, a failing job rolls back only its
own savepoint and its caller gets the error, and each caller's answer comes after the
commit (its row is readable from another connection by then)."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.group_writer import GroupWriter
from cloud_bridge.attendance.schema import audit
from cloud_bridge.db_schema import read_tx

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _note(tenant: str, what: str, fail: bool = False) -> Any:
    def work(conn: Connection) -> str:
        audit_trail.record(conn, tenant, "test", "note", what, {})
        if fail:
            raise ValueError(f"{what} refused")
        return what
    return work


def _notes(engine: Engine, tenant: str) -> list[str]:
    with read_tx(engine) as conn:
        return sorted(str(t) for t in conn.execute(select(audit.c.subject).where(
            audit.c.tenant == tenant, audit.c.action == "note")).scalars())


def test_a_failing_job_rolls_back_alone(engine: Engine, tenant: str) -> None:
    writer = GroupWriter(engine)
    held, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:  # keeps the writer busy while the batch queues
        held.set()
        release.wait(10)

    first = writer.submit(hold)
    assert held.wait(10)
    futures = [writer.submit(_note(tenant, "a")), writer.submit(_note(tenant, "b", True)),
               writer.submit(_note(tenant, "c"))]
    release.set()
    first.result(10)
    assert futures[0].result(10) == "a" and futures[2].result(10) == "c"
    with pytest.raises(ValueError, match="b refused"):
        futures[1].result(10)
    assert _notes(engine, tenant) == ["a", "c"]


def test_many_callers_at_once_are_all_stored_before_their_answer(engine: Engine,
                                                                 tenant: str) -> None:
    writer = GroupWriter(engine)
    seen: dict[str, int] = {}

    def caller(i: int) -> None:
        future: Future[Any] = writer.submit(_note(tenant, f"n{i:02d}"))
        future.result(30)
        with read_tx(engine) as conn:  # committed by the time the caller hears back
            seen[f"n{i:02d}"] = conn.execute(select(func.count()).select_from(audit).where(
                audit.c.tenant == tenant, audit.c.subject == f"n{i:02d}")).scalar_one()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert seen == {f"n{i:02d}": 1 for i in range(40)}
    assert _notes(engine, tenant) == [f"n{i:02d}" for i in range(40)]
