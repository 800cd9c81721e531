"""A real systemd to test against on a machine that does not run it as PID 1: systemd
as PID 1 of a new PID and mount namespace (``unshare``), chrooted into an overlay of /
whose changes go to a tmpfs, with a target that starts nothing. Commands run inside with
``nsenter`` + ``chroot``; whatever they install or write stays in the tmpfs. Killing the
namespace's PID 1 ends every process in it and drops its mounts: nothing reaches the host.
Root only (mounts, namespaces)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SYSTEMD = Path("/lib/systemd/systemd")


def can_boot() -> str | None:
    """Why systemd cannot be booted here, or None."""
    if os.geteuid() != 0:
        return "booting systemd in a namespace needs root"
    if not SYSTEMD.exists() or shutil.which("unshare") is None or shutil.which("nsenter") \
            is None:
        return "needs systemd, unshare and nsenter (util-linux)"
    return None


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
mkdir -p "$R/etc/systemd/system"
printf '[Unit]\nDescription=nothing but the test\n' > "$R/etc/systemd/system/edge-test.target"
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

    def write(self, path: str, text: str) -> None:
        """A file inside (in the overlay's tmpfs)."""
        done = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "chroot", str(self.root),
                               "sh", "-c", 'cat > "$1"', "write", path], input=text,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


@contextlib.contextmanager
def booted_systemd(mount_point: Path) -> Iterator[BootedSystemd]:
    """systemd booted in a namespace; ``mount_point`` (an empty folder) holds its tmpfs."""
    mount_point.mkdir(parents=True, exist_ok=True)
    # unshare forks the namespace's PID 1 (the boot script, then systemd by exec)
    unshare = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c",
         BOOT, "boot", str(mount_point)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
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
        unshare.wait(10)
