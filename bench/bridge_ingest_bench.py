"""Ingest rate and cost of the cloud bridge with 1, 2 and 3 processes, on SQLite and on
PostgreSQL: events/s from the first published batch to the last ack, and the bridge
processes' CPU-seconds per 100,000 events (psutil cpu_times, user + system), in total and
per process; the cost per event must not grow with the number of bridges (issue 20).

    .venv/bin/python bench/bridge_ingest_bench.py [--events 60000] [--devices 60]
        [--batch 100] [--bridges 1,2,3] [--pg "host=127.0.0.1 port=5432 user=postgres"]
        [--only sqlite] [--broker mosquitto|nats|mosquitto,nats]

Starts its own Mosquitto on a free loopback port (or, with --broker nats, a 3-node NATS
JetStream cluster, tests/cluster/nats_cluster.py), a fresh database per run (a temporary
SQLite file; a temporary PostgreSQL database, dropped afterwards) and the bridges as
``cloud-bridge serve`` processes. The load generator publishes pre-built batches
(QoS 1) for many simulated devices, as fast as the broker takes them, and waits for
every device's ack to reach its last seq.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from pg_scratch import pg_database  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))  # the NATS cluster harness lives in tests/cluster
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


@dataclass(frozen=True)
class Run:
    rate: float  # events/s, first publish to last ack
    events: int
    cpu: list[float]  # CPU-seconds of each bridge process during the run
    stored: list[int]  # events each bridge process stored (its closing stats line)
    broker_cpu: float  # CPU-seconds of the broker process(es) during the run
    pg_bytes_per_event: float | None = None  # events table + indexes / rows (PostgreSQL)
    transactions: int = 0  # database transactions of all bridges (closing stats lines)

    def per_100k(self) -> float:
        """Bridge CPU-seconds per 100,000 events (all processes together)."""
        return sum(self.cpu) / self.events * 100_000

    def broker_per_100k(self) -> float:
        return self.broker_cpu / self.events * 100_000


def bridge_cmd(db_url: str, workdir: Path, i: int, broker: dict[str, object]) -> list[str]:
    link = (["--nats", str(broker["urls"]), "--nats-ack-wait", "30"] if broker["kind"] == "nats"
            else ["--mqtt-port", str(broker["port"])])
    return [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url, *link,
            "--http-port", "0", "--keys-dir", str(workdir / "keys"),
            "--client-id", f"bench-bridge-{i}", "--stats-interval", "3600"]


def mqtt_load(port: int, tenant: str, payloads: list[tuple[str, bytes]], devices: int,
              per_device: int) -> float:
    """Publish every batch over MQTT, wait for every device's last ack; seconds."""
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
    time.sleep(0.5)
    start = time.perf_counter()
    for topic, payload in payloads:
        client.publish(topic, payload, qos=1)
    if not done.wait(600):
        raise TimeoutError(f"only {sum(acked.values())} events acked")
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return elapsed


def nats_load(urls: str, tenant: str, payloads: list[tuple[str, bytes]], devices: int,
              per_device: int) -> float:
    """Put every batch into the uplink stream (JetStream publish, acknowledged by the
    cluster: what the MQTT listener does for a device), wait for every last ack."""
    import asyncio

    import nats

    from tests.cluster.nats_cluster import BRIDGE_PASSWORD, BRIDGE_USER

    async def main() -> float:
        nc = await nats.connect(urls.split(","), user=BRIDGE_USER, password=BRIDGE_PASSWORD)
        js = nc.jetstream(timeout=30)
        acked: dict[str, int] = {}
        done = asyncio.Event()

        async def on_ack(msg: object) -> None:
            device = msg.subject.split(".")[3]  # type: ignore[attr-defined]
            value = json.loads(msg.data)["acked_seq"]  # type: ignore[attr-defined]
            acked[device] = max(acked.get(device, 0), value)
            if len(acked) == devices and all(v == per_device for v in acked.values()):
                done.set()

        await nc.subscribe(f"es.v1.{tenant}.*.ack", cb=on_ack)
        start = time.perf_counter()
        window: list[asyncio.Future[object]] = []
        for topic, payload in payloads:
            window.append(asyncio.ensure_future(js.publish(topic.replace("/", "."), payload)))
            if len(window) >= 64:
                await asyncio.gather(*window)
                window.clear()
        await asyncio.gather(*window)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - start
        await nc.close()
        return elapsed

    return asyncio.run(main())


def run_once(db_url: str, bridges: int, events: int, devices: int, batch: int,
             workdir: Path, broker_kind: str) -> Run:
    tenant = "bench"
    procs: list[subprocess.Popen[bytes]] = []
    broker: dict[str, object] = {"kind": broker_kind}
    stop_broker: list[object] = []
    env = dict(os.environ)
    if broker_kind == "nats":
        from tests.cluster.nats_cluster import BRIDGE_PASSWORD, BRIDGE_USER, NatsCluster

        cluster = NatsCluster(workdir / "nats", []).start()
        stop_broker.append(cluster.stop)
        broker_pids = [n.proc.pid for n in cluster.nodes if n.proc is not None]
        broker["urls"] = cluster.urls
        env.update(BRIDGE_NATS_USER=BRIDGE_USER, BRIDGE_NATS_PASSWORD=BRIDGE_PASSWORD)
    else:
        proc, port = start_broker(workdir)
        stop_broker.append(lambda: (proc.terminate(), proc.wait(10)))
        broker["port"] = port
        broker_pids = [proc.pid]
    logs = [workdir / f"bridge-{i}.log" for i in range(bridges)]
    try:
        for i, log in enumerate(logs):
            with open(log, "wb") as fh:
                procs.append(subprocess.Popen(bridge_cmd(db_url, workdir, i, broker),
                                              cwd=ROOT, stdout=fh, stderr=fh, env=env))
        payloads = build_batches(tenant, devices, events, batch)
        per_device = events // devices
        deadline = time.monotonic() + 60
        while not all(("consuming " if broker_kind == "nats" else "connected to")
                      in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a bridge did not come up: see {workdir}")
            time.sleep(0.1)
        handles = [psutil.Process(p.pid) for p in procs]
        before = [sum(h.cpu_times()[:2]) for h in handles]
        brokers = [psutil.Process(pid) for pid in broker_pids]
        broker_before = sum(sum(b.cpu_times()[:2]) for b in brokers)
        if broker_kind == "nats":
            elapsed = nats_load(str(broker["urls"]), tenant, payloads, devices, per_device)
        else:
            elapsed = mqtt_load(int(str(broker["port"])), tenant, payloads, devices,
                                per_device)
        cpu = [sum(h.cpu_times()[:2]) - b for h, b in zip(handles, before, strict=True)]
        broker_cpu = sum(sum(b.cpu_times()[:2]) for b in brokers) - broker_before
        total = per_device * devices
        pg_bytes = pg_bytes_per_event(db_url)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for stop in stop_broker:
            stop()  # type: ignore[operator]
    stored = [stored_by(log) for log in logs]
    return Run(total / elapsed, total, cpu, stored, broker_cpu, pg_bytes,
               sum(closing_stat(log, "transactions") for log in logs))


def pg_bytes_per_event(db_url: str) -> float | None:
    """Bytes on disk per stored event in PostgreSQL (table, TOAST and indexes)."""
    if not db_url.startswith("postgresql"):
        return None
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute("SELECT pg_total_relation_size('events'), count(*) FROM events"
                           ).fetchone()
    assert row is not None
    return float(row[0]) / max(int(row[1]), 1)


def stored_by(log: Path) -> int:
    return closing_stat(log, "events_stored")


def closing_stat(log: Path, name: str) -> int:
    found = re.findall(rf"stopping; stats .*\b{name}=(\d+)", log.read_text(errors="replace"))
    return int(found[-1]) if found else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--devices", type=int, default=60)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--bridges", default="1,2,3", help="bridge process counts to run")
    ap.add_argument("--pg", default=os.environ.get(
        "BRIDGE_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres"))
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--broker", default="mosquitto", help="mosquitto, nats or mosquitto,nats "
                    "(nats: a 3-node JetStream cluster on loopback, docs/scale.md)")
    args = ap.parse_args()
    counts = [int(n) for n in args.bridges.split(",")]

    from cloud_bridge.tenant_keys import create_tenant

    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} (1/5/15 min)", flush=True)
    table = []
    for broker_kind in args.broker.split(","):
        for backend in ("sqlite", "postgresql"):
            if args.only and backend != args.only:
                continue
            runs: list[Run] = []
            for bridges in counts:
                with tempfile.TemporaryDirectory(prefix="bridge-bench-") as tmp:
                    workdir = Path(tmp)
                    create_tenant(workdir / "keys", "bench")
                    drop = None
                    if backend == "sqlite":
                        url = f"sqlite:///{workdir / 'bridge.sqlite3'}"
                    else:
                        url, drop = pg_database(args.pg)
                    try:
                        run = run_once(url, bridges, args.events, args.devices, args.batch,
                                       workdir, broker_kind)
                    finally:
                        if drop is not None:
                            drop()
                runs.append(run)
                each = ", ".join(f"{c:.1f} s/{n} ev" for c, n in
                                 zip(run.cpu, run.stored, strict=True))
                print(f"  {broker_kind:9s} {backend:10s} {bridges} bridge(s): "
                      f"{run.rate:7.0f} events/s, {run.per_100k():6.1f} bridge CPU-s per "
                      f"100k events (per process: {each}), broker "
                      f"{run.broker_per_100k():.1f} CPU-s/100k", flush=True)
            table.append((broker_kind, backend, runs))

    print(f"\nbridge ingest, {args.events} events from {args.devices} devices in batches of "
          f"{args.batch}, {os.cpu_count()} CPU cores shared by broker, load generator, "
          f"bridges and database; load after: {os.getloadavg()[0]:.2f}")
    print(f"{'broker':10s} {'database':11s} {'bridges':>7s} {'ev/s':>7s} {'CPU-s/100k':>10s} "
          f"{'vs 1':>6s} {'broker':>7s} {'PG B/ev':>8s} {'ev/tx':>6s}  per process CPU-s / "
          "100k of its events")
    for broker_kind, backend, runs in table:
        base = runs[0].per_100k()
        for n, run in zip(counts, runs, strict=True):
            mine = " ".join(f"{c / k * 100_000:5.1f}" if k else "  n/a"
                            for c, k in zip(run.cpu, run.stored, strict=True))
            pg = f"{run.pg_bytes_per_event:8.0f}" if run.pg_bytes_per_event else "       -"
            print(f"{broker_kind:10s} {backend:11s} {n:7d} {run.rate:7.0f} "
                  f"{run.per_100k():10.1f} {run.per_100k() / base:6.2f} "
                  f"{run.broker_per_100k():7.1f} {pg} "
                  f"{run.events / max(run.transactions, 1):6.0f}  {mine}")


if __name__ == "__main__":
    main()
