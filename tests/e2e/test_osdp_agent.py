"""OSDP readers in a whole agent: ``edge-agent osdp-install`` (a real CLI process) keys a
libosdp reader that is in install mode, then a running AgentDaemon decides its cards
over the secure channel, shows the decision on the reader's LED and buzzer, and records
tamper, offline and refusal in its outbox. The reader is a libosdp PeripheralDevice in a
process of its own on the far end of a socat pty pair."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("osdp")

import osdp

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.store.membership import SyntheticMember, bulk_insert, synthetic_changes
from contracts.events import READER_OFFLINE, READER_REFUSED, READER_TAMPER
from simulators.member_generator import member_record, uid_for
from tests.drivers.osdp_peer import OsdpPeer
from tests.drivers.reader_helpers import wait_for

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]
MEMBER = 5  # index % 5 == 0: a plain membership, unlimited entries


def _config(write_config: Callable[..., Path], peer: OsdpPeer) -> Path:
    return write_config(gates=f"""
[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "door"
url = "osdp:{peer.device}?address={peer.address}&baud=9600&retry_s=1"
gate = "g1"
direction = "in"
scbk = "file:keys/osdp-door.scbk"
""")


def _install(config: Path, *extra: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "agent", "osdp-install", "-c", str(config),
                           "--reader", "door", "--timeout", str(timeout), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    print(f"osdp-install {' '.join(extra)}: {time.monotonic() - started:.1f} s")
    return done


def _stored(key_file: Path) -> bytes:
    return base64.b64decode(key_file.read_text().strip())


def _events(daemon: AgentDaemon, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in daemon.outbox.pending(limit=1000) if e.type == kind]


def test_install_mode_sets_a_fresh_key_once_and_rotation_replaces_it(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    peer = OsdpPeer(tmp_path, key=None).start()  # a new reader: install mode
    config = _config(write_config, peer)
    key_file = tmp_path / "keys" / "osdp-door.scbk"
    try:
        done = _install(config)
        assert done.returncode == 0, done.stderr
        key = _stored(key_file)
        assert len(key) == 16
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        sets = peer.commands(osdp.Command.Keyset)
        assert [bytes.fromhex(s["data"]) for s in sets] == [key]  # the reader holds it
        assert key.hex() not in done.stdout + done.stderr
        assert base64.b64encode(key).decode() not in done.stdout + done.stderr

        # install mode is over: the default key no longer opens the reader
        again = _install(config, timeout=2)
        assert again.returncode == 2
        assert again.stderr.startswith("key not set:") and "not in install mode" in again.stderr
        assert _stored(key_file) == key and not list(key_file.parent.glob("*.pending"))

        rotated = _install(config, "--rotate")
        assert rotated.returncode == 0, rotated.stderr
        new_key = _stored(key_file)
        assert new_key != key
        assert bytes.fromhex(peer.commands(osdp.Command.Keyset)[-1]["data"]) == new_key
    finally:
        peer.close()


def _with_member(daemon: AgentDaemon) -> None:
    record = {k: v for k, v in member_record(MEMBER).items() if k != "kind"}
    with daemon.store.transaction() as conn:
        bulk_insert(conn, *synthetic_changes(daemon.config.hmac_key(),
                                             [SyntheticMember.model_validate(record)]))


def _status(daemon: AgentDaemon) -> dict[str, Any]:
    return next(p for p in daemon.status()["peripherals"] if p["id"] == "door")


def test_the_agent_decides_osdp_cards_shows_them_on_the_reader_and_records_alerts(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    key = os.urandom(16)
    peer = OsdpPeer(tmp_path, key).start()
    config = _config(write_config, peer)
    (tmp_path / "keys").mkdir(mode=0o700)
    key_file = tmp_path / "keys" / "osdp-door.scbk"
    key_file.write_text(base64.b64encode(key).decode())
    key_file.chmod(0o600)
    daemon = AgentDaemon(load_config(config))
    _with_member(daemon)
    daemon.start()
    try:
        wait_for(lambda: _status(daemon)["health"] == "ok", 5, "the reader online")
        peer.present(uid_for(MEMBER))
        wait_for(lambda: len(_events(daemon, "access.decision")) == 1, 5, "the decision")
        peer.present("04FFFFFFFFFF01")  # nobody's card
        wait_for(lambda: len(_events(daemon, "access.decision")) == 2, 5, "the refusal")
        granted = [e["granted"] for e in _events(daemon, "access.decision")]
        assert granted == [True, False]
        assert len(daemon.gates["g1"].pulses) == 1  # type: ignore[attr-defined]
        wait_for(lambda: len(peer.commands(osdp.Command.Buzzer)) == 2, 5, "two beeps")
        assert [c["on_color"] for c in peer.commands(osdp.Command.LED)] == \
            [osdp.CommandLEDColor.Green, osdp.CommandLEDColor.Red]
        # no card number in the outbox: the agent stores hashes
        assert uid_for(MEMBER) not in str(daemon.outbox.pending(limit=1000))

        peer.send(op="tamper", open=True)
        wait_for(lambda: _events(daemon, READER_TAMPER), 5, "the tamper event")
        assert _events(daemon, READER_TAMPER)[0]["active"] is True
        assert _events(daemon, READER_TAMPER)[0]["reader"] == "door"

        peer.close()  # the reader's line goes away
        wait_for(lambda: _events(daemon, READER_OFFLINE), 5, "the offline event")
        assert _status(daemon)["health"] == "down"
        peer.start()
        wait_for(lambda: len(_events(daemon, READER_OFFLINE)) == 2, 15, "back online")
        assert [e["active"] for e in _events(daemon, READER_OFFLINE)] == [True, False]
    finally:
        daemon.stop()
        peer.close()


def test_a_reader_with_another_key_is_refused_and_recorded(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    peer = OsdpPeer(tmp_path, os.urandom(16)).start()
    config = _config(write_config, peer)
    (tmp_path / "keys").mkdir(mode=0o700)
    key_file = tmp_path / "keys" / "osdp-door.scbk"
    key_file.write_text(base64.b64encode(os.urandom(16)).decode())
    key_file.chmod(0o600)
    daemon = AgentDaemon(load_config(config))
    _with_member(daemon)
    daemon.start()
    try:
        wait_for(lambda: _events(daemon, READER_REFUSED), 5, "the refusal event")
        refused = _events(daemon, READER_REFUSED)[0]
        assert refused["active"] is True
        assert refused["detail"].startswith("reader refused: secure channel")
        peer.present(uid_for(MEMBER))
        time.sleep(1.0)  # a retry with the wrong key meanwhile must not let it through
        assert not peer.commands(osdp.Command.Buzzer)
        assert not _events(daemon, "access.decision")
    finally:
        daemon.stop()
        peer.close()


def test_a_missing_key_file_stops_start_up_with_the_fix(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    peer = OsdpPeer(tmp_path, None)  # not started: start-up fails before it is opened
    config = _config(write_config, peer)
    from agent.errors import ConfigError

    daemon = AgentDaemon(load_config(config))
    try:
        with pytest.raises(ConfigError, match="edge-agent osdp-install --reader door"):
            daemon.start()
        # a key file others can read is refused like the agent's other keys
        key_file = tmp_path / "keys" / "osdp-door.scbk"
        key_file.parent.mkdir(mode=0o700)
        key_file.write_text(base64.b64encode(os.urandom(16)).decode())
        key_file.chmod(0o644)
        with pytest.raises(ConfigError, match="accessible to group and others"):
            daemon.start()
    finally:
        daemon.store.close()
