"""The systemd back-end (agent/update/service_systemd.py) against a real systemd.

This machine does not run systemd as PID 1, so the test boots one: systemd as PID 1 of a
new PID and mount namespace (``unshare``), chrooted into an overlay of / whose changes go
to a tmpfs, with a target that starts nothing. The back-end then runs inside it, as it
does on a device: ``systemctl restart`` of the agent's unit, and the guard as a transient
unit (``systemd-run``) that the agent's restart does not kill. Killing the namespace's
PID 1 ends every process in it and drops the mounts; nothing reaches the host.

Not covered here: the polkit rule (no polkitd/D-Bus in the namespace; the back-end runs
as root) — tests/packaging/test_deb.py checks that the package ships it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = Path("/lib/systemd/systemd")

BOOT = r"""
set -e
T="$1"
mount -t tmpfs tmpfs "$T"
mkdir -p "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
R="$T/root"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/etc/systemd/system"
printf '[Unit]\nDescription=nothing but the test\n' > "$R/etc/systemd/system/edge-test.target"
# the agent's unit: records each start ($$$$: systemd makes it $$), then stays up
cat > "$R/etc/systemd/system/edge-agent.service" <<'UNIT'
[Service]
ExecStart=/bin/sh -c 'echo $$$$ >> /run/agent.starts; exec sleep 600'
UNIT
exec chroot "$R" /lib/systemd/systemd --system --unit=edge-test.target
"""


@dataclass
class BootedSystemd:
    pid: int  # systemd, PID 1 of the namespace, as this machine numbers it
    root: Path

    def run(self, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        done = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "chroot",
                               str(self.root), *argv], capture_output=True, text=True,
                              timeout=60, env=env)
        if ok:
            assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        return done

    def main_pid(self, unit: str) -> int:
        return int(self.run("systemctl", "show", "-P", "MainPID", unit).stdout.strip() or 0)

    def state(self, unit: str) -> str:
        return self.run("systemctl", "is-active", unit, ok=False).stdout.strip()

    def back_end(self, code: str) -> str:
        """Python with this checkout's agent.update.service_systemd, inside the namespace."""
        return self.run("env", f"PYTHONPATH={ROOT}", sys.executable, "-c",
                        "from agent.update.service_systemd import SystemdService\n"
                        "s = SystemdService('edge-agent.service')\n" + code).stdout.strip()


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


@pytest.fixture
def booted(tmp_path: Path) -> Iterator[BootedSystemd]:
    if os.geteuid() != 0:
        pytest.skip("booting systemd in a namespace needs root")
    if not SYSTEMD.exists() or shutil.which("unshare") is None or shutil.which("nsenter") \
            is None:
        pytest.skip("needs systemd, unshare and nsenter (util-linux)")
    mount_point = tmp_path / "ns"
    mount_point.mkdir()
    # unshare forks the namespace's PID 1 (the boot script, then systemd by exec)
    unshare = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c",
         BOOT, "boot", str(mount_point)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
    pid = 0
    try:
        assert wait_for(lambda: children.exists() and children.read_text().strip() != "", 5)
        pid = int(children.read_text().split()[0])
        booted = BootedSystemd(pid, mount_point / "root")
        assert wait_for(lambda: booted.run("systemctl", "is-system-running", ok=False)
                        .stdout.strip() in ("running", "degraded"), 15), \
            booted.run("systemctl", "is-system-running", ok=False).stdout
        yield booted
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)  # PID 1 of the namespace: all of it ends
        try:
            unshare.wait(10)
        finally:
            if unshare.stdout is not None:
                unshare.stdout.close()


def test_restart_and_a_guard_that_outlives_the_restart(booted: BootedSystemd) -> None:
    booted.run("systemctl", "start", "edge-agent.service")
    first = booted.main_pid("edge-agent.service")
    assert first > 0 and booted.state("edge-agent.service") == "active"

    # the guard: a transient unit of its own, started detached; its pid is returned
    guard_pid = int(booted.back_end("print(s.launch_detached(['/bin/sleep', '600']))"))
    assert guard_pid > 0
    assert booted.main_pid("edge-agent-update.service") == guard_pid
    assert booted.state("edge-agent-update.service") == "active"
    cgroup = booted.run("systemctl", "show", "-P", "ControlGroup",
                        "edge-agent-update.service").stdout.strip()
    assert cgroup.endswith("/edge-agent-update.service"), cgroup

    # the restart the guard asks for: a new agent process, the guard untouched
    booted.back_end("s.restart()")
    assert wait_for(lambda: booted.main_pid("edge-agent.service") not in (0, first), 10)
    assert booted.state("edge-agent.service") == "active"
    assert booted.run("cat", "/run/agent.starts").stdout.split() == [
        str(first), str(booted.main_pid("edge-agent.service"))]
    assert booted.main_pid("edge-agent-update.service") == guard_pid

    # a guard that ended is collected (--collect): the next update starts one anew
    booted.run("systemctl", "stop", "edge-agent-update.service")
    assert wait_for(lambda: booted.state("edge-agent-update.service") == "inactive", 10)
    again = int(booted.back_end("print(s.launch_detached(['/bin/sleep', '600']))"))
    assert again > 0 and again != guard_pid


def test_a_failing_restart_raises(booted: BootedSystemd) -> None:
    """systemctl's refusal reaches the guard as a ServiceError saying what systemd
    answered (the guard then switches back and reports it), not a silent success: here
    the unit does not exist."""
    out = booted.back_end(
        "from agent.update.service import ServiceError\n"
        "s = SystemdService('no-such-agent.service')\n"
        "try:\n    s.restart()\nexcept ServiceError as e:\n    print('refused:', e)\n")
    assert out.startswith("refused: systemctl restart --no-block: exit ") and \
        "no-such-agent.service not found" in out, out
