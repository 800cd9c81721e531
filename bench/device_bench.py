"""Device benchmark: cold start to READY=1 and idle memory of the real agent.

Run:  .venv/bin/python bench/device_bench.py [--runs 5] [--idle 5] [--json]

Starts the real ``edge-agent run`` as systemd would (a Unix datagram notify socket as
NOTIFY_SOCKET, WATCHDOG_USEC set, metrics endpoint on), with the demo device config and a
fresh store, and measures:
  - cold start: process spawn to the READY=1 datagram (median of --runs),
  - idle RSS (and USS) after --idle seconds of running with the watchdog pinging,
next to the baseline measured in the same run: a bare ``python -c pass`` (spawn to exit)
and the RSS of an idle bare interpreter. Targets: READY ≤ 2 s, idle RSS ≤ 80 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

VENV_BIN = Path(sys.executable).parent
TARGET_READY_S = 2.0
TARGET_RSS_MB = 80.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _notify_socket(folder: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(folder / "notify"))
    return s


def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with {proc.returncode} before READY=1")
        sock.settimeout(0.05)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if "READY=1" in data.decode().splitlines():
            return time.monotonic()
    raise TimeoutError("no READY=1 within the timeout")


def _rss(pid: int) -> tuple[float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 1e6, info.uss / 1e6


def agent_run(workdir: Path, idle_s: float, port: int) -> dict[str, float]:
    data = workdir / "device"
    if data.exists():
        shutil.rmtree(data)
    subprocess.run([str(VENV_BIN / "edge-agent"), "demo-config", "--out", str(data)],
                   check=True, capture_output=True)
    sock = _notify_socket(workdir)
    env = {**os.environ, "NOTIFY_SOCKET": str(workdir / "notify"), "WATCHDOG_USEC": "10000000",
           "EDGE_AGENT_METRICS": f"127.0.0.1:{port}", "EDGE_AGENT_RESERVE_MB": "0"}
    try:
        started = time.monotonic()
        proc = subprocess.Popen([str(VENV_BIN / "edge-agent"), "run", "-c",
                                 str(data / "agent.toml")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready = _wait_ready(sock, proc, 30) - started
            time.sleep(idle_s)
            rss, uss = _rss(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    finally:
        sock.close()
        (workdir / "notify").unlink(missing_ok=True)
    return {"ready_s": ready, "rss_mb": rss, "uss_mb": uss}


def baseline(idle_s: float) -> dict[str, float]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    start_s = time.monotonic() - started
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(min(idle_s, 1.0))
        rss, uss = _rss(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return {"start_s": start_s, "rss_mb": rss, "uss_mb": uss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-", dir="/tmp"))
    try:
        base = [baseline(args.idle) for _ in range(args.runs)]
        runs = [agent_run(workdir, args.idle, free_port()) for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    result: dict[str, Any] = {
        "runs": args.runs, "idle_s": args.idle, "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "baseline": {"start_s": med(base, "start_s"), "rss_mb": med(base, "rss_mb"),
                     "uss_mb": med(base, "uss_mb")},
        "agent": {"ready_s": med(runs, "ready_s"), "ready_max_s": max(r["ready_s"] for r in runs),
                  "rss_mb": med(runs, "rss_mb"), "uss_mb": med(runs, "uss_mb")},
    }
    result["meets_targets"] = (result["agent"]["ready_max_s"] <= TARGET_READY_S
                               and result["agent"]["rss_mb"] <= TARGET_RSS_MB)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"edge-agent on this machine ({result['cpus']} CPUs, Python "
                  f"{result['python']}, median of {args.runs})")
    for col in ("", "start (s)", "RSS (MB)", "USS (MB)", "target"):
        table.add_column(col)
    b, a = result["baseline"], result["agent"]
    table.add_row("python -c pass (baseline)", f"{b['start_s']:.3f}", f"{b['rss_mb']:.1f}",
                  f"{b['uss_mb']:.1f}", "")
    table.add_row("edge-agent run → READY=1", f"{a['ready_s']:.3f} (max {a['ready_max_s']:.3f})",
                  f"{a['rss_mb']:.1f}", f"{a['uss_mb']:.1f}",
                  f"≤ {TARGET_READY_S} s, ≤ {TARGET_RSS_MB:.0f} MB")
    Console().print(table)
    Console().print(f"start ×{a['ready_s'] / b['start_s']:.1f} the bare interpreter, "
                    f"RSS +{a['rss_mb'] - b['rss_mb']:.1f} MB; targets "
                    f"{'met' if result['meets_targets'] else 'NOT met'}")


if __name__ == "__main__":
    main()
