"""``edge-agent demo-config --kind gate|timeclock|pos``: each kind passes check-config and
starts; a time-clock demo accepts a punch from ``edge-sim tap`` (no traceback), and the
device's ``language`` setting is what its displays speak."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.control_client import ControlClient
from tests.agent_process import AgentProcess, edge_sim
from tests.cloud_harness import wait_until
from tests.kiosk.conftest import ANA, UNKNOWN_UID, KioskAgent, add_employees, edge_agent, make_demo
from tests.mqtt_broker import free_port


@pytest.mark.parametrize("kind", ["gate", "timeclock", "pos"])
def test_each_kind_passes_check_config(tmp_path: Path, kind: str) -> None:
    config = make_demo(tmp_path / kind, kind)
    checked = edge_agent("check-config", str(config))
    assert checked.returncode == 0, checked.stderr
    described = json.loads(checked.stdout)
    assert described["device"] == {"gate": "gate-01", "timeclock": "clock-01",
                                   "pos": "pos-01"}[kind]
    text = config.read_text()
    assert ("[[terminals]]" in text) == (kind == "timeclock")
    assert ("[pos]" in text) == (kind == "pos")
    assert ("[[gates]]" in text) == (kind == "gate")


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    made = edge_agent("demo-config", "--out", str(tmp_path), "--kind", "coffee")
    assert made.returncode == 2 and "gate, timeclock, pos" in made.stderr
    assert not (tmp_path / "agent.toml").exists()


def test_timeclock_demo_starts_and_takes_a_punch_from_edge_sim(tmp_path: Path) -> None:
    config = make_demo(tmp_path, "timeclock", "--http-port", str(free_port()))
    add_employees(config, (ANA,))
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        watch = subprocess.Popen(  # the technician's live view of the device
            [sys.executable, "-m", "simulators", "gate", "--count", "1", "--config",
             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert watch.stderr is not None and "watching" in watch.stderr.readline()
        tapped = edge_sim("tap", ANA.uid, "--reader", "wall", config=config)
        watched, _ = watch.communicate(timeout=30)
        assert watch.returncode == 0
        assert "punch pending" in watched and "Pozdravljeni, Ana" in watched
        assert tapped.returncode == 0 and tapped.stderr == "", tapped.stderr
        assert "PENDING" in tapped.stdout and "Pozdravljeni, Ana" in tapped.stdout
        assert "arrival" in tapped.stdout
        refused = edge_sim("tap", UNKNOWN_UID, "--reader", "wall", config=config)
        assert refused.returncode == 0 and "Traceback" not in refused.stderr
        assert "REFUSED" in refused.stdout and "Neznana kartica" in refused.stdout
        as_json = edge_sim("tap", UNKNOWN_UID, "--reader", "wall", "--json", config=config)
        assert json.loads(as_json.stdout)["problem"] == "unknown"
        # the demo's choose window (4 s) runs out and the suggested arrival is recorded
        wait_until(lambda: bool(KioskAgent(config, 0, agent).punches()), timeout=15,
                   what="the punch recorded after the choose window")
    finally:
        assert agent.stop() == 0
    assert "Traceback" not in agent.log_text()
    (punch,) = [json.loads(p) for p in KioskAgent(config, 0, agent).punches()]
    assert punch["employee"] == ANA.id and punch["type"] == "arrival"
    assert punch["method"] == "card" and punch["terminal"] == "t1"


def test_gate_demo_in_english_shows_english_display_texts(tmp_path: Path) -> None:
    config = make_demo(tmp_path, "gate", "--language", "en")
    assert 'language = "en"' in config.read_text()
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        denied = edge_sim("tap", UNKNOWN_UID, "--reader", "entry", "--json", config=config)
        assert denied.returncode == 0, denied.stderr
        reply = json.loads(denied.stdout)
        assert not reply["granted"] and reply["reason"] == "unknown_credential"
        assert reply["message"] == "Unknown card"
    finally:
        agent.stop()


def test_gate_demo_speaks_slovenian_by_default(tmp_path: Path) -> None:
    config = make_demo(tmp_path, "gate")
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        denied = edge_sim("tap", UNKNOWN_UID, "--reader", "entry", "--json", config=config)
        assert json.loads(denied.stdout)["message"] == "Neznana kartica"
    finally:
        agent.stop()


def test_pos_demo_starts_with_furs_test_material(tmp_path: Path) -> None:
    config = make_demo(tmp_path, "pos")
    made = subprocess.run([sys.executable, "-m", "simulators", "furs", "init",
                           str(tmp_path / "furs")], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        listing = ControlClient(agent.socket).request("receipts", limit=5)
        assert listing["ok"] and listing["receipts"] == []
    finally:
        assert agent.stop() == 0
