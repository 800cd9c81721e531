"""Ingest rate of the cloud bridge with one and with two processes, on SQLite and on
PostgreSQL: events/s from the first published batch to the last ack.

    .venv/bin/python bench/bridge_ingest_bench.py [--events 60000] [--devices 60]
        [--batch 100] [--pg "host=127.0.0.1 port=5432 user=postgres"] [--only sqlite]

Starts its own Mosquitto on a free loopback port, a fresh database per run (a temporary
SQLite file; a temporary PostgreSQL database, dropped afterwards) and the bridges as
``cloud-bridge serve`` processes. The load generator publishes pre-built batches
(QoS 1) for many simulated devices, as fast as the broker takes them, and waits for
every device's ack to reach its last seq.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pg_scratch import pg_database  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000000\nmax_inflight_messages 1000\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_batches(tenant: str, devices: int, events: int, batch: int) -> list[tuple[str, bytes]]:
    per_device = events // devices
    out: list[tuple[str, bytes]] = []
    for lo in range(1, per_device + 1, batch):
        for d in range(devices):
            device = f"dev-{d:04d}"
            hi = min(per_device, lo + batch - 1)
            evs = [{"id": str(uuid.uuid4()), "tenant": tenant, "device": device, "seq": s,
                    "ts": "2026-11-24T19:06:38.195Z", "type": "access.decision",
                    "data": {"reader": "entry", "gate": "g1", "zone": "main", "direction": "in",
                             "read_kind": "uid", "granted": True, "reason": "granted",
                             "credential": "c1", "credential_ref": "0123456789abcdef",
                             "member": f"m{s}", "entitlement": None, "consumed": False,
                             "entries_left": None}}
                   for s in range(lo, hi + 1)]
            out.append((f"es/v1/{tenant}/{device}/events", json.dumps(
                {"v": 1, "tenant": tenant, "device": device, "events": evs},
                separators=(",", ":")).encode()))
    return out


def run_once(db_url: str, bridges: int, events: int, devices: int, batch: int,
             workdir: Path) -> tuple[float, float]:
    """(events/s, events per CPU-second of the bridge processes)."""
    broker, port = start_broker(workdir)
    tenant = "bench"
    procs = []
    try:
        for i in range(bridges):
            log = open(workdir / f"bridge-{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url,
                 "--mqtt-port", str(port), "--http-port", "0",
                 "--keys-dir", str(workdir / "keys"), "--client-id", f"bench-bridge-{i}",
                 "--log-level", "warning"],
                cwd=ROOT, stdout=log, stderr=log))
        payloads = build_batches(tenant, devices, events, batch)
        per_device = events // devices
        total = per_device * devices
        acked: dict[str, int] = {}
        done = threading.Event()
        lock = threading.Lock()

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            device = msg.topic.split("/")[3]
            value = json.loads(msg.payload)["acked_seq"]
            with lock:
                if value > acked.get(device, 0):
                    acked[device] = value
                if len(acked) == devices and all(v == per_device for v in acked.values()):
                    done.set()

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-loadgen",
                             protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        client.subscribe(f"es/v1/{tenant}/+/ack", qos=1)
        time.sleep(3.0)  # bridges: start, create the schema, connect, subscribe
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a bridge exited: see {workdir}")
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        start = time.perf_counter()
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
        if not done.wait(600):
            raise TimeoutError(f"only {sum(acked.values())} of {total} events acked")
        elapsed = time.perf_counter() - start
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        client.loop_stop()
        client.disconnect()
        return total / elapsed, total / cpu
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.terminate()
        broker.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--devices", type=int, default=60)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--pg", default=os.environ.get(
        "BRIDGE_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres"))
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args()

    from cloud_bridge.tenant_keys import create_tenant

    rows = []
    for backend in ("sqlite", "postgresql"):
        if args.only and backend != args.only:
            continue
        rates, per_cpu = [], []
        for bridges in (1, 2):
            with tempfile.TemporaryDirectory(prefix="bridge-bench-") as tmp:
                workdir = Path(tmp)
                create_tenant(workdir / "keys", "bench")
                drop = None
                if backend == "sqlite":
                    url = f"sqlite:///{workdir / 'bridge.sqlite3'}"
                else:
                    url, drop = pg_database(args.pg)
                try:
                    rate, eff = run_once(url, bridges, args.events, args.devices, args.batch,
                                    workdir)
                finally:
                    if drop is not None:
                        drop()  # type: ignore[operator]
            rates.append(rate)
            per_cpu.append(eff)
            print(f"  {backend:10s} {bridges} bridge(s): {rate:9.0f} events/s, "
                  f"{eff:9.0f} events per bridge CPU-second", flush=True)
        rows.append((backend, rates[0], rates[1], per_cpu[0], per_cpu[1]))

    print(f"\nbridge ingest, {args.events} events from {args.devices} devices in batches of "
          f"{args.batch}, {os.cpu_count()} CPU cores shared by broker, load generator, "
          "bridges and database")
    print(f"{'database':12s} {'1 bridge ev/s':>14s} {'2 bridges ev/s':>15s} {'ratio':>6s} "
          f"{'ev/CPU-s (1)':>13s} {'ev/CPU-s (2)':>13s}")
    for backend, one, two, eff1, eff2 in rows:
        print(f"{backend:12s} {one:14.0f} {two:15.0f} {two / one:6.2f} {eff1:13.0f} "
              f"{eff2:13.0f}")


if __name__ == "__main__":
    main()
