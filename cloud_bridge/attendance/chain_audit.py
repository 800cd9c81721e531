"""Verify a time clock's punch chain from the events the bridge stored.

The hashing and the walk are contracts/punch_chain.py's, so the terminal and the
bridge agree by construction. On top of it the bridge knows what the device was acked:
every seq up to ``device_cursor.acked_seq`` was committed here, so a missing tail is a
deletion too. Signed heads are checked against the device key registered with
``set_device_key``, else the one the device reports in its retained state; without
either the report says the signatures were not checked.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, func, select

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.schema import device_keys
from cloud_bridge.db_schema import device_cursor, devices, events, upsert
from contracts.punch_chain import HEAD_EVENT, PUNCH_EVENT, verify_chain

_CHAIN_TYPES = (PUNCH_EVENT, HEAD_EVENT)


@dataclass(frozen=True, slots=True)
class ChainAudit:
    tenant: str
    device: str
    ok: bool
    events: int  # stored events of the device, of every type
    punches: int  # verified before the first break (all of them when ok)
    signed_heads: int
    signatures_checked: bool
    unsigned_tail: int  # punches after the newest signed head (not yet covered)
    acked_seq: int
    first_break: str | None = None
    break_seq: int | None = None
    # "given" (by the caller), "registered" (set by an administrator), "reported by the
    # device" (its retained state, authenticated by its MQTT identity) or "none"
    key_source: str = "none"
    # the device reports a key other than the registered one (replaced terminal? attack?)
    key_mismatch: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        where = f"{self.tenant}/{self.device}"
        if not self.ok:
            return f"{where}: BROKEN at seq {self.break_seq}: {self.first_break}"
        sig = (f"signatures verified (key {self.key_source})" if self.signatures_checked
               else "signatures NOT checked (no device key registered or reported)")
        if self.key_mismatch:
            sig += "; WARNING: the device reports a different key than the registered one"
        return (f"{where}: chain intact: {self.punches} punches, {self.signed_heads} signed "
                f"heads, {sig}; {self.unsigned_tail} punches after the last signed head")


def decode_public_key(text: str) -> Ed25519PublicKey:
    raw = base64.b64decode(text.removeprefix("base64:"), validate=True)
    if len(raw) != 32:
        raise ValueError("a device key is 32 bytes (raw Ed25519 public key), base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def set_device_key(conn: Connection, tenant: str, device: str, public_key: str,
                   actor: str) -> None:
    """Register (or replace, audited) the device's punch-chain public key."""
    decode_public_key(public_key)
    value = public_key.removeprefix("base64:")
    now = audit_trail.now_ms()
    conn.execute(upsert(conn, device_keys, ["tenant", "device"],
                        {"public_key": value, "set_by": actor, "set_at": now})
                 .values(tenant=tenant, device=device, public_key=value, set_by=actor,
                         set_at=now))
    audit_trail.record(conn, tenant, actor, "device_key.set", f"device {device}",
                       {"device": device, "public_key": value}, now)


def device_key(conn: Connection, tenant: str, device: str) -> Ed25519PublicKey | None:
    text = conn.execute(select(device_keys.c.public_key).where(
        device_keys.c.tenant == tenant, device_keys.c.device == device)).scalar()
    return decode_public_key(text) if text else None


def reported_key(conn: Connection, tenant: str, device: str) -> str | None:
    """The chain key in the device's last retained state, if it sent one."""
    state = conn.execute(select(devices.c.state).where(
        devices.c.tenant == tenant, devices.c.device == device)).scalar()
    if not isinstance(state, dict):
        return None
    text = state.get("chain_public_key")
    try:
        return text if isinstance(text, str) and decode_public_key(text) else None
    except (ValueError, TypeError):
        return None  # a malformed key is no key; the report then says "not checked"


def audit_chain(conn: Connection, tenant: str, device: str,
                public_key: Ed25519PublicKey | None = None) -> ChainAudit:
    """Walk every stored event of the device in seq order (other types count for the
    seq contiguity only; their payloads are not read)."""
    registered = device_key(conn, tenant, device)
    reported_text = reported_key(conn, tenant, device)
    reported = decode_public_key(reported_text) if reported_text else None
    key, source = ((public_key, "given") if public_key is not None
                   else (registered, "registered") if registered is not None
                   else (reported, "reported by the device") if reported is not None
                   else (None, "none"))
    mismatch = (registered is not None and reported is not None
                and registered.public_bytes_raw() != reported.public_bytes_raw())
    rows = conn.execute(
        select(events.c.seq, events.c.ts, events.c.type, events.c.data)
        .where(events.c.tenant == tenant, events.c.device == device,
               events.c.type.in_(_CHAIN_TYPES))
        .order_by(events.c.seq)).all()
    seqs = [int(s) for s in conn.execute(select(events.c.seq).where(
        events.c.tenant == tenant, events.c.device == device).order_by(events.c.seq)).scalars()]
    chain = {int(r.seq): r for r in rows}
    walk = [{"device": device, "seq": s, "ts": chain[s].ts, "type": chain[s].type,
             "data": chain[s].data} if s in chain
            else {"device": device, "seq": s, "ts": "", "type": "other", "data": {}}
            for s in seqs]
    acked = int(conn.execute(select(func.coalesce(device_cursor.c.acked_seq, 0)).where(
        device_cursor.c.tenant == tenant, device_cursor.c.device == device)).scalar() or 0)
    report = verify_chain(walk, key, contiguous=True)
    first_break, break_seq = report.first_break, report.break_seq
    if report.ok and acked > (seqs[-1] if seqs else 0):
        last = seqs[-1] if seqs else 0
        first_break = (f"seq {last + 1}..{acked} were committed and acknowledged but are "
                       "no longer stored: records were deleted")
        break_seq = last + 1
    punch_seqs = [s for s in seqs if s in chain and chain[s].type == PUNCH_EVENT]
    head_covers = max((int(chain[s].data.get("punch_seq", 0)) for s in seqs
                       if s in chain and chain[s].type == HEAD_EVENT), default=0)
    return ChainAudit(
        tenant=tenant, device=device, ok=first_break is None, events=len(seqs),
        punches=report.punches, signed_heads=report.signed_heads,
        signatures_checked=key is not None,
        unsigned_tail=sum(1 for s in punch_seqs if s > head_covers), acked_seq=acked,
        first_break=first_break, break_seq=break_seq, key_source=source,
        key_mismatch=mismatch)


def chain_devices(conn: Connection, tenant: str) -> list[str]:
    """Devices of the tenant that sent at least one punch."""
    return [str(d) for d in conn.execute(
        select(events.c.device).where(events.c.tenant == tenant,
                                      events.c.type == PUNCH_EVENT)
        .group_by(events.c.device).order_by(events.c.device)).scalars()]
