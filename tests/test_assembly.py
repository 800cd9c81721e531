"""agent/assembly.py: one way from a config to a running agent (edge-agent run, the fleet
simulator, the benchmarks), and a start-up that fails leaves nothing running."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.assembly import AgentParts, start_agent
from agent.config import load_config
from agent.control_client import AgentUnreachable, ControlClient
from agent.errors import ConfigError, StartupError
from agent.supervisor import DeviceOptions
from tests.mqtt_broker import free_port


def can_bind(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_started_agent_answers_on_its_socket_and_stops_cleanly(
        write_config: Callable[..., Path]) -> None:
    cfg = load_config(write_config())
    agent = start_agent(cfg)
    try:
        assert agent.link is None and agent.services is None  # no [mqtt], no device options
        reply = ControlClient(cfg.socket_path, timeout=10).request(
            "present", reader="entry", kind="uid", value="04DEADBEEF0000")
        assert reply["ok"] and reply["reason"] == "unknown_credential"
        assert agent.daemon.gates["g1"].pulses == []  # type: ignore[attr-defined]
    finally:
        agent.stop()
    assert not cfg.socket_path.exists()
    with pytest.raises(AgentUnreachable):
        ControlClient(cfg.socket_path, timeout=2).request("status")


def test_a_socket_that_cannot_listen_stops_the_started_daemon(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    port = free_port()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cfg = load_config(write_config(
        f'[control]\nsocket = "{a_file}/agent.sock"\n\n'
        f'[local_http]\nbind = "127.0.0.1"\nport = {port}\n'))
    with pytest.raises(ConfigError, match=r"control\.socket: cannot listen"):
        start_agent(cfg)
    # the daemon had started its web server: stopped again with everything else
    assert can_bind(port)


def test_device_services_that_cannot_start_stop_the_agent(
        write_config: Callable[..., Path]) -> None:
    cfg = load_config(write_config())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(StartupError, match="in use"):
            start_agent(cfg, AgentParts(device=DeviceOptions(f"127.0.0.1:{busy}")))
    assert not cfg.socket_path.exists()  # the control socket was closed again
