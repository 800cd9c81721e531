"""Daemon wiring of gate options: a gate that accepts only secure credentials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.store.membership import SyntheticMember, bulk_insert, synthetic_changes
from drivers.errors import PeripheralOffline
from simulators.member_generator import generate, uid_for

GATES = """
[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[gates]]
id = "vault"
url = "sim:"
zone = "main"
require_secure_card = true

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"

[[readers]]
id = "vault-in"
url = "sim:"
gate = "vault"
direction = "in"
"""


def load_members(daemon: AgentDaemon, kind: str) -> int:
    """Synthetic members of one plan kind into the store; the index of the first."""
    records = [m for m in generate(10) if m["kind"] == kind]
    members = [SyntheticMember.model_validate({k: v for k, v in m.items() if k != "kind"})
               for m in records]
    with daemon.store.transaction() as conn:
        bulk_insert(conn, *synthetic_changes(daemon.config.hmac_key(), members))
    daemon.access.forget_recent()
    return int(records[0]["id"][1:])


def test_secure_only_gate_refuses_a_plain_uid_that_opens_an_ordinary_gate(
        write_config: Callable[..., Path]) -> None:
    daemon = AgentDaemon(load_config(write_config(gates=GATES)))
    daemon.start()
    try:
        index = load_members(daemon, "membership")
        vault = daemon.readers["vault-in"].inject("uid", uid_for(index))  # type: ignore[attr-defined]
        assert not vault.granted
        assert vault.decision.reason.value == "secure_card_required"
        assert daemon.gates["vault"].pulses == []  # type: ignore[attr-defined]
        plain = daemon.readers["entry"].inject("uid", uid_for(index))  # type: ignore[attr-defined]
        assert plain.granted, plain.decision.reason
        assert len(daemon.gates["g1"].pulses) == 1  # type: ignore[attr-defined]
        # each reader is told its own decision (ReaderFeedback: LED and buzzer)
        assert daemon.readers["vault-in"].feedback_shown == [False]  # type: ignore[attr-defined]
        assert daemon.readers["entry"].feedback_shown == [True]  # type: ignore[attr-defined]
    finally:
        daemon.stop()


PUNCH_GATES = """
[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"
"""


def test_a_gate_that_cannot_open_gives_the_entry_back_and_keeps_deciding(
        write_config: Callable[..., Path]) -> None:
    daemon = AgentDaemon(load_config(write_config(gates=PUNCH_GATES)))
    daemon.start()
    try:
        index = load_members(daemon, "punch_card")
        gate = daemon.gates["g1"]
        gate.unplugged = True  # type: ignore[attr-defined]
        assert gate.health().state == "down"
        first = daemon.readers["entry"].inject("uid", uid_for(index))  # type: ignore[attr-defined]
        assert first.granted and first.decision.entries_left == 9
        kinds = [e.type for e in daemon.outbox.pending(limit=100)]
        assert kinds == ["access.decision", "access.passage_missed"]
        gate.unplugged = False  # type: ignore[attr-defined]
        daemon.access.forget_recent()
        again = daemon.readers["entry"].inject("uid", uid_for(index))  # type: ignore[attr-defined]
        # the failed pulse did not cost an entry
        assert again.granted and again.decision.entries_left == 9
        with pytest.raises(PeripheralOffline):
            gate.unplugged = True  # type: ignore[attr-defined]
            daemon.remote_open("g1", "in", "req-1")
        assert [e.type for e in daemon.outbox.pending(limit=100)].count(
            "access.remote_open") == 0
    finally:
        daemon.stop()
