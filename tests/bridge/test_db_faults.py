"""Transient or permanent, by cause (cloud_bridge/db_faults.py): real errors from real
SQLite and PostgreSQL databases, not constructed exceptions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cloud_bridge.db_faults import is_permanent, is_transient, refusal_reason
from tests.mqtt_broker import free_port


def error_of(work: Callable[[], object]) -> BaseException:
    try:
        work()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_sqlite_faults(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.sqlite3'}"
    engine = create_engine(url, connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, d TEXT)"))
        conn.execute(text("CREATE INDEX ix ON t (json_extract(d, '$.m'))"))

    def insert(k: int, d: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:k, :d)"), {"k": k, "d": d})
    insert(1, '{"m": 1}')
    malformed = error_of(lambda: insert(2, '{"m": NaN}'))  # the bug of issue 14
    assert is_permanent(malformed) and not is_transient(malformed)
    duplicate = error_of(lambda: insert(1, '{"m": 1}'))
    assert is_permanent(duplicate)
    holder = sqlite3.connect(tmp_path / "f.sqlite3")
    holder.execute("BEGIN EXCLUSIVE")
    busy = error_of(lambda: insert(3, '{"m": 3}'))  # locked by another writer
    holder.rollback()
    holder.close()
    assert is_transient(busy) and not is_permanent(busy)
    engine.dispose()


def test_postgresql_faults(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS fault_probe (k int PRIMARY KEY, "
                          "d jsonb)"))
        conn.execute(text("INSERT INTO fault_probe VALUES (1, '{}') ON CONFLICT DO NOTHING"))

    def run(sql: str) -> Callable[[], object]:
        def work() -> None:
            with engine.begin() as conn:
                conn.execute(text(sql))
        return work
    bad_json = error_of(run("INSERT INTO fault_probe VALUES (2, '{\"m\": NaN}')"))
    nul = error_of(run("INSERT INTO fault_probe VALUES (3, '{\"m\": \"\\u0000\"}')"))
    duplicate = error_of(run("INSERT INTO fault_probe VALUES (1, '{}')"))
    assert all(is_permanent(e) for e in (bad_json, nul, duplicate))
    assert refusal_reason(duplicate).startswith("database refused it:")

    with engine.connect() as holder:
        holder.execute(text("BEGIN"))
        holder.execute(text("SELECT * FROM fault_probe WHERE k = 1 FOR UPDATE"))
        lock_timeout = error_of(run("SET LOCAL lock_timeout = '50ms'; "
                                    "UPDATE fault_probe SET d = '{}' WHERE k = 1"))
        holder.rollback()
    assert is_transient(lock_timeout) and not is_permanent(lock_timeout)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE fault_probe"))
    engine.dispose()

    gone = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    refused = error_of(lambda: gone.connect())  # database away
    assert is_transient(refused) and not is_permanent(refused)


def test_bugs_of_ours_are_neither() -> None:
    assert not is_permanent(KeyError("x")) and not is_transient(KeyError("x"))
    assert not is_permanent(TypeError("unsupported operand"))
    assert is_permanent(ValueError("Out of range float values are not JSON compliant"))


pytestmark = pytest.mark.timeout(120)
