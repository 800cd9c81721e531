"""Measure the installed agent on this machine: demo config, cold start, taps.

Run:  VENV/bin/python scripts/arm64_guest_measure.py --workdir DIR [--taps 20] [--members 200]

Written for scripts/arm64_emulation.sh, which runs it inside a Debian arm64 guest booted
under qemu-system-aarch64, but it measures whatever machine it runs on with the
``edge-agent`` and ``edge-sim`` next to the interpreter that runs it:
  - ``edge-agent demo-config --kind gate`` (wall time),
  - cold start: ``edge-agent run`` spawned as systemd would (NOTIFY_SOCKET) to READY=1,
  - ``edge-sim members`` loading synthetic members, then one ``edge-sim tap`` as a
    technician types it (wall time, interpreter start included),
  - --taps taps at the entry reader over the control socket, by members with a plain
    membership (granted at any hour): the decision latency the
    agent itself reports (read seen to decision, ``latency_ms`` of its watch stream) and
    the round trip the client sees.
Prints one JSON object on stdout; exits 1 with a one-line reason when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.control_client import ControlClient
from simulators.member_generator import KINDS, uid_for

BIN = Path(sys.executable).parent


def _run(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          check=False, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({done.returncode}): "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    return time.monotonic() - started, done.stdout


def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"edge-agent run exited with {proc.returncode} before READY=1")
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if "READY=1" in data.decode().splitlines():
            return time.monotonic()
    raise SystemExit(f"edge-agent run sent no READY=1 within {timeout:.0f} s")


def _start_agent(config: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], float]:
    notify = workdir / "notify"
    notify.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "60000000",
               "EDGE_AGENT_RESERVE_MB": "0"}
        started = time.monotonic()
        proc = subprocess.Popen([str(BIN / "edge-agent"), "run", "-c", str(config)], env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=(workdir / "agent.log").open("wb"))
        try:
            ready = _wait_ready(sock, proc, 600) - started
        except SystemExit:
            proc.kill()
            proc.wait()
            raise
        finally:
            notify.unlink(missing_ok=True)
    return proc, ready


def _watch(client: ControlClient, seen: list[dict[str, Any]], want: int,
           ready: threading.Event) -> None:
    for item in client.watch():
        if item.get("watching"):
            ready.set()
        elif item.get("kind") == "decision":
            seen.append(item)
            if len(seen) >= want:
                return


def plain_members(members: int, n: int) -> list[int]:
    """The first ``n`` synthetic members (from 2; 1 is the CLI's tap) whose entitlement is a
    plain membership: off-peak windows and day tickets would make the granted count
    depend on the hour and the date the measurement runs at."""
    return [i for i in range(2, members + 1) if KINDS[i % len(KINDS)] == "membership"][:n]


def _taps(client: ControlClient, who: list[int]) -> tuple[list[float], list[dict[str, Any]]]:
    n = len(who)
    decisions: list[dict[str, Any]] = []
    watching = threading.Event()
    thread = threading.Thread(target=_watch, args=(client, decisions, n, watching), daemon=True)
    thread.start()
    if not watching.wait(60):
        raise SystemExit("the agent's watch stream did not start within 60 s")
    round_trips = []
    for member in who:
        started = time.perf_counter()
        reply = client.request("present", reader="entry", kind="uid", value=uid_for(member))
        round_trips.append((time.perf_counter() - started) * 1000)
        if not reply.get("ok"):
            raise SystemExit(f"the agent refused a tap: {reply.get('error')}")
    thread.join(60)
    if len(decisions) < n:
        raise SystemExit(f"the watch stream showed {len(decisions)} of {n} decisions")
    return round_trips, decisions


def measure(workdir: Path, taps: int, members: int) -> dict[str, Any]:
    device = workdir / "device"
    config_s, out = _run("edge-agent", "demo-config", "--kind", "gate", "--out", str(device))
    config = Path(out.strip().splitlines()[-1])
    proc, ready_s = _start_agent(config, workdir)
    try:
        members_s, _ = _run("edge-sim", "members", "--count", str(members), "--json",
                            "-c", str(config))
        cli_tap_s, tap_out = _run("edge-sim", "tap", "--member", "1", "--json",
                                  "-c", str(config))
        round_trips, decisions = _taps(_client_for(config), plain_members(members, taps))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    latencies = [float(d["latency_ms"]) for d in decisions]
    return {
        "machine": platform.machine(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "demo_config_s": round(config_s, 3),
        "cold_start_ready_s": round(ready_s, 3), "members_loaded": members,
        "members_load_s": round(members_s, 3), "cli_tap_s": round(cli_tap_s, 3),
        "cli_tap_granted": json.loads(tap_out)["granted"], "taps": taps,
        "granted": sum(1 for d in decisions if d["granted"]),
        "decision_latency_ms": {"median": round(statistics.median(latencies), 3),
                                "max": round(max(latencies), 3)},
        "round_trip_ms": {"median": round(statistics.median(round_trips), 3),
                          "max": round(max(round_trips), 3)},
        "agent_exit": proc.returncode, "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def _client_for(config: Path) -> ControlClient:
    from agent.config import load_config

    return ControlClient(load_config(config).socket_path, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="an empty scratch folder")
    parser.add_argument("--taps", type=int, default=20)
    parser.add_argument("--members", type=int, default=200)
    args = parser.parse_args()
    if args.taps < 1 or len(plain_members(args.members, args.taps)) < args.taps:
        raise SystemExit("--taps must be ≥ 1 and --members ≥ 5 × taps (every fifth "
                         "synthetic member has a plain membership; those are tapped)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(measure(args.workdir, args.taps, args.members)))


if __name__ == "__main__":
    main()
