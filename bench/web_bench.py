"""Web modules under load: the live-entries page and member search with 50 connections
against 100,000 members and 1,000,000 events, next to a baseline route (/healthz: the
same server and load generator, no database work) measured in the same run.

    .venv/bin/python bench/web_bench.py [--members 100000] [--events 1000000]
        [--connections 50] [--threads 2] [--duration 15] [--workers 1,2]
        [--pg "host=127.0.0.1 port=5432 user=postgres"] [--only sqlite|postgresql]

The load generator is wrk (Debian package ``wrk``, C, epoll) driven by
bench/wrk/session.lua, which logs in through the login form as a reception user and
keeps the session cookie. Per route: requests/s and latency p50/p95/p99 as wrk measured
them, and the server's own time p50/p95 from each response's ``Server-Timing: app;dur=``
header (the time inside the app, including the wait for a page thread and the GIL), and
the server time p50 of a short run on one connection (the page's own cost, no request
waiting for another). Each route gets a warm-up run first (not counted).

A fresh database per run (a temporary SQLite file; a temporary PostgreSQL database,
dropped afterwards), bulk-loaded with SQLAlchemy executemany (SQLite) or COPY
(PostgreSQL). The bridge runs as ``cloud-bridge serve --workers N`` (the product's own
command; no broker: these pages only read, its MQTT link keeps retrying in the
background). Exit status 1 when a route had wrong answers or socket errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
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
from cloud_bridge.partitions import PartitionKeeper, current_month, months_back  # noqa: E402
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
            with write_tx(engine) as conn:  # the 30 days' months, not events_default
                PartitionKeeper(engine).ensure(
                    conn, [months_back(current_month(), k) for k in (1, 2)])
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


LUA = ROOT / "bench" / "wrk" / "session.lua"
USER = "reception@bench.si"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, keys_dir: Path, port: int, workers: int, log: Path
                 ) -> subprocess.Popen[bytes]:
    """``cloud-bridge serve`` with a closed MQTT port (nothing listens on a fresh free
    port); its output goes to ``log``."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url,
             "--keys-dir", str(keys_dir), "--insecure-dev", "--http-port", str(port),
             "--mqtt-port", str(free_port()), "--workers", str(workers),
             "--log-level", "warning", "--stats-interval", "3600"],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bridge exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError("the bridge did not start")


def wrk(base: str, paths: list[str], expect: str, cookie: str, seconds: float,
        connections: int, threads: int) -> dict[str, Any]:
    """One wrk run of session.lua; its ``BENCH {...}`` line as a dict."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "30s", "-s", str(LUA), base, "--", "|".join(paths), cookie, expect,
           USER, PASSWORD]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return dict(json.loads(line[len("BENCH "):]))


def log_in(base: str) -> str:
    """A session cookie, from the Lua login on one connection (concurrent logins on one
    SQLite file would contend for its write lock; the bench measures pages, not that)."""
    for _ in range(3):  # a worker's first requests are slow on a loaded machine
        res = wrk(base, ["/healthz"], '"ok"', "", 5, 1, 1)
        if res["session"]:
            return str(res["session"])
    raise RuntimeError("the Lua login got no session cookie")


def drain(base: str, timeout_s: float = 60) -> None:
    """Wait until the server answers /healthz with no queue in front of it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        timing = httpx.get(base + "/healthz", timeout=30).headers.get("server-timing", "")
        if timing.startswith("app;dur=") and float(timing[len("app;dur="):]) < 5:
            return
        time.sleep(0.5)


def ms(value: float) -> str:
    return f"{value:.2f}" if value >= 0 else "—"  # -1: no timed response


def targets() -> list[tuple[str, list[str], str]]:
    prefixes = sorted({s[:n].lower() for s in SURNAMES for n in (1, 2, 3)})
    search = [f"/t/{TENANT}/members?q={urllib.parse.quote(p)}&page={page}"
              for p in prefixes for page in range(3)]
    random.Random(3).shuffle(search)
    return [
        ("baseline /healthz", ["/healthz"], '"ok"'),
        ("live entries page", [f"/t/{TENANT}/live"], "fig-occupancy"),
        ("live entries, one site", [f"/t/{TENANT}/live?site=maribor"], "fig-occupancy"),
        ("member search (prefix, pages 1–3)", search, 'table class="members"'),
    ]


def run_routes(label: str, base: str, workers: int, args: argparse.Namespace
               ) -> list[list[str]]:
    cookie = log_in(base)
    rows = []
    for name, paths, expect in targets():
        wrk(base, paths, expect, cookie, args.warmup, args.connections, args.threads)
        load1 = os.getloadavg()[0]
        res = wrk(base, paths, expect, cookie, args.duration, args.connections,
                  args.threads)
        # the page's own cost: one connection, so no request waits for another (once
        # the server has finished what the 50 connections left queued)
        drain(base)
        solo = wrk(base, paths, expect, cookie, args.solo, 1, 1)
        rps = res["requests"] / res["seconds"] if res["seconds"] else 0.0
        errors = int(res["bad"]) + int(res["socket_errors"]) + int(solo["bad"])
        console.print(f"  {label} ×{workers} {name}: {rps:.0f} req/s, p95 {res['p95']:.1f} ms,"
                      f" server p50 {res['server_p50']:.2f} ms, errors {errors}")
        rows.append([label, str(workers), name, f"{rps:.0f}", f"{res['p50']:.1f}",
                     f"{res['p95']:.1f}", f"{res['p99']:.1f}", ms(res["server_p50"]),
                     ms(res["server_p95"]), ms(solo["server_p50"]), str(errors),
                     f"{load1:.1f}"])
    return rows


def run_one(label: str, db_url: str, args: argparse.Namespace, work: Path) -> list[list[str]]:
    from cloud_bridge.tenant_keys import create_tenant

    keys_dir = work / f"keys-{label}"
    create_tenant(keys_dir, TENANT)
    t0 = time.perf_counter()
    load(db_url, args.members, args.events)
    console.print(f"[bold]{label}[/]: loaded {args.members:,} members and {args.events:,} "
                  f"events in {time.perf_counter() - t0:.0f} s")
    rows = []
    for workers in args.workers:
        port = free_port()
        server = start_server(db_url, keys_dir, port, workers, work / f"bridge-{label}.log")
        try:
            rows += run_routes(label, f"http://127.0.0.1:{port}", workers, args)
        finally:
            server.terminate()
            server.wait(30)
    return rows


COLUMNS = ("database", "workers", "route", "req/s", "p50 ms", "p95 ms", "p99 ms",
           "server p50 ms", "server p95 ms", "server p50 ms, 1 conn", "errors", "load 1 min")


def report(rows: list[list[str]], args: argparse.Namespace) -> None:
    table = Table(title=f"wrk, {args.connections} connections, {args.threads} threads, "
                        f"{args.members:,} members, {args.events:,} events")
    for col in COLUMNS:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    print(f"\n{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print("\n| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--connections", "--clients", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--duration", "--seconds", type=float, default=15,
                    help="measured seconds per route")
    ap.add_argument("--warmup", type=float, default=2, help="uncounted seconds per route")
    ap.add_argument("--solo", type=float, default=3,
                    help="seconds per route on one connection (the page's own server time)")
    ap.add_argument("--workers", default="1",
                    type=lambda s: [int(x) for x in s.split(",")],
                    help="comma-separated: one run per value of serve --workers")
    ap.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres")
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (scripts/setup.sh does)")
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
    report(rows, args)
    if any(row[10] != "0" or row[3] == "0" for row in rows):
        sys.exit("some routes had wrong answers, socket errors or no answers (see errors)")


if __name__ == "__main__":
    main()
