"""Phone punch end to end: HTTP request → session check → chained insert in ``events``
(+ the location row, + the chain head signed with the tenant's phone head key) → 201,
at 50 concurrent employees, beside the bridge's health route as the baseline in the same
run. One command:

    PYTHONPATH=$PWD .venv/bin/python bench/phone_punch_bench.py [--duration 10]

The load generator is wrk (C, epoll) with bench/wrk/phone_punch.lua; the bridge is
``cloud-bridge serve`` on a SQLite file. After the run the stored punches are counted
against the accepted responses and every phone chain is verified, its head signatures
with the tenant's key."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.pg_scratch import pg_database
from bench.web_bench import free_port, start_server
from cloud_bridge.attendance.chain_audit import audit_chain, chain_devices
from cloud_bridge.attendance.phone_enrolment import create_enrolment, sign_in
from cloud_bridge.attendance.phone_punch import phone_head_key
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.db_schema import create_schema, events, make_engine, members, write_tx
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant
from contracts.pin_hash import hash_pin
from contracts.punch_chain import PUNCH_EVENT

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "wrk" / "phone_punch.lua"
TENANT = "benchphone"


def seed(db_url: str, keys_dir: Path, employees: int, sessions_file: Path) -> None:
    create_tenant(keys_dir, TENANT)
    engine = make_engine(db_url)
    create_schema(engine)
    create_attendance_schema(engine)
    pin = hash_pin("2468")  # one hash for all: scrypt per employee would only slow setup
    now = int(time.time())
    lines = []
    with write_tx(engine) as conn:
        for i in range(employees):
            conn.execute(insert(members).values(tenant=TENANT, id=f"e{i}", first_name="B",
                                                blocked=False, pin_hash=pin, created_at=now,
                                                updated_at=now))
            token = create_enrolment(conn, TENANT, f"e{i}", "bench")
            lines.append(sign_in(conn, TENANT, token, "2468")[0])
    sessions_file.write_text("\n".join(lines) + "\n")
    engine.dispose()


def wrk(base: str, sessions: str, path: str, seconds: int, connections: int,
        threads: int, pace_ms: int = 0, jitter: bool = False) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(LUA), base, "--", sessions, path, str(pace_ms), "1" if jitter else "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return dict(json.loads(line[len("BENCH "):]))


PUNCH, HEALTH = "/api/v1/phone/punch", "/api/v1/health"
MODES = ("saturated", "paced in step", "paced jittered")


def _runs(base: str, sessions: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Each mode's baseline then punch run, back to back on the same server."""
    runs = {}
    for mode in MODES:
        pace = 0 if mode == "saturated" else args.pace_ms
        jitter = mode == "paced jittered"
        for name, path, file in (("baseline GET " + HEALTH, HEALTH, ""),
                                 ("POST " + PUNCH, PUNCH, sessions)):
            runs[f"{mode}: {name}"] = wrk(base, file, path, args.duration, args.employees,
                                          args.threads, pace, jitter)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--employees", type=int, default=50)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pace-ms", type=int, default=1000,
                    help="each employee's phone waits this long between punches in the "
                    "paced runs (50 employees every 1000 ms = 50 punches/s offered)")
    ap.add_argument("--workers", type=int, default=1, help="bridge worker processes")
    ap.add_argument("--postgres", metavar="LIBPQ", default=None,
                    help="run on a scratch PostgreSQL database made through this admin "
                    "connection string (e.g. 'host=127.0.0.1 user=postgres') instead of "
                    "a SQLite file")
    args = ap.parse_args()
    start_load = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drop_db: Callable[[], None] = lambda: None  # noqa: E731
        if args.postgres:
            db_url, drop_db = pg_database(args.postgres, "edge_punch_bench")
        else:
            db_url = f"sqlite:///{work / 'bridge.sqlite3'}"
        sessions = work / "sessions.txt"
        seed(db_url, work / "keys", args.employees, sessions)
        port = free_port()
        proc = start_server(db_url, work / "keys", port, args.workers, work / "bridge.log")
        base = f"http://127.0.0.1:{port}"
        try:
            wrk(base, str(sessions), "/api/v1/phone/punch", 2, args.employees, args.threads)
            runs = _runs(base, str(sessions), args)
        finally:
            proc.terminate()
            proc.wait(30)
        problems = [line for line in (work / "bridge.log").read_text(errors="replace")
                    .splitlines() if line[:1] not in (" ", "\t", "")
                    and ("Error" in line or "Exception" in line) and "ASGI" not in line]
        engine = make_engine(db_url)
        key = phone_head_key(TenantKeyStore(work / "keys").get(TENANT).signing_key)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events).where(
                events.c.tenant == TENANT, events.c.type == PUNCH_EVENT)).scalar_one()
            audits = [audit_chain(conn, TENANT, d, key.public_key())
                      for d in chain_devices(conn, TENANT)]
            broken = [a for a in audits if not a.ok or a.unsigned_tail]
        engine.dispose()
        drop_db()
    load = start_load
    print(f"phone punch, {args.employees} concurrent employees, {args.duration} s per run, "
          f"wrk -t{args.threads}; paced = each phone waits {args.pace_ms} ms between "
          f"requests; {'PostgreSQL' if args.postgres else 'SQLite'}, {args.workers} bridge "
          f"worker(s); load at the start {' '.join(load)}")
    for name, r in runs.items():
        print(f"  {name:48s} {r['requests'] / r['seconds']:7.0f} req/s  p50 {r['p50']:7.2f} ms"
              f"  p95 {r['p95']:7.2f} ms  p99 {r['p99']:7.2f} ms  non-2xx {int(r['bad'])}"
              f"  socket errors {int(r['errors'])}")
    for mode in MODES:
        punch, base_run = runs[f"{mode}: POST {PUNCH}"], runs[f"{mode}: baseline GET {HEALTH}"]
        print(f"  {mode}: p95 ratio punch/baseline "
              f"{punch['p95'] / max(base_run['p95'], 1e-6):.1f}x")
    print(f"  stored punches {stored} (warm-up included), signed heads "
          f"{sum(a.signed_heads for a in audits)}; chains broken or with an unsigned tail: "
          f"{len(broken)}")
    bad = sum(int(r["bad"]) + int(r["errors"]) for r in runs.values())
    if problems:  # what the bridge logged about failed requests, to see why
        print(f"  bridge log: {len(problems)} error lines, the first ones:")
        for line in problems[:5]:
            print(f"    {line[:200]}")
    ok = {m: runs[f"{m}: POST {PUNCH}"]["p95"] < 50 and not broken and bad == 0
          for m in MODES}
    for mode in MODES:
        print(f"  target p95 < 50 ms ({mode}), no error, every chain intact:",
              "met" if ok[mode] else "NOT met")
    print(f"  load at the end {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    sys.exit(0 if ok["paced jittered"] else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
