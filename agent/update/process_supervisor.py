"""Keep the agent running from ``<root>/current`` without systemd:

    python -m agent.update.process_supervisor --root /opt/edge-agent --pid-file agent.pid \\
        -- run -c /etc/edge-agent/agent.toml

Each start resolves ``current`` first and runs that environment's interpreter, so a
restart after a switch starts the new version and a running agent never loads modules
from an environment switched in under it. SIGTERM stops the agent and the supervisor.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

RESTART_DELAY_S = 0.5


def _argv(root: Path, agent_args: list[str]) -> list[str] | None:
    current = root / "current"
    if not current.exists():
        return None
    return [str(current.resolve() / "bin" / "python"), "-m", "agent", *agent_args]


def supervise(root: Path, pid_file: Path, agent_args: list[str], log: Path | None) -> int:
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    while not stopping:
        argv = _argv(root, agent_args)
        if argv is None:
            print(f"{root}/current is missing: nothing to start", file=sys.stderr)
            return 1
        out = open(log, "ab") if log else None  # noqa: SIM115 - closed below
        try:
            # cwd: the update root, so no folder with another copy of the code shadows it
            child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=root)
            pid_file.write_text(f"{child.pid}\n")
            child.wait()
        finally:
            if out is not None:
                out.close()
        if not stopping:
            time.sleep(RESTART_DELAY_S)
    pid_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.update.process_supervisor")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("agent_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    agent_args = [a for a in args.agent_args if a != "--"] or ["run"]
    return supervise(args.root, args.pid_file, agent_args, args.log)


if __name__ == "__main__":
    sys.exit(main())
