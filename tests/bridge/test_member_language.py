"""The language of a member's notices through the JSON API ('sl' or 'en', optional,
Slovenian by default; anything else a clear 422), and a database made before members
had one gets the column at start, its members Slovenian. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, inspect, select

from cloud_bridge.db_schema import make_engine, members, normalise_url
from tests.bridge.test_command_expiry_column import empty_db  # noqa: F401 (fixture)


def test_the_api_keeps_the_members_language(client: Any, tenant: str) -> None:
    base = f"/api/v1/tenants/{tenant}/members"
    r = client.post(base, json={"id": "m1", "first_name": "John", "language": "en"})
    assert r.status_code == 201, r.text
    assert r.json()["language"] == "en"
    r = client.post(base, json={"id": "m2", "first_name": "Ana"})
    assert r.status_code == 201 and r.json()["language"] == "sl"
    for bad in ({"language": "de"}, {"language": None}, {"language": "EN"}):
        r = client.patch(f"{base}/m1", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert "language" in r.text
    assert client.get(f"{base}/m1").json()["language"] == "en"
    r = client.patch(f"{base}/m1", json={"language": "sl"})
    assert r.status_code == 200 and r.json()["language"] == "sl"
    r = client.post(base, json={"id": "m3", "first_name": "Eva", "language": "fr"})
    assert r.status_code == 422 and "language" in r.text
    assert client.get(f"{base}/m3").status_code == 404  # nothing stored


def test_an_old_database_gets_the_language_column(empty_db: str) -> None:  # noqa: F811
    engine = make_engine(empty_db)  # today's schema; then undo the column, as before it
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE members DROP COLUMN language")
        conn.exec_driver_sql(
            "INSERT INTO members (tenant, id, first_name, last_name, blocked, created_at, "
            "updated_at) VALUES ('t1', 'm1', 'Ana', '', false, 1, 1)")
    engine.dispose()
    old = create_engine(normalise_url(empty_db))
    with old.connect() as conn:
        assert "language" not in {c["name"] for c in inspect(conn).get_columns("members")}
    old.dispose()
    for _ in range(2):  # a second start finds it there and changes nothing
        engine = make_engine(empty_db)
        with engine.connect() as conn:
            assert conn.execute(select(members.c.language)).scalar_one() == "sl"
        engine.dispose()
