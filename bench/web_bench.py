"""Web modules under load: the live-entries page and member search with 50 concurrent
clients against 100,000 members and 1,000,000 events, next to a baseline route
(/healthz: the same server, app and client with no database work) measured in the same
run. Reports p50/p95/p99 latency and requests/s per route.

    .venv/bin/python bench/web_bench.py [--members 100000] [--events 1000000]
        [--clients 50] [--seconds 15] [--pg "host=127.0.0.1 port=5432 user=postgres"]
        [--only sqlite|postgresql] [--servers 1]

A fresh database per run (a temporary SQLite file; a temporary PostgreSQL database,
dropped afterwards), bulk-loaded with SQLAlchemy executemany (SQLite) or COPY
(PostgreSQL). The bridge's served app (Bridge.app(): JSON API + web pages, MQTT not
started: these pages only read) runs in its own uvicorn process; the load generator is
httpx in this process, logged in as a reception user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pg_scratch import pg_database  # bench/ is on sys.path when run as a script
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud_bridge.db_schema import (  # noqa: E402
    devices,
    events,
    is_sqlite,
    make_engine,
    members,
    write_tx,
)
from cloud_bridge.web.auth import WebAuth  # noqa: E402
from cloud_bridge.web.web_app import ensure_web_schema  # noqa: E402

console = Console()
TENANT = "benchgym"
PASSWORD = "bench password 123"
SURNAMES = ("Novak", "Horvat", "Kovačič", "Krajnc", "Zupančič", "Kovač", "Potočnik",
            "Mlakar", "Kos", "Vidmar", "Golob", "Turk", "Božič", "Kralj", "Korošec", "Zupan",
            "Bizjak", "Hribar", "Kotnik", "Kavčič", "Rozman", "Kastelic", "Oblak", "Petek",
            "Žagar", "Hočevar", "Kolar", "Košir", "Koren", "Klemenčič")
FIRST = ("Ana", "Luka", "Maja", "Jan", "Nika", "Žiga", "Eva", "Matej", "Špela", "Tilen",
         "Urša", "Rok", "Petra", "Nejc", "Katja", "Gašper", "Tina", "Blaž", "Mojca", "Črt")
REASONS_DENIED = ("expired", "unknown_credential", "no_entries_left", "outside_time_window",
                  "anti_passback", "frozen")
DEVICES = [("gate-a1", "ljubljana"), ("gate-a2", "ljubljana"), ("gate-a3", "ljubljana"),
           ("gate-b1", "maribor"), ("gate-b2", "maribor"), ("gate-b3", "maribor")]


def progress() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=console)


def member_rows(n: int) -> Iterator[dict[str, Any]]:
    rnd = random.Random(7)
    now = int(time.time() * 1000)
    for i in range(n):
        last = rnd.choice(SURNAMES) + ("" if i % 3 else rnd.choice(("ar", "ec", "ič", "")))
        first = rnd.choice(FIRST)
        yield {"tenant": TENANT, "id": f"m{i:07d}", "first_name": first, "last_name": last,
               "email": f"{first.lower()}.{i}@example.si", "phone": None,
               "waiver_signed_on": None, "blocked": False, "pin_hash": None,
               "created_at": now, "updated_at": now}


def event_rows(n: int, members_n: int) -> Iterator[dict[str, Any]]:
    """n access events over the last 30 days (ending now), six gates in two sites."""
    rnd = random.Random(11)
    end = datetime.now(UTC)
    start = end - timedelta(days=30)
    step = (end - start) / n
    seqs = dict.fromkeys((d for d, _ in DEVICES), 0)
    for i in range(n):
        device = DEVICES[i % len(DEVICES)][0]
        seqs[device] += 1
        moment = start + step * i
        ts = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        granted = rnd.random() < 0.85
        member = f"m{rnd.randrange(members_n):07d}"
        if rnd.random() < 0.01:
            kind, data = "access.remote_open", {"gate": "g1", "direction": "in",
                                                "request_id": str(uuid.uuid4())}
        else:
            kind = "access.decision"
            data = {"reader": "entry", "gate": "g1", "zone": "main",
                    "direction": "in" if rnd.random() < 0.55 else "out",
                    "read_kind": "card", "granted": granted,
                    "reason": "granted" if granted else rnd.choice(REASONS_DENIED),
                    "credential": None, "member": member, "entitlement": None,
                    "consumed": False, "entries_left": None}
        yield {"tenant": TENANT, "device": device, "seq": seqs[device],
               "id": str(uuid.UUID(int=rnd.getrandbits(128))), "ts": ts, "type": kind,
               "data": data, "received_at": int(moment.timestamp() * 1000) + 150}


def chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load(db_url: str, members_n: int, events_n: int) -> None:
    engine = make_engine(db_url)
    ensure_web_schema(engine)
    with progress() as bar:
        task = bar.add_task("members", total=members_n)
        for batch in chunks(member_rows(members_n), 10_000):
            with write_tx(engine) as conn:
                conn.execute(members.insert(), batch)
            bar.advance(task, len(batch))
        task = bar.add_task("events", total=events_n)
        if is_sqlite(engine):
            for batch in chunks(event_rows(events_n, members_n), 20_000):
                with write_tx(engine) as conn:
                    conn.execute(events.insert(), batch)
                bar.advance(task, len(batch))
        else:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cols = ("tenant", "device", "seq", "id", "ts", "type", "data", "received_at")
                with cur.copy(f"COPY events ({', '.join(cols)}) FROM STDIN") as copy:
                    for i, row in enumerate(event_rows(events_n, members_n), 1):
                        copy.write_row([json.dumps(row["data"]) if c == "data" else row[c]
                                        for c in cols])
                        if i % 20_000 == 0:
                            bar.advance(task, 20_000)
                raw.commit()
                bar.update(task, completed=events_n)
                cur.execute("ANALYZE")
                raw.commit()
            finally:
                raw.close()
    with write_tx(engine) as conn:
        now = int(time.time() * 1000)
        for device, site in DEVICES:
            conn.execute(devices.insert().values(
                tenant=TENANT, device=device, online=True, last_seen=now, state_ts="x",
                state={"v": 1, "online": True, "site": site, "version": "0.1.0",
                       "outbox_depth": 0, "membership_version": 0, "peripherals": []}))
        if is_sqlite(engine):
            conn.exec_driver_sql("ANALYZE")
    WebAuth(engine).create_user(TENANT, "reception@bench.si", PASSWORD, "reception")
    engine.dispose()


def serve(db_url: str, keys_dir: str, port: int) -> None:
    """The bridge's served app in this process (``web_bench.py serve``)."""
    import uvicorn

    from cloud_bridge.mqtt_link import MqttSettings
    from cloud_bridge.service import Bridge, BridgeSettings

    bridge = Bridge(BridgeSettings(db_url=db_url, keys_dir=Path(keys_dir),
                                   mqtt=MqttSettings(client_id=f"bench-{os.getpid()}")))
    uvicorn.run(bridge.app("bench-token-0123456789", secure_cookies=False), host="127.0.0.1",
                port=port, log_level="warning", access_log=False, timeout_keep_alive=60)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, keys_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, __file__, "serve", "--db", db_url,
                             "--keys-dir", str(keys_dir), "--port", str(port)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError("the bench server did not start")


def login(base: str) -> httpx.Cookies:
    with httpx.Client(base_url=base) as c:
        c.get("/login")
        token = c.cookies.get("es_login_csrf")
        r = c.post("/login", data={"username": "reception@bench.si", "password": PASSWORD,
                                   "csrf_token": token})
        assert r.status_code in (200, 303), r.text[:300]
        return httpx.Cookies({"es_session": c.cookies["es_session"]})


async def hammer(bases: list[str], cookies: httpx.Cookies, clients: int, seconds: float,
                 next_path: Callable[[random.Random], str], check: str) -> dict[str, float]:
    """``clients`` closed-loop clients; client i talks to bridge process i % len(bases)
    (as a load balancer in front of several bridge processes would spread them)."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(cookies=cookies, limits=limits, timeout=30) as client:
        async def worker(seed: int, until: float, record: bool) -> None:
            nonlocal errors
            rnd = random.Random(seed)
            base = bases[seed % len(bases)]
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                try:
                    r = await client.get(base + next_path(rnd))
                except httpx.TransportError:
                    errors += 1  # counted, not fatal: the run reports them
                    continue
                dt = time.perf_counter() - t0
                if r.status_code != 200 or check not in r.text:
                    errors += 1
                elif record:
                    latencies.append(dt)

        warm = time.perf_counter() + 2
        await asyncio.gather(*(worker(i, warm, False) for i in range(clients)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(100 + i, t0 + seconds, True) for i in range(clients)))
        elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": pct(0.50),
            "p95": pct(0.95), "p99": pct(0.99), "mean": statistics.fmean(latencies) * 1000,
            "errors": errors}


def run_one(label: str, db_url: str, args: argparse.Namespace, work: Path) -> list[list[str]]:
    from cloud_bridge.tenant_keys import create_tenant

    keys_dir = work / f"keys-{label}"
    create_tenant(keys_dir, TENANT)
    t0 = time.perf_counter()
    load(db_url, args.members, args.events)
    console.print(f"[bold]{label}[/]: loaded {args.members:,} members and {args.events:,} "
                  f"events in {time.perf_counter() - t0:.0f} s")
    ports = [free_port() for _ in range(args.servers)]
    servers = [start_server(db_url, keys_dir, port) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    rows = []
    try:
        cookies = login(bases[0])  # the session is in the database: valid on every process
        prefixes = sorted({s[:n].lower() for s in SURNAMES for n in (1, 2, 3)})
        targets = [
            ("baseline /healthz", lambda r: "/healthz", '"ok"'),
            ("live entries page", lambda r: f"/t/{TENANT}/live", "fig-occupancy"),
            ("live entries, one site", lambda r: f"/t/{TENANT}/live?site=maribor",
             "fig-occupancy"),
            ("member search (prefix)", lambda r: f"/t/{TENANT}/members?q="
             f"{r.choice(prefixes)}&page={r.randrange(3)}", "table class=\"members\""),
        ]
        for name, path, check in targets:
            res = asyncio.run(hammer(bases, cookies, args.clients, args.seconds, path, check))
            console.print(f"  {name}: {res['rps']:.0f} req/s, p50 {res['p50']:.1f} ms, "
                          f"p95 {res['p95']:.1f} ms, errors {res['errors']}")
            rows.append([label, str(args.servers), name, f"{res['rps']:.0f}", f"{res['p50']:.1f}",
                         f"{res['p95']:.1f}", f"{res['p99']:.1f}", str(res["errors"])])
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres")
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    ap.add_argument("--servers", type=int, default=1,
                    help="bridge processes serving the pages (clients spread over them)")
    args = ap.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "sqlite"):
            rows += run_one("SQLite", f"sqlite:///{work / 'bridge.sqlite3'}", args, work)
        if args.only in (None, "postgresql"):
            url, drop = pg_database(args.pg, "edge_web_bench")
            try:
                rows += run_one("PostgreSQL", url, args, work)
            finally:
                drop()
    table = Table(title=f"{args.clients} concurrent clients, {args.members:,} members, "
                        f"{args.events:,} events")
    for col in ("database", "processes", "route", "req/s", "p50 ms", "p95 ms", "p99 ms",
                "errors"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    print("\n| database | processes | route | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sp = argparse.ArgumentParser()
        sp.add_argument("serve")
        sp.add_argument("--db")
        sp.add_argument("--keys-dir")
        sp.add_argument("--port", type=int)
        a = sp.parse_args()
        serve(a.db, a.keys_dir, a.port)
    else:
        main()
