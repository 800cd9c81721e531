"""systemd integration: the shipped units pass `systemd-analyze verify` and score well in
`systemd-analyze security`; the real `edge-agent run` reports READY=1 and pings the
watchdog over a real notify socket, and stops pinging when its decision path hangs."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.watchdog import FAULT_ENV, install_fault_injection
from tests.device.notify_socket import NotifySocket

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
VENV_BIN = Path(sys.executable).parent
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def _unit_copy(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this venv (verify checks the binary exists)."""
    text = (UNITS / name).read_text()
    assert "/opt/edge-suite/.venv/bin/" in text
    target = tmp_path / name
    target.write_text(text.replace("/opt/edge-suite/.venv/bin/", f"{VENV_BIN}/"))
    return target


@needs_systemd
@pytest.mark.parametrize("name", ["edge-agent.service", "cloud-bridge.service"])
def test_unit_verifies_cleanly_and_is_hardened(tmp_path: Path, name: str) -> None:
    unit = _unit_copy(tmp_path, name)
    done = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    # verify exits 0 even for unknown keys; any message at all is a defect
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    sec = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=25", str(unit)],
                         capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", sec.stdout)
    assert sec.returncode == 0 and level and float(level.group(1)) <= 2.5, sec.stdout[-500:]
    text = unit.read_text()
    for needed in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes",
                   "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
                   "CapabilityBoundingSet=\n", "StandardOutput=journal"):
        assert needed in text, needed


def test_agent_unit_keeps_fault_injection_out_and_devices_in() -> None:
    text = (UNITS / "edge-agent.service").read_text()
    assert f"UnsetEnvironment={FAULT_ENV}" in text
    assert "SupplementaryGroups=dialout plugdev gpio lp" in text
    assert "ReadWritePaths=/var/lib/edge-agent" in text
    users = (UNITS / "edge-agent.sysusers.conf").read_text()
    assert re.search(r"^u\s+edge-agent\s", users, re.M)
    # a device gets no bridge user: the bridge's user is in its own file
    assert not re.search(r"^u\s+cloud-bridge\s", users, re.M)
    bridge = (UNITS / "cloud-bridge.sysusers.conf").read_text()
    assert re.search(r"^u\s+cloud-bridge\s", bridge, re.M)


def test_udev_rules_are_well_formed() -> None:
    rule = re.compile(r'^(?:[A-Z_]+(?:\{[A-Za-z_]+\})?(?:==|!=|\+=|=)"[^"]*"(?:, |$))+$')
    ids = set()
    for line in (UNITS / "60-edge-agent.rules").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert rule.match(line), line
        m = re.search(r'idVendor}=="([0-9a-f]{4})", ATTRS?\{idProduct}=="([0-9a-f]{4})"', line)
        if m:
            ids.add(f"{m.group(1)}:{m.group(2)}")
    assert {"072f:2200", "04b8:0202", "1a86:7523", "16c0:05df"} <= ids
    doc = (ROOT / "docs" / "technician.md").read_text()
    missing = [i for i in sorted(ids) if i not in doc]
    assert not missing, f"VID:PIDs not documented in docs/technician.md: {missing}"


def test_fault_injection_is_refused_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "1")
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    assert install_fault_injection(object()) is False
    monkeypatch.delenv(FAULT_ENV)
    monkeypatch.delenv("INVOCATION_ID")
    assert install_fault_injection(object()) is False


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def _start_agent(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", FAULT_ENV)}
    full.update(env, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        return subprocess.Popen([str(VENV_BIN / "edge-agent"), "run", "-c", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=full)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def test_ready_and_watchdog_pings_then_silence_when_decisions_hang(
    write_config: Callable[..., Path], notify: NotifySocket, tmp_path: Path,
) -> None:
    config = write_config()
    proc = _start_agent(config, {**notify.env(watchdog_usec=1_000_000), FAULT_ENV: "1"},
                        tmp_path / "agent.log")
    try:
        notify.wait_for("READY=1", timeout=30)
        assert any(m.startswith("MAINPID=") for _, m in notify.messages)
        healthy = notify.receive(3.0)
        pings = [at for at, m in healthy if m == "WATCHDOG=1"]
        assert len(pings) >= 4, healthy  # every 0.5 s for a 1 s WatchdogSec
        assert max(b - a for a, b in itertools.pairwise(pings)) < 1.0

        proc.send_signal(signal.SIGUSR2)  # test-only: hang the decision path
        hung_at = time.monotonic()
        after = notify.receive(4.0)
        late = [at for at, m in after if m == "WATCHDOG=1" and at - hung_at > 1.0]
        assert late == [], after
        assert any(m.startswith("STATUS=unhealthy: decision_path: decision path stuck")
                   for _, m in after), after
        assert proc.poll() is None  # systemd, not the agent, decides to restart it
    finally:
        _stop(proc, timeout=5)
    log = (tmp_path / "agent.log").read_text()
    assert "watchdog pings withheld" in log


def test_no_watchdog_usec_means_no_pings_but_ready_and_stopping(
    write_config: Callable[..., Path], notify: NotifySocket, tmp_path: Path,
) -> None:
    proc = _start_agent(write_config(), notify.env(), tmp_path / "agent.log")
    try:
        notify.wait_for("READY=1", timeout=30)
        assert not [m for _, m in notify.receive(1.5) if m == "WATCHDOG=1"]
    finally:
        assert _stop(proc) == 0
    assert "STOPPING=1" in [m for _, m in notify.receive(1.0)] + \
        [m for _, m in notify.messages]
