"""The daemon end to end: real process, simulated peripherals, the technician CLI over the
control socket, clean shutdown, logs without UIDs or names."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.member_generator import FIRST_NAMES, uid_for
from tests.agent_process import AgentProcess, edge_sim


@pytest.fixture
def agent(write_config: Callable[..., Path], tmp_path: Path) -> Iterator[AgentProcess]:
    extra = "[site_policy]\nanti_passback = true\n"
    proc = AgentProcess(write_config(extra), tmp_path / "agent.log")
    yield proc
    proc.stop()


def sim_json(agent: AgentProcess, *args: str) -> dict:
    done = edge_sim(*args, "--json", config=agent.config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_members_tap_watch_status_and_clean_shutdown(agent: AgentProcess) -> None:
    loaded = sim_json(agent, "members", "--count", "50")
    assert loaded["loaded"] == 50

    seen: list[dict] = []
    watcher = threading.Thread(
        target=lambda: seen.extend(
            json.loads(line) for line in
            edge_sim("gate", "--count", "2", "--json", config=agent.config).stdout.splitlines()
        )
    )
    watcher.start()
    time.sleep(1.5)  # let the watcher subscribe
    granted = sim_json(agent, "tap", "--member", "5")  # member 5: a plain membership
    # the same card again within the 1.5 s repeat window: straight over the control socket,
    # since starting another CLI process may take longer than that on a busy machine
    again = _raw(agent, json.dumps({"op": "present", "reader": "entry", "kind": "uid",
                                    "value": uid_for(5)}).encode() + b"\n")
    assert granted["granted"] and granted["reason"] == "granted"
    assert again["repeat"] is True and again["granted"]
    watcher.join(30)
    kinds = {item["kind"] for item in seen}
    assert kinds == {"pulse", "decision"}
    pulse = next(i for i in seen if i["kind"] == "pulse")
    assert pulse["gate"] == "g1" and pulse["direction"] == "in"

    denied = sim_json(agent, "tap", "04DEADBEEF0000")
    assert denied["reason"] == "unknown_credential"
    exit_ok = sim_json(agent, "tap", "--member", "5", "--reader", "exit")
    assert exit_ok["granted"]

    status = sim_json(agent, "status")
    assert status["outbox_depth"] == 3 and status["last_seq"] == 3
    assert {p["health"] for p in status["peripherals"]} == {"ok"}

    human = edge_sim("tap", "--member", "10", config=agent.config)
    assert "GRANTED" in human.stdout and "decision" in human.stdout

    assert agent.stop(signal.SIGTERM) == 0
    assert not agent.socket.exists()
    log = agent.log_text()
    assert "agent stopped" in log
    for i in (5, 10):
        assert uid_for(i) not in log
    for name in FIRST_NAMES:
        assert name not in log
    assert "04DEADBEEF0000" not in log


def _raw(agent: AgentProcess, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(agent.socket))
        s.sendall(payload)
        with s.makefile("rb") as f:
            return json.loads(f.readline())


def test_control_socket_rejects_garbage_and_keeps_running(agent: AgentProcess) -> None:
    assert _raw(agent, b"\xff\xfe garbage\n")["error"] == "request is not JSON"
    assert "op" in _raw(agent, b"[1,2,3]\n")["error"]
    assert "unknown op" in _raw(agent, b'{"op": "format-disk"}\n')["error"]
    assert "no reader" in _raw(agent, b'{"op": "present", "reader": "x", "value": "04AA"}\n')[
        "error"]
    bad_kind = _raw(agent, b'{"op": "present", "reader": "entry", "kind": "iris", "value": "1"}\n')
    assert "kind must be" in bad_kind["error"]
    not_str = _raw(agent, b'{"op": "present", "reader": "entry", "value": 5}\n')
    assert "must be a string" in not_str["error"]
    huge = _raw(agent, json.dumps({"op": "present", "reader": "entry", "kind": "qr",
                                   "value": "A" * 10_000}).encode() + b"\n")
    assert huge["ok"] and huge["reason"] == "malformed_credential"
    bad_members = _raw(agent, b'{"op": "members.load", "members": [{"id": ""}]}\n')
    assert not bad_members["ok"] and "invalid request" in bad_members["error"]
    assert _raw(agent, b'{"op": "status"}\n')["ok"]


def test_cli_without_agent_says_what_to_do(write_config: Callable[..., Path]) -> None:
    done = edge_sim("tap", "04A1B2C3D4", config=write_config())
    assert done.returncode == 3
    assert "no agent is listening" in done.stderr
