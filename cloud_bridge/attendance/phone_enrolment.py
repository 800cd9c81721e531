"""Phone enrolment: the employer makes a personal link for an employee (and may revoke
it); the employee opens it on their phone and signs in with their time-clock PIN, which
gives the phone a session it keeps. Only SHA-256 hashes of the link token and of the
session are stored, so a copy of the database opens no phone; revoking the enrolment
ends every session made with it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, select, update

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.geofence import Policy
from cloud_bridge.attendance.schema import phone_enrolments, phone_sessions
from cloud_bridge.db_schema import members
from cloud_bridge.errors import BridgeError, Invalid, NotFound, Unauthorized
from contracts.pin_hash import check_pin

# a PIN has 10,000 values: after this many wrong ones in a row the link takes no PIN for
# PIN_LOCK_S, so guessing one (with the secret link) takes weeks, not minutes
PIN_TRIES = 5
PIN_LOCK_S = 15 * 60


class WrongPin(Invalid):
    """The PIN does not match; the caller records it (``record_wrong_pin``) in a
    transaction of its own, as this one rolls back."""

    def __init__(self, enrolment: int) -> None:
        super().__init__("wrong PIN")
        self.enrolment = enrolment


class PinLocked(BridgeError):
    """Too many wrong PINs in a row: the link takes none until the lock ends."""

    status = 429

    def __init__(self, until: int) -> None:
        super().__init__("too many wrong PINs: try again in 15 minutes, or ask your "
                         "employer for a new link")
        self.until = until


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PhoneUser:
    """Who a phone session belongs to, with the location rules of their enrolment."""
    tenant: str
    employee: str
    enrolment: int
    site: str | None
    policy: Policy | None


def create_enrolment(conn: Connection, tenant: str, employee: str, author: str,
                     site: str | None = None, policy: Policy | None = None) -> str:
    """A new enrolment link token for the employee (shown once to the employer)."""
    if conn.execute(select(members.c.id).where(members.c.tenant == tenant,
                                               members.c.id == employee)).first() is None:
        raise NotFound(f"no employee {employee!r}")
    token = secrets.token_urlsafe(24)
    key = conn.execute(insert(phone_enrolments).values(
        tenant=tenant, employee=employee, token_hash=_digest(token), site=site,
        policy=policy.value if policy else None, created_by=author,
        created_at=audit_trail.now_ms() // 1000)).inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    row_id = int(key[0])
    audit_trail.record(conn, tenant, author, "phone_enrol", f"employee:{employee}",
                       {"enrolment": row_id, "site": site,
                        "policy": policy.value if policy else None})
    return token


def revoke_enrolment(conn: Connection, tenant: str, enrolment: int, author: str) -> None:
    row = conn.execute(select(phone_enrolments.c.employee).where(
        phone_enrolments.c.tenant == tenant, phone_enrolments.c.id == enrolment,
        phone_enrolments.c.revoked_at.is_(None))).first()
    if row is None:
        raise NotFound(f"no active phone enrolment {enrolment}")
    conn.execute(update(phone_enrolments).where(phone_enrolments.c.id == enrolment).values(
        revoked_by=author, revoked_at=audit_trail.now_ms() // 1000))
    audit_trail.record(conn, tenant, author, "phone_revoke", f"employee:{row.employee}",
                       {"enrolment": enrolment})


def sign_in(conn: Connection, tenant: str, token: str, pin: str) -> tuple[str, str]:
    """(session secret, employee) for an active enrolment link and the right PIN."""
    row = conn.execute(
        select(phone_enrolments.c.id, phone_enrolments.c.employee, members.c.pin_hash,
               phone_enrolments.c.locked_until)
        .join(members, (members.c.tenant == phone_enrolments.c.tenant)
              & (members.c.id == phone_enrolments.c.employee))
        .where(phone_enrolments.c.tenant == tenant,
               phone_enrolments.c.token_hash == _digest(token),
               phone_enrolments.c.revoked_at.is_(None))).first()
    if row is None:
        raise Unauthorized("this enrolment link is not valid (revoked or mistyped)")
    now_s = audit_trail.now_ms() // 1000
    if row.locked_until is not None and row.locked_until > now_s:
        raise PinLocked(int(row.locked_until))  # not even checked: no answer to learn from
    if not row.pin_hash or not check_pin(pin, row.pin_hash):
        raise WrongPin(int(row.id))
    conn.execute(update(phone_enrolments).where(phone_enrolments.c.id == row.id).values(
        failed_pins=0, locked_until=None))
    session = secrets.token_urlsafe(32)
    conn.execute(insert(phone_sessions).values(session_hash=_digest(session),
                                               enrolment=row.id,
                                               created_at=audit_trail.now_ms() // 1000))
    audit_trail.record(conn, tenant, f"employee:{row.employee}", "phone_sign_in",
                       f"employee:{row.employee}", {"enrolment": row.id})
    return session, str(row.employee)


def record_wrong_pin(conn: Connection, enrolment: int) -> None:
    """Count a wrong PIN; the PIN_TRIES-th in a row locks the link for PIN_LOCK_S (in the
    audit trail, so the employer sees someone tried)."""
    row = conn.execute(select(phone_enrolments.c.tenant, phone_enrolments.c.employee,
                              phone_enrolments.c.failed_pins)
                       .where(phone_enrolments.c.id == enrolment)).first()
    if row is None:
        return
    failed = int(row.failed_pins or 0) + 1
    if failed < PIN_TRIES:
        conn.execute(update(phone_enrolments).where(phone_enrolments.c.id == enrolment)
                     .values(failed_pins=failed))
        return
    until = audit_trail.now_ms() // 1000 + PIN_LOCK_S
    conn.execute(update(phone_enrolments).where(phone_enrolments.c.id == enrolment)
                 .values(failed_pins=0, locked_until=until))
    audit_trail.record(conn, row.tenant, f"employee:{row.employee}", "phone_pin_locked",
                       f"employee:{row.employee}", {"enrolment": enrolment,
                                                    "locked_until": until})


# every phone punch runs it: built once, with a bound parameter
_SESSION = (select(phone_enrolments)
            .join(phone_sessions, phone_sessions.c.enrolment == phone_enrolments.c.id)
            .where(phone_sessions.c.session_hash == bindparam("session_hash")))


def phone_user(conn: Connection, session: str) -> PhoneUser:
    """The employee of a phone session, refused once the enrolment is revoked. The
    session is checked by its SHA-256 (a random 256-bit secret needs no slow hash)."""
    row = conn.execute(_SESSION, {"session_hash": _digest(session)}).mappings().first()
    if row is None or row["revoked_at"] is not None:
        raise Unauthorized("this phone is not signed in (or its enrolment was revoked)")
    return PhoneUser(row["tenant"], row["employee"], row["id"], row["site"],
                     Policy(row["policy"]) if row["policy"] else None)
