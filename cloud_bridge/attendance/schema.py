"""Tables of the attendance module, on a MetaData of their own beside the ingest schema.

Punches themselves stay in the bridge's ``events`` table exactly as the devices sent
them; nothing here ever updates or deletes one. Corrections and absences are
append-only as well: a change is a new row that names what it replaces, and every
write also lands in ``attendance_audit``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    inspect,
)

from cloud_bridge.db_schema import create_tables, lock_schema, write_tx

attendance_metadata = MetaData()

_ID = 64

corrections = Table(
    "attendance_corrections", attendance_metadata,
    # an increasing id: the newest correction of a punch is the one that counts
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("action", String(8), nullable=False),  # add | amend | void
    Column("employee", String(_ID), nullable=False),
    # the original punch (events row) this corrects; NULL for an added punch
    Column("ref_device", String(_ID), nullable=True),
    Column("ref_seq", BigInteger, nullable=True),
    # or an earlier added punch (a correction) that this amends or voids
    Column("ref_correction", Integer, nullable=True),
    Column("ts", String(24), nullable=True),  # the corrected time, like events.ts
    Column("punch_type", String(16), nullable=True),
    Column("reason", Text, nullable=False),
    Column("author", String(120), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_attendance_corrections_ref", "tenant", "ref_device", "ref_seq"),
    Index("ix_attendance_corrections_emp", "tenant", "employee"),
)

absences = Table(
    "attendance_absences", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("employee", String(_ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("first_day", String(10), nullable=False),  # ISO dates, inclusive
    Column("last_day", String(10), nullable=False),
    Column("hours_per_day", Float, nullable=True),
    Column("note", Text, nullable=False, default=""),
    Column("created_by", String(120), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("replaces", Integer, nullable=True),  # the absence this one corrected
    # withdrawn rows stay, with who, when and why
    Column("withdrawn_by", String(120), nullable=True),
    Column("withdrawn_at", BigInteger, nullable=True),
    Column("withdrawn_reason", Text, nullable=True),
    Index("ix_attendance_absences_emp", "tenant", "employee", "first_day"),
)

# the public half of each time clock's punch-chain key, to check the signed heads
device_keys = Table(
    "attendance_device_keys", attendance_metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("public_key", String(64), nullable=False),  # base64 of the raw 32 bytes
    Column("set_by", String(120), nullable=False),
    Column("set_at", BigInteger, nullable=False),
)

audit = Table(
    "attendance_audit", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_attendance_audit_tenant", "tenant", "id"),
)

# each employer's working-time rules (docs/attendance.md, "Overtime"); append-only, the
# newest row of a tenant counts, every change is audited
employer_rules = Table(
    "attendance_employer_rules", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("overtime_basis", String(8), nullable=False),  # week | day
    Column("daily_hours", Float, nullable=False),
    Column("weekly_hours", Float, nullable=False),
    # ZDR-1 art. 155(2); NULL in rows made before it: an even schedule
    Column("uneven_schedule", Boolean, nullable=True),
    Column("set_by", String(120), nullable=False),
    Column("set_at", BigInteger, nullable=False),
    Index("ix_attendance_employer_rules_tenant", "tenant", "id"),
)

# the members entered as employees on the staff pages (attendance/employees_page.py), so
# that one stays on the employee list when their PIN is removed; the person's own data
# stays in ``members``
employees = Table(
    "attendance_employees", attendance_metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("employee", String(_ID), primary_key=True),
    Column("added_by", String(120), nullable=False),
    Column("added_at", BigInteger, nullable=False),
)

# phone punch (attendance/phone_*.py): a personal enrolment link per employee, made and
# revoked by the employer; signing in with the link and the employee's time-clock PIN
# makes a session the phone keeps. Only hashes of the link token and session are stored.
phone_enrolments = Table(
    "attendance_phone_enrolments", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("employee", String(_ID), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("site", String(_ID), nullable=True),  # the geofence the employee works at
    Column("policy", String(8), nullable=True),  # record | flag | refuse; NULL: the site's
    Column("created_by", String(120), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_by", String(120), nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    # wrong PINs in a row, and until when the link takes no PIN (phone_enrolment.py)
    Column("failed_pins", Integer, nullable=False, default=0, server_default="0"),
    Column("locked_until", BigInteger, nullable=True),
    Index("ix_attendance_phone_enrolments_emp", "tenant", "employee"),
)

phone_sessions = Table(
    "attendance_phone_sessions", attendance_metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("enrolment", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# a site's geofence: a circle (centre and radius in metres) or a polygon ([[lat, lon],
# ...]); with the location policy and how long punch locations are kept. Newest row of a
# (tenant, site) counts; every change is audited.
geofences = Table(
    "attendance_geofences", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("site", String(_ID), nullable=False),
    Column("shape", String(8), nullable=False),  # circle | polygon
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("radius_m", Float, nullable=True),
    Column("polygon", JSON, nullable=True),
    Column("policy", String(8), nullable=False),  # record | flag | refuse
    Column("retention_days", Integer, nullable=False),
    Column("set_by", String(120), nullable=False),
    Column("set_at", BigInteger, nullable=False),
    Index("ix_attendance_geofences_site", "tenant", "site", "id"),
)

# the location read at the moment of a phone punch, kept apart from the (unchangeable)
# punch chain so that it can be erased when its retention ends (docs/attendance.md,
# "Location"); the chained punch only says whether it was inside the fence
punch_locations = Table(
    "attendance_punch_locations", attendance_metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("accuracy_m", Float, nullable=False),
    Column("erase_after", BigInteger, nullable=False),  # unix seconds
    Index("ix_attendance_punch_locations_erase", "tenant", "erase_after"),
)

# an employee's own request for an absence (from the phone's "My records"), which a
# manager approves (an absence row is made, naming the request) or refuses; the decision
# is audited. A sick-leave document is kept with the request.
absence_requests = Table(
    "attendance_absence_requests", attendance_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("employee", String(_ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("document_name", String(120), nullable=True),
    Column("document_type", String(40), nullable=True),
    Column("document", LargeBinary, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("state", String(10), nullable=False),  # pending | approved | refused
    Column("decided_by", String(120), nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("absence_id", Integer, nullable=True),
    Index("ix_attendance_absence_requests_emp", "tenant", "employee", "id"),
)

_SCHEMA_LOCK = 0x6564676561747464  # pg advisory lock id ("edgeattd")


# columns added to tables after they were first released (create_all adds none)
_ADDED_COLUMNS = (("attendance_employer_rules", "uneven_schedule", "BOOLEAN"),)


def create_attendance_schema(engine: Engine) -> None:
    """Create the missing attendance tables (safe when several bridges start at once)."""
    create_tables(engine, attendance_metadata, _SCHEMA_LOCK)
    with write_tx(engine) as conn:
        lock_schema(conn, _SCHEMA_LOCK)
        for table, column, sql_type in _ADDED_COLUMNS:
            if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
