"""The process back-end: the agent runs under agent/update/process_supervisor.py, which
writes the agent's pid to a file and starts it again from ``current`` whenever it exits
(systemd's ``Restart=always``, for a machine without systemd and for the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.update.service import ServiceError


class SupervisedProcess:
    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file

    def restart(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return  # no agent running: the supervisor starts the new one by itself
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def launch_guard(self, verb: str, config: Path) -> int:
        """The guard of this very environment, in a session of its own."""
        argv = [sys.executable, "-m", "agent.update", verb, "-c", str(config)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            proc = subprocess.Popen(argv, start_new_session=True, env=env, cwd="/",
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, close_fds=True)
        except OSError as exc:
            raise ServiceError(f"starting {argv[0]}: {exc}") from None
        return proc.pid
