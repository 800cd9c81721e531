"""A real time-clock agent for the kiosk tests: ``edge-agent demo-config --kind timeclock``,
two employees in its store (one with a new digits-only id, one with an older ``m-…`` id),
then ``edge-agent run`` as a subprocess serving the kiosk page on a free port."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import load_config
from agent.control_client import ControlClient
from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes
from contracts.credential_hash import credential_hash
from contracts.membership_changes import parse_changes
from contracts.pin_hash import hash_pin
from tests.agent_process import AgentProcess
from tests.cloud_harness import wait_until
from tests.mqtt_broker import free_port


@dataclass(frozen=True)
class Employee:
    id: str
    name: str
    uid: str
    pin: str


ANA = Employee("101", "Ana", "04AA000000000A", "4821")
OLD_ID = Employee("m-3f9a0c", "Luka", "04BB000000000B", "5173")  # made before digits-only ids
UNKNOWN_UID = "04FFFFFFFFFF01"


def edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=60)


def make_demo(folder: Path, kind: str, *extra: str) -> Path:
    made = edge_agent("demo-config", "--out", str(folder), "--kind", kind, *extra)
    assert made.returncode == 0, made.stderr
    return Path(made.stdout.strip())


def add_employees(config: Path, employees: tuple[Employee, ...] = (ANA, OLD_ID)) -> None:
    cfg = load_config(config)
    key = cfg.hmac_key()
    changes: list[dict[str, object]] = []
    for e in employees:
        changes += [
            {"entity": "member", "op": "upsert", "id": e.id, "first_name": e.name,
             "pin_hash": hash_pin(e.pin)},
            {"entity": "credential", "op": "upsert", "id": f"{e.id}-c", "member_id": e.id,
             "kind": "card", "hash": credential_hash(key, "uid", e.uid)}]
    store = LocalStore(cfg.store_path)
    try:
        with store.transaction() as conn:
            apply_changes(conn, parse_changes(changes))
    finally:
        store.close()


@dataclass
class KioskAgent:
    config: Path
    port: int
    process: AgentProcess

    def url(self, path: str = "/kiosk/t1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def tap(self, uid: str) -> dict[str, object]:
        return ControlClient(self.process.socket).request("present", reader="wall",
                                                          kind="uid", value=uid)

    def punches(self) -> list[str]:
        store = LocalStore(load_config(self.config).store_path)
        try:
            rows = store.conn.execute("SELECT data FROM outbox WHERE type = "
                                      "'attendance.punch' ORDER BY seq").fetchall()
        finally:
            store.close()
        return [str(r[0]) for r in rows]


def start_kiosk_agent(folder: Path, *extra: str, window_s: int = 20) -> KioskAgent:
    port = free_port()
    config = make_demo(folder, "timeclock", "--http-port", str(port), *extra)
    # a longer choose window than the demo's, so a screen can be checked before it closes
    config.write_text(config.read_text().replace("choose_window_s = 4",
                                                 f"choose_window_s = {window_s}"))
    add_employees(config)
    process = AgentProcess(config, folder / "agent.log")

    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/kiosk/api/status", timeout=1):
                return True
        except OSError:
            return False

    wait_until(serving, timeout=20, what="kiosk page served")
    return KioskAgent(config, port, process)


@pytest.fixture(scope="module")
def kiosk_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskAgent]:
    agent = start_kiosk_agent(tmp_path_factory.mktemp("kiosk"))
    yield agent
    agent.process.stop()
