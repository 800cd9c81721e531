"""Tables of the E-SV driving-school module: instructors, vehicles, candidates, courses,
lessons and the edits that reached the server.

SQLAlchemy Core on a MetaData of its own (like ``cloud_bridge/web/auth_schema.py``), so it
lives beside the ingest and web tables in the same SQLite or PostgreSQL database. Every
row carries its tenant and every query filters by it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloud_bridge.db_schema import create_tables

ds_metadata = MetaData()

_T = 64  # tenant id length, as in cloud_bridge/db_schema.py

instructors = Table(
    "ds_instructors", ds_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    # the staff login (web_users.id, role "instructor") this instructor signs in with
    Column("user_id", Integer, nullable=False),
    Column("name", String(120), nullable=False),
    Column("licence_no", String(40), nullable=False),  # dovoljenje za učitelja vožnje
    Column("categories", String(60), nullable=False, default="B"),
    Column("active", Boolean, nullable=False, default=True),
    UniqueConstraint("tenant", "user_id", name="uq_ds_instructors_user"),
)

vehicles = Table(
    "ds_vehicles", ds_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("registration", String(20), nullable=False),
    Column("make_model", String(80), nullable=False, default=""),
    Column("category", String(8), nullable=False, default="B"),
    Column("active", Boolean, nullable=False, default=True),
    UniqueConstraint("tenant", "registration", name="uq_ds_vehicles_reg"),
)

candidates = Table(
    "ds_candidates", ds_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("register_no", String(30), nullable=False),  # number in the school's register
    Column("first_name", String(80), nullable=False),
    Column("last_name", String(80), nullable=False),
    Column("birth_date", String(10), nullable=False),  # YYYY-MM-DD
    Column("birth_place", String(80), nullable=False, default=""),
    Column("emso", String(13), nullable=False, default=""),
    Column("address", String(200), nullable=False, default=""),
    Column("phone", String(40), nullable=False, default=""),
    # the instructor whose tablet lists this candidate as "today's"
    Column("instructor_id", Integer, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("tenant", "register_no", name="uq_ds_candidates_regno"),
    Index("ix_ds_candidates_instructor", "tenant", "instructor_id"),
)

courses = Table(
    "ds_courses", ds_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("candidate_id", Integer, nullable=False),
    Column("category", String(8), nullable=False),
    Column("started_on", String(10), nullable=False),
    Column("theory_done_on", String(10), nullable=False, default=""),  # CPP course done
    Column("theory_exam_on", String(10), nullable=False, default=""),  # theory exam passed
    Column("first_aid_on", String(10), nullable=False, default=""),
    Column("medical_valid_until", String(10), nullable=False, default=""),
    Column("required_lessons", Integer, nullable=False, default=20),
    Column("finished_on", String(10), nullable=False, default=""),
    Index("ix_ds_courses_candidate", "tenant", "candidate_id"),
)

lessons = Table(
    "ds_lessons", ds_metadata,
    # generated on the tablet (crypto.randomUUID), so a resent lesson cannot be stored twice
    Column("id", String(36), primary_key=True),
    Column("tenant", String(_T), nullable=False),
    Column("candidate_id", Integer, nullable=False),
    Column("instructor_id", Integer, nullable=False),
    Column("vehicle_id", Integer, nullable=False),
    Column("day", String(10), nullable=False),  # local (Europe/Ljubljana) date of the start
    Column("started_at", String(24), nullable=False),  # UTC, ISO 8601 with ms
    Column("ended_at", String(24), nullable=False),
    Column("lesson_count", Integer, nullable=False),
    Column("lesson_type", String(20), nullable=False),
    Column("km_start", Integer, nullable=False),
    Column("km_end", Integer, nullable=False),
    Column("remarks", Text, nullable=False, default=""),
    Column("signature", Text, nullable=False),  # data:image/png;base64,…
    # bumped by one for every applied edit; a tablet's edit names the version it saw
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),  # server clock
    Column("updated_device", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_ds_lessons_candidate", "tenant", "candidate_id", "started_at"),
    Index("ix_ds_lessons_instructor_day", "tenant", "instructor_id", "day"),
)

lesson_edits = Table(
    "ds_lesson_edits", ds_metadata,
    # one per edit a tablet queued: a resent edit finds its row and changes nothing
    Column("edit_id", String(36), primary_key=True),
    Column("tenant", String(_T), nullable=False),
    Column("lesson_id", String(36), nullable=False),
    Column("device", String(64), nullable=False),
    Column("username", String(120), nullable=False),
    Column("base_version", Integer, nullable=False),
    Column("outcome", String(12), nullable=False),  # applied | conflict
    Column("version_after", Integer, nullable=False),  # the lesson's version after it
    # the edit as sent (without the signature image); for a conflict this is the note
    Column("data", JSON, nullable=False),
    Column("edited_ms", BigInteger, nullable=False),  # tablet clock, for display only
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_ds_lesson_edits_lesson", "tenant", "lesson_id", "received_ms"),
)

theory_sessions = Table(
    "ds_theory_sessions", ds_metadata,
    # one classroom session of the theory part (dnevnik usposabljanja)
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("category", String(8), nullable=False),
    Column("day", String(10), nullable=False),
    Column("start_hm", String(5), nullable=False),  # local time, HH:MM
    Column("hours", Integer, nullable=False),  # school hours (šolske ure)
    Column("topic", String(200), nullable=False),
    Column("lecturer", String(120), nullable=False),  # učitelj predpisov
    Column("lecturer_licence", String(40), nullable=False, default=""),
    Index("ix_ds_theory_sessions_day", "tenant", "day"),
)

theory_attendance = Table(
    "ds_theory_attendance", ds_metadata,
    Column("tenant", String(_T), nullable=False),
    Column("session_id", Integer, primary_key=True),
    Column("candidate_id", Integer, primary_key=True),
    Index("ix_ds_theory_attendance_candidate", "tenant", "candidate_id"),
)

leavings = Table(
    "ds_leavings", ds_metadata,
    # a candidate who moved to another school: the izpisni list issued to them
    Column("tenant", String(_T), primary_key=True),
    Column("candidate_id", Integer, primary_key=True),
    Column("left_on", String(10), nullable=False),
    Column("to_school", String(120), nullable=False, default=""),
    Column("issued_by", String(120), nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
)

prices = Table(
    "ds_prices", ds_metadata,
    # the school's price list: what an order, a pro-forma or an invoice line is made of
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("name", String(100), nullable=False),
    Column("price_cents", Integer, nullable=False),  # with VAT
    Column("vat", String(8), nullable=False),  # "22", "9.5", "5" or "exempt"
    Column("active", Boolean, nullable=False, default=True),
)

documents = Table(
    "ds_documents", ds_metadata,
    # orders, pro-forma and advance invoices, invoices and credit notes, numbered per
    # kind, business premise and year: 2026-P1-00001
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("premise", String(20), nullable=False),
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("candidate_id", Integer, nullable=False),
    Column("lines", JSON, nullable=False),  # [{name, quantity, unit_price_cents, vat}]
    Column("total_cents", Integer, nullable=False),  # negative for a credit note
    Column("refers_to", Integer, nullable=True),  # the invoice a credit note corrects
    Column("payment", String(8), nullable=False, default=""),  # cash | card | transfer
    # the POS "print" command that fiscalises a cash or card payment (request id)
    Column("fiscal_request_id", String(36), nullable=True),
    # what the POS device answered (fiscal_link.py): its device, the receipt's number
    # (premise-device-number), ZOI, EOR and fiscal state; NULL until the till answers
    Column("fiscal_device", String(64), nullable=True),
    Column("fiscal_invoice_id", String(60), nullable=True),
    Column("zoi", String(32), nullable=True),
    Column("eor", String(64), nullable=True),
    Column("fiscal_state", String(20), nullable=True),
    Column("fiscal_error", String(300), nullable=True),
    Column("issued_by", String(120), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("tenant", "kind", "premise", "year", "number",
                     name="uq_ds_documents_number"),
)

applications = Table(
    "ds_applications", ds_metadata,
    # an application sent through the public API; the office accepts it into the register
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("first_name", String(80), nullable=False),
    Column("last_name", String(80), nullable=False),
    Column("birth_date", String(10), nullable=False),
    Column("birth_place", String(80), nullable=False, default=""),
    Column("emso", String(13), nullable=False, default=""),
    Column("address", String(200), nullable=False, default=""),
    Column("email", String(200), nullable=False, default=""),
    Column("phone", String(40), nullable=False, default=""),
    Column("category", String(8), nullable=False),
    # the consent text the applicant agreed to (its version) and when
    Column("consent_version", String(20), nullable=False),
    Column("consent_ms", BigInteger, nullable=False),
    Column("status", String(10), nullable=False, default="pending"),  # pending | accepted
    Column("candidate_id", Integer, nullable=True),
    Column("decided_by", String(120), nullable=False, default=""),
    Column("decided_ms", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_ds_applications_status", "tenant", "status", "created_ms"),
)

apply_counts = Table(
    "ds_apply_counts", ds_metadata,
    # one row per application let through, for the limits on new applications
    # (apply_limits.py); ``client`` is a keyed hash of the sender's address, never the
    # address; rows older than the window are pruned
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(_T), nullable=False),
    Column("client", String(64), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_ds_apply_counts_client", "tenant", "client", "at_ms"),
    Index("ix_ds_apply_counts_at", "tenant", "at_ms"),
)

school_profile = Table(
    "ds_school", ds_metadata,
    # the school's own data, one row per tenant: its name heads the record card
    Column("tenant", String(_T), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("address", String(200), nullable=False, default=""),
    Column("registration_no", String(40), nullable=False, default=""),
    Column("updated_ms", BigInteger, nullable=False),
)

_SCHEMA_LOCK = 0x6564676564737363  # pg advisory lock id, distinct from the bridge's


def create_driving_school_schema(engine: Engine) -> None:
    """Create the missing tables; concurrent bridge starts are serialised by the lock."""
    create_tables(engine, ds_metadata, _SCHEMA_LOCK)
