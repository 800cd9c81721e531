"""Absence requests: an employee asks from their phone for annual leave, sick leave
(with the doctor's document uploaded) or another absence; a manager approves it — the
absence is then entered through absences.py with the same overlap rules, naming the
request — or refuses it with a reason. Both decisions are in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select, update

from cloud_bridge.attendance import absences as absence_ops
from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.schema import absence_requests
from cloud_bridge.attendance.timesheet import AbsenceKind
from cloud_bridge.errors import Invalid, NotFound

DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
DOCUMENT_TYPES = {"application/pdf", "image/jpeg", "image/png"}
REQUESTED_KINDS = (AbsenceKind.ANNUAL_LEAVE, AbsenceKind.SICK_LEAVE, AbsenceKind.OTHER)


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RequestIn:
    employee: str
    kind: AbsenceKind
    first_day: date
    last_day: date
    note: str
    document: Document | None = None


def submit_request(conn: Connection, tenant: str, r: RequestIn) -> int:
    if r.kind not in REQUESTED_KINDS:
        raise Invalid(f"kind must be one of {', '.join(k.value for k in REQUESTED_KINDS)}")
    if r.last_day < r.first_day:
        raise Invalid("the last day is before the first day")
    doc = r.document
    if doc is not None:
        if doc.content_type not in DOCUMENT_TYPES:
            raise Invalid("the document must be a PDF, JPEG or PNG file")
        if len(doc.data) > DOCUMENT_MAX_BYTES:
            raise Invalid("the document is larger than 5 MB")
    key = conn.execute(insert(absence_requests).values(
        tenant=tenant, employee=r.employee, kind=r.kind.value,
        first_day=r.first_day.isoformat(), last_day=r.last_day.isoformat(), note=r.note,
        document_name=doc.name[:120] if doc else None,
        document_type=doc.content_type if doc else None, document=doc.data if doc else None,
        created_at=audit_trail.now_ms() // 1000, state="pending")).inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    row_id = int(key[0])
    audit_trail.record(conn, tenant, f"employee:{r.employee}", "absence_request",
                       f"request:{row_id}", {"kind": r.kind.value,
                                             "first_day": r.first_day.isoformat(),
                                             "last_day": r.last_day.isoformat(),
                                             "document": doc is not None})
    return int(row_id)


def list_requests(conn: Connection, tenant: str, employee: str | None = None
                  ) -> list[dict[str, Any]]:
    """Newest first, without the document's bytes."""
    cols = [c for c in absence_requests.c if c.name != "document"]
    stmt = select(*cols).where(absence_requests.c.tenant == tenant)
    if employee is not None:
        stmt = stmt.where(absence_requests.c.employee == employee)
    return [dict(r) for r in conn.execute(stmt.order_by(absence_requests.c.id.desc()))
            .mappings()]


def request_document(conn: Connection, tenant: str, request_id: int) -> Document:
    row = conn.execute(select(absence_requests.c.document_name,
                              absence_requests.c.document_type,
                              absence_requests.c.document).where(
        absence_requests.c.tenant == tenant, absence_requests.c.id == request_id)).first()
    if row is None or row.document is None:
        raise NotFound(f"request {request_id} has no document")
    return Document(row.document_name, row.document_type, bytes(row.document))


def _pending(conn: Connection, tenant: str, request_id: int) -> Any:
    row = conn.execute(select(absence_requests).where(
        absence_requests.c.tenant == tenant, absence_requests.c.id == request_id)
    ).mappings().first()
    if row is None:
        raise NotFound(f"no absence request {request_id}")
    if row["state"] != "pending":
        raise Invalid(f"the request was already {row['state']}")
    return row


def approve_request(conn: Connection, tenant: str, request_id: int, author: str) -> int:
    """Enter the absence (or raise absences.AbsenceError, e.g. an overlap); its id."""
    row = _pending(conn, tenant, request_id)
    note = row["note"] or f"request #{request_id}"
    absence_id = absence_ops.create_absence(conn, tenant, absence_ops.AbsenceIn(
        row["employee"], AbsenceKind(row["kind"]), date.fromisoformat(row["first_day"]),
        date.fromisoformat(row["last_day"]), author, None,
        f"{note} (request #{request_id})"))
    _decide(conn, tenant, request_id, "approved", author, "", absence_id)
    return absence_id


def refuse_request(conn: Connection, tenant: str, request_id: int, author: str,
                   reason: str) -> None:
    _pending(conn, tenant, request_id)
    _decide(conn, tenant, request_id, "refused", author, reason, None)


def _decide(conn: Connection, tenant: str, request_id: int, state: str, author: str,
            reason: str, absence_id: int | None) -> None:
    conn.execute(update(absence_requests).where(absence_requests.c.id == request_id).values(
        state=state, decided_by=author, decided_at=audit_trail.now_ms() // 1000,
        decision_reason=reason or None, absence_id=absence_id))
    audit_trail.record(conn, tenant, author, f"absence_request_{state}",
                       f"request:{request_id}", {"reason": reason, "absence": absence_id})
