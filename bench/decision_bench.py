"""Decision benchmark: 1,000,000 credentials, tap latency with the durable write.

Run:  .venv/bin/python bench/decision_bench.py [--credentials 1000000] [--taps 5000] [--json]

Reports, measured in the same run on the same file:
  - the bare SQLite lookup of a credential hash (the baseline),
  - the pure decision function,
  - a full tap (parse + HMAC + lookups + decision + entry/presence/event commit)
    with synchronous=FULL and synchronous=NORMAL,
  - a waiver-gated full tap (synchronous=FULL; the site requires the current waiver
    version and every member has signed it: docs/waivers.md),
  - a full phone-NFC tap with synchronous=FULL: the Ed25519 signature over a fresh
    challenge verified, then the same lookups, decision and commit (docs/phone_nfc.md),
  - a printed ticket tap with synchronous=FULL: the ticket's Ed25519 signature verified,
    its use counted and ticket.used + access.decision committed (docs/vouchers.md),
and taps/s, with ratios against the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.access.engine import decide
from agent.access.model import GateContext, SiteRules
from agent.access.service import AccessService
from agent.daemon_parts import access_service, open_store
from agent.store.local_store import Durability, LocalStore
from agent.store.membership import bulk_insert
from agent.store.outbox import Outbox
from contracts.credential_hash import credential_hash
from contracts.ticket_token import TicketKind, issue_ticket
from drivers.phone_applet import CHALLENGE_BYTES, signed_message

KEY = b"bench-key-0123456789abcdef012345"
GATE = GateContext("g1", "main", "in")
RULES = SiteRules(tz=ZoneInfo("Europe/Ljubljana"), anti_passback=False)
SIGNED_ON = date.today() - timedelta(days=30)  # every member signed the current version
WAIVER_RULES = replace(RULES, waiver_required=True,
                       waiver_current_since=SIGNED_ON - timedelta(days=30))
err = Console(stderr=True)


def uid(i: int) -> str:
    return f"04{i:012X}"


def load(store: LocalStore, n: int, chunk: int = 50_000) -> float:
    now = int(time.time())
    start = time.perf_counter()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("loading credentials", total=n)
        for base in range(0, n, chunk):
            ids = range(base, min(base + chunk, n))
            members = [(f"m{i}", "Ana", SIGNED_ON.isoformat(), 0) for i in ids]
            creds = [(credential_hash(KEY, "uid", uid(i)), f"c{i}", f"m{i}", "card", 0)
                     for i in ids]
            ents = [
                (f"e{i}", f"m{i}", "punch_card" if i % 2 else "membership", now - 86400,
                 now + 86400 * 365, None, 1_000_000 if i % 2 else None, None, None, None, None,
                 None, None)
                for i in ids
            ]
            with store.transaction() as conn:
                bulk_insert(conn, members, creds, ents)
            progress.advance(task, len(ids))
    return time.perf_counter() - start


PhoneTap = tuple[str, tuple[tuple[str, str], ...]]


def enrol_phones(store: LocalStore, n: int, taps: int, rng: random.Random) -> list[PhoneTap]:
    """``n`` phones enrolled for members m0.., and ``taps`` answers of theirs, each to a
    fresh challenge (signing is the phone's work, done here before the clock runs)."""
    keys = [Ed25519PrivateKey.generate() for _ in range(n)]
    public = [k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() for k in keys]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO credentials(hash, id, member_id, kind, blocked) "
            "VALUES (?, ?, ?, 'phone', 0)",
            [(credential_hash(KEY, "phone", pk), f"p{i}", f"m{i}") for i, pk in enumerate(public)])
    answers: list[PhoneTap] = []
    for _ in range(taps):
        i = rng.randrange(n)
        challenge = os.urandom(CHALLENGE_BYTES)
        signature = keys[i].sign(signed_message(challenge))
        answers.append((public[i], (("phone_challenge", challenge.hex()),
                                    ("phone_signature", signature.hex()))))
    return answers


def ticket_taps(store: LocalStore, outbox: Outbox) -> Callable[[int], object]:
    """Taps of 1,000 printed entry vouchers (docs/vouchers.md), warmed like the others."""
    key = Ed25519PrivateKey.generate()
    svc = AccessService(store, outbox, RULES, KEY, public_key=key.public_key(),
                        repeat_window_s=0, site_id="s1")
    now = int(time.time())
    codes = [issue_ticket(key, kind=TicketKind.ENTRY_VOUCHER, ticket_id=str(uuid.uuid4()),
                          valid_from=now - 60, valid_to=now + 86400, entries=0xFFFF,
                          site_id="s1") for _ in range(1000)]
    for code in codes[:200]:
        svc.tap("r3", "qr", code, GATE)

    def tap(i: int) -> object:
        outcome = svc.tap("r3", "qr", codes[i % len(codes)], GATE)
        assert outcome.granted, outcome.decision  # a refusal would be faster
        return outcome
    return tap


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)]


def measure(fn: Callable[[int], object], n: int) -> tuple[list[float], float]:
    samples: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - s) * 1000)
    return samples, time.perf_counter() - t0


def concurrent(svc: AccessService, picks: list[int], gates: int,
               taps: int) -> tuple[list[float], float]:
    """Several gates tapping at the same moment, as at a busy entrance."""
    samples: list[float] = []
    lock = threading.Lock()
    per_gate = taps // gates

    def gate(g: int) -> None:
        local = []
        for i in range(g * per_gate, (g + 1) * per_gate):
            s = time.perf_counter()
            svc.tap(f"r{g}", "uid", uid(picks[i]), GATE)
            local.append((time.perf_counter() - s) * 1000)
        with lock:
            samples.extend(local)

    threads = [threading.Thread(target=gate, args=(g,)) for g in range(gates)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="decision-bench-") as tmp:
        run(Path(tmp))


def run(tmp: Path) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--credentials", type=int, default=1_000_000)
    ap.add_argument("--taps", type=int, default=5000)
    ap.add_argument("--gates", type=int, default=4, help="concurrent gates for group commit")
    ap.add_argument("--dir", type=Path, default=None, help="where to put the store (default tmp)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(7)
    workdir = args.dir or tmp
    path = workdir / "bench.sqlite3"
    for p in workdir.glob("bench.sqlite3*"):
        p.unlink()
    store, _ = open_store(path, "full", "t", "bench")
    load_s = load(store, args.credentials)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    picks = [rng.randrange(args.credentials) for _ in range(args.taps)]
    phone_taps = enrol_phones(store, min(1000, args.credentials), args.taps + 200, rng)
    hashes = [credential_hash(KEY, "uid", uid(i)) for i in picks]

    results: dict[str, dict[str, float]] = {}

    def record(name: str, samples: list[float], total: float) -> None:
        results[name] = {
            "p50_ms": statistics.median(samples),
            "p99_ms": pct(samples, 0.99),
            "max_ms": max(samples),
            "per_s": len(samples) / total,
        }

    lookup = "SELECT id, member_id, kind, blocked FROM credentials WHERE hash = ?"
    record("bare SQLite lookup (baseline)",
           *measure(lambda i: store.conn.execute(lookup, (hashes[i],)).fetchone(), args.taps))

    from agent.access.local_state import load_state
    from agent.credentials.read_parser import parse_read

    now = datetime.now(UTC)
    states = []
    with store.transaction() as conn:
        for h in hashes[:1000]:
            states.append(load_state(conn, lookup_hash=h, credential_id=None, now=now,
                                     rules=RULES, need_occupancy=False, device="bench"))
    record("pure decision function",
           *measure(lambda i: decide(GATE, now, states[i % 1000], RULES), args.taps))
    record("card read parse (HMAC)", *measure(
        lambda i: parse_read("uid", uid(picks[i]), KEY, None, 0), args.taps))
    record("phone read parse (Ed25519 verify + HMAC)", *measure(
        lambda i: parse_read("phone", phone_taps[i][0], KEY, None, 0, None, phone_taps[i][1]),
        args.taps))
    store.close()

    durabilities: tuple[Durability, ...] = ("full", "normal")
    for durability in durabilities:
        s, outbox = open_store(path, durability, "t", "bench")
        svc = access_service(s, outbox, RULES, KEY, repeat_window_s=0)
        # warm the page cache the way a running agent would be warm
        for i in range(200):
            svc.tap("r1", "uid", uid(picks[i]), GATE)
        def tap(i: int, svc: AccessService = svc) -> object:
            return svc.tap("r1", "uid", uid(picks[i]), GATE)

        record(f"full tap, synchronous={durability.upper()}", *measure(tap, args.taps))
        if durability == "full":
            waiver_svc = access_service(s, outbox, WAIVER_RULES, KEY, repeat_window_s=0)

            def waiver_tap(i: int, svc: AccessService = waiver_svc) -> object:
                outcome = svc.tap("r1", "uid", uid(picks[i]), GATE)
                assert outcome.decision.granted, outcome.decision  # a signer is admitted
                return outcome

            record("waiver-gated full tap, synchronous=FULL", *measure(waiver_tap, args.taps))
            for value, extra in phone_taps[args.taps:]:  # warm, as above
                svc.tap("r2", "phone", value, GATE, extra)

            def phone_tap(i: int, svc: AccessService = svc) -> object:
                value, extra = phone_taps[i]
                outcome = svc.tap("r2", "phone", value, GATE, extra)
                assert outcome.granted, outcome.decision  # a refusal would be faster
                return outcome

            record("phone-NFC tap (Ed25519 verify), synchronous=FULL",
                   *measure(phone_tap, args.taps))
            record("printed ticket tap (Ed25519 verify), synchronous=FULL",
                   *measure(ticket_taps(s, outbox), args.taps))
            record(f"full tap, synchronous=FULL, {args.gates} gates at once (group commit)",
                   *concurrent(svc, picks, args.gates, args.taps))
        s.close()

    base = results["bare SQLite lookup (baseline)"]["p50_ms"]
    if args.json:
        print(json.dumps({"credentials": args.credentials, "taps": args.taps,
                          "load_s": load_s, "results": results}, indent=2))
        return
    table = Table(title=f"decisions against {args.credentials:,} credentials "
                        f"({args.taps:,} taps each; load took {load_s:.1f} s)")
    for col in ("measurement", "p50 ms", "p99 ms", "max ms", "per second", "p50 vs baseline"):
        table.add_column(col, justify="right" if col != "measurement" else "left")
    for name, r in results.items():
        table.add_row(name, f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['max_ms']:.2f}",
                      f"{r['per_s']:,.0f}", f"{r['p50_ms'] / base:.1f}×")
    Console().print(table)
    full = results["full tap, synchronous=FULL"]
    waiver = results["waiver-gated full tap, synchronous=FULL"]
    busy = results[f"full tap, synchronous=FULL, {args.gates} gates at once (group commit)"]
    phone = results["phone-NFC tap (Ed25519 verify), synchronous=FULL"]
    Console().print(
        f"targets: p99 ≤ 1 ms with the durable write (one gate) → {full['p99_ms']:.3f} ms "
        f"({'met' if full['p99_ms'] <= 1 else 'MISSED'}); ≥ 3,000 taps/s durable → "
        f"{full['per_s']:,.0f} from one gate, {busy['per_s']:,.0f} with {args.gates} gates "
        f"({'met' if max(full['per_s'], busy['per_s']) >= 3000 else 'MISSED'}); phone-NFC "
        f"p99 ≤ 1.5 ms → {phone['p99_ms']:.3f} ms "
        f"({'met' if phone['p99_ms'] <= 1.5 else 'MISSED'}); "
        f"waiver-gated tap p99 ≤ 1.5 ms → {waiver['p99_ms']:.3f} ms "
        f"({'met' if waiver['p99_ms'] <= 1.5 else 'MISSED'}), "
        f"{waiver['p99_ms'] / full['p99_ms']:.2f}× the ungated p99"
    )


if __name__ == "__main__":
    main()
