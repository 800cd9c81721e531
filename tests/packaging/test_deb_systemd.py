"""The Debian package under a real systemd with polkit: the agent's unit (with the update
drop-in) reaches READY from `current`, and the agent's user, through the shipped polkit
rule, restarts the agent and starts its update guard (agent/update/service_systemd.py),
and nothing else.

This machine does not run systemd as PID 1, so the test boots one in a namespace
(tests/systemd_namespace.py) and installs the package there with dpkg: the installation
stays in the namespace's tmpfs, the machine is untouched. D-Bus and polkitd are the
machine's own (their units, started inside)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import Builds
from tests.systemd_namespace import BootedSystemd, booted_systemd, can_boot, wait_for

# 900 s: it may wait for the other worker's build and package test (tests/machine_lock.py)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
POLKITD = Path("/usr/lib/polkit-1/polkitd")
USER = "edge-agent"
# a provisioned device with simulated peripherals (no bridge: it runs offline)
CONFIG = """tenant = "t1"
device = "gate-1"
site = "s1"
data_dir = "/var/lib/edge-agent"
timezone = "Europe/Ljubljana"

[keys]
credential_hmac_key = "file:keys/credential_hmac.key"

[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"

[update]
release_public_key = "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
"""
BACK_END = ("import sys\n"
            "from pathlib import Path\n"
            "from agent.update.service import ServiceError\n"
            "from agent.update.service_systemd import SystemdService\n"
            "s = SystemdService(sys.argv[1])\n"
            "try:\n"
            "    if sys.argv[2] == 'restart':\n"
            "        s.restart()\n"
            "    else:\n"
            "        print(s.launch_guard(sys.argv[2], Path('/etc/edge-agent/agent.toml')))\n"
            "except ServiceError as exc:\n"
            "    print('refused:', exc)\n")


@pytest.fixture
def device(builds: Builds, tmp_path: Path) -> Iterator[BootedSystemd]:
    why_not = can_boot() or (None if POLKITD.exists() else "needs polkitd (apt-get install "
                             "polkitd) for the package's polkit rule")
    if why_not:
        pytest.skip(why_not)
    with booted_systemd(tmp_path / "ns") as booted:
        booted.run("dpkg", "-i", str(builds.old))
        booted.write("/etc/edge-agent/agent.toml", CONFIG)
        booted.run("chown", f"{USER}:{USER}", "/etc/edge-agent/agent.toml")
        booted.run("chmod", "0600", "/etc/edge-agent/agent.toml")
        booted.run("systemctl", "start", "dbus.socket", "polkit.service")
        yield booted


def as_service_user(booted: BootedSystemd, unit: str, verb: str) -> str:
    """The back-end of the installed program, run by the agent's user (as the agent and
    its guard run it)."""
    return booted.run("runuser", "-u", USER, "--", "env", "-u", "PYTHONPATH",
                      "/opt/edge-agent/bin/python", "-c", BACK_END, unit, verb
                      ).stdout.strip()


def test_agent_runs_under_systemd_and_its_user_restarts_it_and_starts_its_guard(
        device: BootedSystemd) -> None:
    started = time.monotonic()
    device.run("systemctl", "start", "edge-agent.service")  # Type=notify: waits for READY
    ready_s = time.monotonic() - started
    assert device.state("edge-agent.service") == "active"
    first = device.main_pid("edge-agent.service")
    cmdline = device.run("cat", f"/proc/{first}/cmdline").stdout.split("\0")
    assert cmdline[:4] == ["/opt/edge-agent/bin/python", "-m", "agent", "run"], cmdline
    status = device.run("systemctl", "show", "-P", "StatusText", "edge-agent.service").stdout
    assert "gate-1" in status, status

    # the agent's user restarts the agent (polkit: the shipped rule)
    assert as_service_user(device, "edge-agent.service", "restart") == ""
    assert wait_for(lambda: device.main_pid("edge-agent.service") not in (0, first), 30)
    assert wait_for(lambda: device.state("edge-agent.service") == "active", 30)

    # ... and starts its guard, a unit of its own: `resume` with no update in progress
    pid = as_service_user(device, "edge-agent.service", "resume")
    assert not pid.startswith("refused"), pid
    guard = "edge-agent-update@resume.service"
    assert wait_for(lambda: device.state(guard) in ("inactive", "failed"), 30)
    result = device.run("systemctl", "show", "-P", "Result", guard).stdout.strip()
    assert result == "success", device.run("journalctl", "--no-pager", "-u", guard,
                                           ok=False).stdout
    log = device.run("cat", "/var/lib/edge-agent/software/guard.log").stdout
    owner = device.run("stat", "-c", "%U", "/var/lib/edge-agent/software/guard.log").stdout
    assert owner.strip() == USER, (owner, log)

    # nothing else: another unit, another verb, another guard instance
    for unit, verb in (("dbus.service", "restart"), ("edge-agent.service", "apply-not")):
        said = as_service_user(device, unit, verb)
        assert said.startswith("refused:") and "Interactive authentication required" in said, \
            said
    stop = device.run("runuser", "-u", USER, "--", "systemctl", "stop", "edge-agent.service",
                      ok=False)
    assert stop.returncode != 0 and device.state("edge-agent.service") == "active"
    print(f"READY after {ready_s:.1f} s")
