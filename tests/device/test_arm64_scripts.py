"""The arm64 emulation run's own parts, on this machine (the run itself takes tens of
minutes under qemu and is not part of the suite: docs/performance.md, "arm64 under
emulation"): the measuring script that runs inside the guest measures the real agent here
too, and the host script refuses bad arguments with one line."""

from __future__ import annotations

import json
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASURE = ROOT / "scripts" / "arm64_guest_measure.py"
EMULATION = ROOT / "scripts" / "arm64_emulation.sh"


@pytest.mark.slow
def test_guest_measure_reports_real_figures(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(MEASURE), "--workdir", str(tmp_path),
                           "--taps", "3", "--members", "20"],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["machine"] == platform.machine()
    assert 0 < result["cold_start_ready_s"] < 120
    assert result["cli_tap_granted"] is True
    assert result["taps"] == 3 and result["granted"] == 3
    latency = result["decision_latency_ms"]
    assert 0 < latency["median"] <= latency["max"]
    assert result["round_trip_ms"]["median"] > 0
    assert result["agent_exit"] == 0
    # the agent really ran on this folder: its store holds the four taps' events
    with sqlite3.connect(tmp_path / "device" / "agent.sqlite3") as db:
        (events,) = db.execute("SELECT count(*) FROM outbox").fetchone()
    assert events == 4


def test_guest_measure_refuses_too_few_members(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(MEASURE), "--workdir", str(tmp_path),
                           "--taps", "5", "--members", "3"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("--taps must be ≥ 1 and --members ≥ 5 × taps (every "
                                   "fifth synthetic member has a plain membership; those "
                                   "are tapped)")


@pytest.mark.parametrize("args", [["--taps", "x"], ["--smp", "0"], ["--bogus"]])
def test_emulation_script_refuses_bad_arguments(args: list[str]) -> None:
    done = subprocess.run(["bash", str(EMULATION), *args], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arm64_emulation: ")
