"""Replacing a device without losing its unsent events.

``edge-agent export-outbox`` (on the old device, agent stopped — or on its SD card in a
laptop) writes one file with everything that must outlive the hardware: the unacknowledged
events with their ids and seqs, the seq counter and acked seq, local entry counters,
presence (anti-passback) and used QR tokens. In the same transaction it marks the old
store *retired*, so that device can never send another event with a seq the replacement
will also use. ``edge-agent import-outbox`` loads the file into the replacement's fresh
store (same tenant and device id): the seq continues where the old device stopped, the
replacement resends the unacknowledged events (the bridge stores each (device, seq) once)
and membership data arrives as a snapshot from the bridge.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import StoreError
from agent.store.local_store import LocalStore
from agent.store.maintenance import RETIRED_KEY

FORMAT = "edge-agent-handover"
VERSION = 1


@dataclass(frozen=True, slots=True)
class HandoverSummary:
    tenant: str
    device: str
    events: int
    last_seq: int
    acked_seq: int


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def export_outbox(store: LocalStore, tenant: str, device: str, out: Path) -> HandoverSummary:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction() as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if RETIRED_KEY in meta:
            raise StoreError("this store was already exported; use the file made then")
        last_seq = int(meta.get("last_seq", 0))
        acked = int(meta.get("acked_seq", 0))
        events = [list(r) for r in conn.execute(
            "SELECT seq, id, type, ts, data, created_ms FROM outbox ORDER BY seq")]
        body: dict[str, Any] = {
            "format": FORMAT, "v": VERSION, "tenant": tenant, "device": device,
            "exported_at": now, "last_seq": last_seq, "acked_seq": acked,
            "events": events,
            "entry_counters": [list(r) for r in conn.execute(
                "SELECT entitlement_id, used FROM entry_counters")],
            "presence": [list(r) for r in conn.execute(
                "SELECT member_id, direction, at_ms, gate FROM presence")],
            "used_tokens": [[r[0].hex(), r[1]] for r in conn.execute(
                "SELECT token_hash, expires_ms FROM used_tokens")],
        }
        seqs = [e[0] for e in events]
        if seqs and (seqs != list(range(seqs[0], seqs[-1] + 1)) or seqs[-1] != last_seq):
            raise StoreError(f"outbox seqs are not contiguous up to {last_seq}; not exported "
                             "(run edge-agent doctor)")
        tmp = out.with_name(out.name + ".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**body, "sha256": _digest(body)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        # only once the file is safely written does the old store stop being usable
        LocalStore.set_meta(conn, RETIRED_KEY, json.dumps({"exported_at": now,
                                                            "last_seq": last_seq}))
    return HandoverSummary(tenant, device, len(events), last_seq, acked)


def read_handover(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: not a readable handover file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("v") != VERSION:
        raise StoreError(f"{path}: not an edge-agent handover file (v{VERSION})")
    digest = raw.pop("sha256", None)
    if digest != _digest(raw):
        raise StoreError(f"{path}: the file is damaged (checksum mismatch); export again")
    return raw


def import_outbox(store: LocalStore, tenant: str, device: str, path: Path) -> HandoverSummary:
    data = read_handover(path)
    if (data["tenant"], data["device"]) != (tenant, device):
        raise StoreError(
            f"{path} belongs to {data['tenant']}/{data['device']}, this device is "
            f"{tenant}/{device}: provision the replacement with the old device's id")
    with store.transaction() as conn:
        last = int(LocalStore.get_meta_in(conn, "last_seq", "0"))
        if last or conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]:
            raise StoreError(
                f"this device's store already has events (last seq {last}); import only "
                "into a device that has not run yet: stop it, move its data dir aside, "
                "import, then start it")
        conn.executemany("INSERT INTO outbox(seq, id, type, ts, data, created_ms) "
                         "VALUES (?, ?, ?, ?, ?, ?)", data["events"])
        LocalStore.set_meta(conn, "last_seq", str(int(data["last_seq"])))
        LocalStore.set_meta(conn, "acked_seq", str(int(data["acked_seq"])))
        conn.executemany(
            "INSERT INTO entry_counters(entitlement_id, used) VALUES (?, ?) ON CONFLICT"
            "(entitlement_id) DO UPDATE SET used = max(used, excluded.used)",
            data["entry_counters"])
        conn.executemany(
            "INSERT INTO presence(member_id, direction, at_ms, gate) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(member_id) DO UPDATE SET direction = excluded.direction, "
            "at_ms = excluded.at_ms, gate = excluded.gate WHERE excluded.at_ms > at_ms",
            data["presence"])
        conn.executemany("INSERT OR IGNORE INTO used_tokens(token_hash, expires_ms) "
                         "VALUES (?, ?)",
                         [(bytes.fromhex(h), e) for h, e in data["used_tokens"]])
    return HandoverSummary(tenant, device, len(data["events"]), int(data["last_seq"]),
                           int(data["acked_seq"]))
