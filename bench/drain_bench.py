"""Offline backlog drain: 100,000 events queued in an agent's outbox while the network was
down, then delivered into the bridge DB — time and events/s, on SQLite and PostgreSQL.

    .venv/bin/python bench/drain_bench.py [--events 100000] [--only sqlite|postgresql]
        [--pg "host=127.0.0.1 port=5432 user=postgres"] [--json]

Real pieces only: its own Mosquitto on a free loopback port, a ``cloud-bridge serve``
process on a fresh database, and the agent's own outbox and MQTT link (``sync.agent_link``)
with the shipped defaults (batches of 200, 4 batches in flight, synchronous=FULL). The
clock runs from the link's start to the moment the agent holds the ack of the last event
and the bridge DB holds every one of them exactly once.

Baseline, measured in the same run: the same number of events in the same batches sent
through the same broker to a subscriber that only counts them (transport alone, no
database, no acks), so the ratio says what the durability costs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pg_scratch import pg_database  # noqa: E402 - bench/ is on sys.path as a script

from agent.config import parse_config  # noqa: E402
from agent.daemon import AgentDaemon  # noqa: E402
from agent.sync_link import build_agent_link  # noqa: E402
from cloud_bridge.db_schema import events, make_engine  # noqa: E402
from cloud_bridge.tenant_keys import create_tenant  # noqa: E402
from tests.mqtt_broker import Broker  # noqa: E402

console = Console(stderr=True)
TENANT = "bench"


def agent_config(workdir: Path, keys: Any, port: int) -> Any:
    hmac = workdir / "hmac.key"
    shutil.copyfile(keys.hmac_key_path, hmac)
    hmac.chmod(0o600)
    return parse_config({
        "tenant": TENANT, "device": "gate-01", "site": "s1",
        "data_dir": str(workdir / "agent"),
        "keys": {"credential_hmac_key": f"file:{hmac}",
                 "tenant_public_key": "base64:" + keys.public_key_b64},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "gates": [{"id": "g1", "url": "sim:"}],
        "readers": [{"id": "entry", "url": "sim:", "gate": "g1", "direction": "in"}],
    })


def decision_data(i: int) -> dict[str, Any]:
    return {"reader": "entry", "gate": "g1", "zone": "main", "direction": "in",
            "read_kind": "uid", "granted": i % 5 != 0,
            "reason": "granted" if i % 5 else "unknown_credential",
            "credential": f"m{i % 5000:07d}-c1", "credential_ref": base64.b32encode(
                i.to_bytes(10, "big")).decode()[:16], "member": f"m{i % 5000:07d}",
            "entitlement": f"m{i % 5000:07d}-e1", "consumed": False, "entries_left": None}


def fill_outbox(daemon: AgentDaemon, count: int) -> None:
    now = datetime.now(UTC)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("queueing events offline", total=count)
        for start in range(0, count, 1000):
            with daemon.store.transaction() as conn:
                for i in range(start, min(start + 1000, count)):
                    daemon.outbox.append(conn, "access.decision", decision_data(i), now)
            progress.advance(task, min(1000, count - start))


def start_bridge(db_url: str, keys_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url, "--mqtt-port",
             str(port), "--http-port", "0", "--keys-dir", str(keys_dir), "--stats-interval",
             "5"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while "bridge running" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"bridge did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def drain_once(db_url: str, count: int, workdir: Path) -> dict[str, float]:
    keys = create_tenant(workdir / "keys", TENANT)
    broker = Broker(workdir / "broker", extra_config="max_queued_messages 1000000").start()
    bridge = start_bridge(db_url, workdir / "keys", broker.port, workdir / "bridge.log")
    daemon = AgentDaemon(agent_config(workdir, keys, broker.port))
    daemon.start()
    try:
        fill_outbox(daemon, count)
        link = build_agent_link(daemon, daemon.config.mqtt, state_interval_s=3600)  # type: ignore[arg-type]
        engine = make_engine(db_url, create=False)
        t0 = time.perf_counter()
        link.start()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("draining into the bridge", total=count)
            while True:
                depth = daemon.outbox.depth()
                progress.update(task, completed=count - depth)
                if depth == 0:
                    break
                time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        link.stop()
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
            distinct = conn.execute(select(func.count(func.distinct(events.c.seq)))).scalar_one()
        engine.dispose()
        if stored != count or distinct != count:
            raise RuntimeError(f"bridge holds {stored} rows ({distinct} distinct seqs), "
                               f"expected {count}")
        return {"seconds": elapsed, "events_per_s": count / elapsed}
    finally:
        daemon.stop()
        bridge.terminate()
        bridge.wait(10)
        broker.stop()


def transport_baseline(count: int, batch: int, workdir: Path) -> dict[str, float]:
    """The same payload volume through the broker to a counting subscriber (QoS 1)."""
    broker = Broker(workdir / "broker-base", extra_config="max_queued_messages 1000000").start()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    payloads = [json.dumps({"v": 1, "tenant": TENANT, "device": "gate-01", "events": [
        {"id": str(uuid.uuid4()), "tenant": TENANT, "device": "gate-01", "seq": i + 1,
         "ts": now, "type": "access.decision", "data": decision_data(i)}
        for i in range(s, min(s + batch, count))]}).encode() for s in range(0, count, batch)]
    got = threading.Event()
    received = [0]

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] == len(payloads):
            got.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="count", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("bench/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(4)  # the agent keeps 4 batches in flight too
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    for p in payloads:
        pub.publish("bench/events", p, qos=1)
    if not got.wait(300):
        raise RuntimeError("baseline subscriber did not receive every batch")
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    broker.stop()
    return {"seconds": elapsed, "events_per_s": count / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--pg", default=os.environ.get(
        "BRIDGE_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp:
        results["baseline (broker only)"] = transport_baseline(args.events, 200, Path(tmp))
    for backend in ("sqlite", "postgresql"):
        if args.only and backend != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp:
            drop = None
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'bridge.sqlite3'}"
            else:
                url, drop = pg_database(args.pg)
            try:
                results[backend] = drain_once(url, args.events, Path(tmp))
            finally:
                if drop is not None:
                    drop()
    base = results["baseline (broker only)"]["seconds"]
    if args.json:
        print(json.dumps({"events": args.events, "results": results}))
        return
    table = Table(title=f"offline backlog drain, {args.events:,} events, target ≤ 30 s "
                  f"({os.cpu_count()} cores shared by broker, bridge, database and agent)")
    for col in ("path", "seconds", "events/s", "× baseline time", "target"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, r in results.items():
        target = "" if name.startswith("baseline") else ("met" if r["seconds"] <= 30
                                                         else "MISSED")
        table.add_row(name, f"{r['seconds']:.1f}", f"{r['events_per_s']:,.0f}",
                      f"{r['seconds'] / base:.2f}", target)
    Console().print(table)


if __name__ == "__main__":
    main()
