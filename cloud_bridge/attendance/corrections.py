"""Corrections of punches, made in the cloud only and only as new records.

A correction adds a punch that was never made, amends the time or type of a punch, or
voids one; it names the original (device, seq) — or the added punch it corrects — with
who, when and why. The original event is never modified. The *corrected view* is the
originals with all corrections of each applied in order (an amend changes only the
fields it names, so a later type fix keeps an earlier time fix; a void is final), plus
the added punches; timesheets are computed from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, tuple_

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.schema import corrections
from cloud_bridge.attendance.timesheet import Punch
from cloud_bridge.db_schema import events
from cloud_bridge.errors import Invalid
from cloud_bridge.errors import NotFound as BridgeNotFound
from contracts.punch_chain import PUNCH_EVENT
from contracts.punch_types import PunchType

ACTIONS = ("add", "amend", "void")


class CorrectionError(Invalid):
    """A correction that cannot be recorded; the text says why."""


class NotFound(BridgeNotFound):
    pass


def format_ts(at: datetime) -> str:
    """The events table's time format: UTC, milliseconds, 'Z'."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class CorrectionIn:
    action: str
    author: str
    reason: str
    employee: str | None = None  # required for "add"; taken from the original otherwise
    ref_device: str | None = None
    ref_seq: int | None = None
    ref_correction: int | None = None
    at: datetime | None = None
    punch_type: PunchType | None = None


def _original(conn: Connection, tenant: str, device: str, seq: int) -> Any:
    row = conn.execute(select(events.c.ts, events.c.data).where(
        events.c.tenant == tenant, events.c.device == device, events.c.seq == seq,
        events.c.type == PUNCH_EVENT)).first()
    if row is None:
        raise NotFound(f"no punch {device}#{seq} in tenant {tenant!r}")
    return row


def _refuse_if_voided(conn: Connection, tenant: str, c: CorrectionIn) -> None:
    """A voided punch stays voided: a later amend or void of it is refused (add the punch
    anew instead), so that the effective value is always the oldest-to-newest fold."""
    stmt = select(corrections.c.id).where(corrections.c.tenant == tenant,
                                          corrections.c.action == "void")
    if c.ref_correction is not None:
        stmt = stmt.where(corrections.c.ref_correction == c.ref_correction)
    else:
        stmt = stmt.where(corrections.c.ref_device == c.ref_device,
                          corrections.c.ref_seq == c.ref_seq)
    voided = conn.execute(stmt.limit(1)).scalar()
    if voided is not None:
        raise CorrectionError(f"that punch was voided by correction {voided}; add the punch "
                              "anew instead of correcting it")


def create_correction(conn: Connection, tenant: str, c: CorrectionIn) -> int:
    """Record one correction and its audit row (in the caller's transaction)."""
    if c.action not in ACTIONS:
        raise CorrectionError(f"action must be one of {', '.join(ACTIONS)}")
    if not c.reason.strip() or not c.author.strip():
        raise CorrectionError("a correction needs its author and a reason")
    has_punch_ref = c.ref_device is not None or c.ref_seq is not None
    if has_punch_ref and (c.ref_device is None or c.ref_seq is None):
        raise CorrectionError("a punch is named by both ref_device and ref_seq")
    if c.at is not None and c.at.tzinfo is None:
        raise CorrectionError("the corrected time needs a time zone")
    employee = c.employee
    if c.action == "add":
        if has_punch_ref or c.ref_correction is not None:
            raise CorrectionError("an added punch refers to nothing; amend or void instead")
        if not employee or c.at is None or c.punch_type is None:
            raise CorrectionError("an added punch needs employee, time and type")
    else:
        if has_punch_ref == (c.ref_correction is not None):
            raise CorrectionError(f"{c.action} names exactly one punch: ref_device+ref_seq "
                                  "or ref_correction (an added punch)")
        if c.action == "amend" and c.at is None and c.punch_type is None:
            raise CorrectionError("amend changes the time, the type or both")
        if has_punch_ref:
            assert c.ref_device is not None and c.ref_seq is not None
            original = _original(conn, tenant, c.ref_device, c.ref_seq)
            employee_of = str(original.data.get("employee", ""))
        else:
            added = conn.execute(select(corrections).where(
                corrections.c.tenant == tenant, corrections.c.id == c.ref_correction,
                corrections.c.action == "add")).mappings().first()
            if added is None:
                raise NotFound(f"no added punch (correction {c.ref_correction}) in tenant "
                               f"{tenant!r}")
            employee_of = added["employee"]
        _refuse_if_voided(conn, tenant, c)
        if employee and employee != employee_of:
            raise CorrectionError(f"that punch is employee {employee_of!r}'s, not {employee!r}")
        employee = employee_of
    assert employee is not None
    now = audit_trail.now_ms()
    values = {"tenant": tenant, "action": c.action, "employee": employee,
              "ref_device": c.ref_device, "ref_seq": c.ref_seq,
              "ref_correction": c.ref_correction,
              "ts": format_ts(c.at) if c.at is not None else None,
              "punch_type": c.punch_type.value if c.punch_type is not None else None,
              "reason": c.reason.strip(), "author": c.author.strip(), "created_at": now}
    key = conn.execute(insert(corrections).values(**values)).inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    new_id = int(key[0])
    ref = (f"{c.ref_device}#{c.ref_seq}" if has_punch_ref
           else f"correction#{c.ref_correction}" if c.ref_correction else "")
    audit_trail.record(conn, tenant, c.author.strip(), f"correction.{c.action}",
                       f"employee {employee}", {**values, "id": new_id, "ref": ref}, now)
    return new_id


def list_corrections(conn: Connection, tenant: str, employee: str | None = None
                     ) -> list[dict[str, Any]]:
    stmt = select(corrections).where(corrections.c.tenant == tenant)
    if employee:
        stmt = stmt.where(corrections.c.employee == employee)
    return [dict(r) for r in conn.execute(stmt.order_by(corrections.c.id)).mappings()]


def _punch(employee: str, ts: str, kind: str, source: str) -> Punch | None:
    if not employee:
        return None  # not attributable to anyone: the chain audit still covers it
    try:
        return Punch(employee, parse_ts(ts), PunchType(kind), source)
    except ValueError:
        return None  # a type this bridge does not know: not a working-time punch


def _apply(fixes: list[dict[str, Any]], ts: str, kind: str, source: str
           ) -> tuple[str, str, str] | None:
    """A punch after its corrections, oldest first: each amend changes only what it
    names (a later type fix keeps an earlier time fix), a void removes the punch.
    ``source`` names every correction applied. None: voided."""
    for fix in fixes:
        if fix["action"] == "void":
            return None
        ts, kind = fix["ts"] or ts, fix["punch_type"] or kind
        source += f"~correction#{fix['id']}"
    return ts, kind, source


def corrected_punches(conn: Connection, tenant: str, start: datetime, end: datetime,
                      employees: Iterable[str] | None = None) -> list[Punch]:
    """Every punch in [start, end) after corrections, ordered by time."""
    wanted = set(employees) if employees is not None else None
    stmt = select(events.c.device, events.c.seq, events.c.ts, events.c.data).where(
        events.c.tenant == tenant, events.c.type == PUNCH_EVENT,
        events.c.ts >= format_ts(start), events.c.ts < format_ts(end))
    if wanted is not None:
        stmt = stmt.where(events.c.data["employee"].as_string().in_(sorted(wanted)))
    originals = {(r.device, int(r.seq)): (r.ts, r.data) for r in conn.execute(stmt)}
    fixes: dict[tuple[str, Any, Any], list[dict[str, Any]]] = {}
    adds: list[dict[str, Any]] = []
    stmt = select(corrections).where(corrections.c.tenant == tenant)
    if wanted is not None:
        stmt = stmt.where(corrections.c.employee.in_(sorted(wanted)))
    for c in conn.execute(stmt.order_by(corrections.c.id)).mappings():
        if c["action"] == "add":
            adds.append(dict(c))
        elif c["ref_correction"] is not None:
            fixes.setdefault(("c", c["ref_correction"], None), []).append(dict(c))
        else:
            fixes.setdefault(("e", c["ref_device"], c["ref_seq"]), []).append(dict(c))
    # an original outside the window may have been moved into it
    missing = [(k[1], k[2]) for k in fixes if k[0] == "e" and (k[1], k[2]) not in originals]
    if missing:
        for r in conn.execute(select(events.c.device, events.c.seq, events.c.ts,
                                     events.c.data).where(
                events.c.tenant == tenant, events.c.type == PUNCH_EVENT,
                tuple_(events.c.device, events.c.seq).in_(missing))):
            originals[(r.device, int(r.seq))] = (r.ts, r.data)
    out: list[Punch] = []
    for (device, seq), (ts, data) in originals.items():
        employee = str(data.get("employee", ""))
        if wanted is not None and employee not in wanted:
            continue
        fixed = _apply(fixes.get(("e", device, seq), []), ts, str(data.get("type", "")),
                       f"{device}#{seq}")
        punch = _punch(employee, *fixed) if fixed is not None else None
        if punch is not None:
            out.append(punch)
    for a in adds:
        fixed = _apply(fixes.get(("c", a["id"], None), []), a["ts"], a["punch_type"],
                       f"correction#{a['id']}")
        punch = _punch(a["employee"], *fixed) if fixed is not None else None
        if punch is not None:
            out.append(punch)
    return sorted((p for p in out if start <= p.at < end), key=lambda p: (p.at, p.source))
