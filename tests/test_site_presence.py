"""Site presence facts (contracts/site_presence.py) and how a device applies a peer's
(agent/access/presence_share.py) to its own SQLite store: newest passage wins, a
republished fact changes nothing, nothing unsigned gets in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.access.presence_share import apply_fact, own_recent_facts
from agent.store.local_store import LocalStore
from contracts.site_presence import BadPresenceFact, PresenceFact, decode_fact, presence_key

KEY = presence_key(os.urandom(32), "t1")


def test_a_fact_round_trips_and_a_forged_or_broken_one_is_refused() -> None:
    fact = PresenceFact("gate-a", "main", "m1", "in", 1_700_000_000_000)
    assert decode_fact(fact.encode(KEY), KEY) == fact
    other_tenant = presence_key(os.urandom(32), "t1")
    with pytest.raises(BadPresenceFact, match="not signed"):
        decode_fact(fact.encode(other_tenant), KEY)
    tampered = fact.encode(KEY).replace(b'\\"in\\"', b'\\"out\\"')
    assert tampered != fact.encode(KEY)
    with pytest.raises(BadPresenceFact, match="not signed"):
        decode_fact(tampered, KEY)
    for junk in (b"", b"{}", b"[1]", b'{"fact": 1, "mac": "x"}', b"\xff"):
        with pytest.raises(BadPresenceFact):
            decode_fact(junk, KEY)
    with pytest.raises(BadPresenceFact, match="direction"):
        decode_fact(PresenceFact("gate-a", "main", "m1", "sideways", 1).encode(KEY), KEY)


def _presence(store: LocalStore) -> list[tuple[str, str, int, str]]:
    return [tuple(r) for r in store.conn.execute(
        "SELECT member_id, direction, at_ms, gate FROM presence ORDER BY member_id")]


def test_newest_passage_wins_and_own_facts_are_republished(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "agent.sqlite3")
    try:
        with store.transaction() as conn:  # this device's own entry at its gate "main"
            conn.execute("INSERT INTO presence(member_id, direction, at_ms, gate) "
                         "VALUES ('m1', 'in', 1000, 'main'), ('m2', 'in', 5000, 'main')")
        apply_fact(store, PresenceFact("gate-b", "main", "m1", "out", 2000))
        apply_fact(store, PresenceFact("gate-b", "main", "m2", "out", 4000))  # older: no
        apply_fact(store, PresenceFact("gate-b", "main", "m1", "out", 2000))  # again: same
        assert _presence(store) == [("m1", "out", 2000, "gate-b:main"),
                                    ("m2", "in", 5000, "main")]
        # only this device's own rows go out again, as facts of this device
        assert own_recent_facts(store, "gate-a", ["main"], 0) == [
            PresenceFact("gate-a", "main", "m2", "in", 5000)]
        assert own_recent_facts(store, "gate-a", ["main"], 5000) == []
        # a peer's "gone" (nobody walked through) withdraws only its own row
        apply_fact(store, PresenceFact("gate-b", "main", "m2", "gone", 6000))
        apply_fact(store, PresenceFact("gate-b", "main", "m1", "gone", 6000))
        assert _presence(store) == [("m2", "in", 5000, "main")]
    finally:
        store.close()
