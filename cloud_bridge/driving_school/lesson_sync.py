"""Storing lessons sent by the tablets: idempotent, with one stated conflict rule.

Every change a tablet makes is an *edit* with its own UUID, the lesson's UUID, the lesson
version the tablet last saw (``base_version``, 0 for a new lesson) and the whole lesson.

- An edit whose id was stored before changes nothing and gets the stored outcome again
  (a tablet closed mid-sync resends what the server already committed).
- A new lesson id is inserted with version 1 (``INSERT … ON CONFLICT DO NOTHING``, so two
  bridge processes cannot both insert it).
- **Conflict rule: the first edit to reach the server wins.** An edit is applied when
  ``base_version`` is the lesson's current version, or when every edit applied since that
  version came from the same tablet (a tablet never conflicts with itself). Otherwise it
  is not applied; it is stored in full as a *conflict note* on the lesson, returned to
  the tablet and shown in the office log, so nothing typed on a tablet is ever lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, and_, insert, select, update

from cloud_bridge.db_schema import insert_ignore
from cloud_bridge.driving_school.schema import candidates, lesson_edits, lessons, vehicles
from cloud_bridge.param_bounds import MAX_ROW_ID, BigIntField, RowIdField
from contracts.i18n import N_
from contracts.i18n import gettext as _

LOCAL_TZ = ZoneInfo("Europe/Ljubljana")
MAX_SIGNATURE_CHARS = 400_000  # a 600 x 200 PNG of a scribble is ~10-40 kB
SIGNATURE_PREFIX = "data:image/png;base64,"

# Lesson types of the practical part (assumed list, see docs/driving_school.md)
LESSON_TYPES: dict[str, str] = {
    "poligon": N_("Driving off public roads"),
    "promet": N_("Driving in road traffic"),
    "avtocesta": N_("Motorway driving"),
    "nocna": N_("Night driving"),
    "preizkus": N_("Check before the test"),
}

CONFLICT_RULE = N_(
    "The first edit to reach the server wins. An edit made on an older version of the "
    "lesson (because another tablet changed it meanwhile) is not applied but kept as a "
    "conflict note that the instructor and the office see.")

# Why a lesson or an edit was refused: a stable code for the tablet and a text for the
# instructor (translated when it is sent). The tablet shows it and offers to fix it.
REFUSALS: dict[str, str] = {
    "too_many_hours": N_("A lesson has at most 4 lesson hours; enter at most 4 and send "
                         "it again, or record a second lesson."),
    "too_few_hours": N_("A lesson has at least 1 lesson hour."),
    "km_order": N_("The km at the end are below the km at the start."),
    "km_range": N_("The km reading is not possible (0 to 3,000,000)."),
    "time_order": N_("The lesson ends before it starts."),
    "lesson_type": N_("This lesson type is not known; choose one from the list."),
    "signature": N_("The candidate's signature is missing."),
    "remarks": N_("The remarks are too long (at most 2000 characters)."),
    "unknown_candidate_or_vehicle": N_("The candidate or the vehicle is no longer in the "
                                      "school's list; choose another one."),
    "other_instructor": N_("This lesson belongs to another instructor."),
    "id_in_use": N_("This lesson cannot be saved under its id; record it again."),
    "invalid": N_("The tablet sent data the server cannot read; record the lesson again."),
}
# the field of the lesson each refusal is about (the tablet opens it for correcting)
REFUSAL_FIELD = {"too_many_hours": "lesson_count", "too_few_hours": "lesson_count",
                 "km_order": "km_end", "km_range": "km_end", "time_order": "ended_at",
                 "lesson_type": "lesson_type", "signature": "signature",
                 "remarks": "remarks"}


def lesson_types() -> dict[str, str]:
    """The lesson types in the reader's language."""
    return {k: _(v) for k, v in LESSON_TYPES.items()}


def conflict_rule() -> str:
    return _(CONFLICT_RULE)


def refusal(code: str) -> dict[str, str]:
    """A refused edit's ``code``, ``error`` (the reason, translated) and ``field``."""
    return {"code": code, "error": _(REFUSALS[code]), "field": REFUSAL_FIELD.get(code, "")}


def refusal_code(exc: ValidationError) -> str:
    """The first error of an edit as one of ``REFUSALS``."""
    first = exc.errors()[0]
    where = [str(p) for p in first["loc"]]
    kind = first["type"]
    if kind in REFUSALS:  # raised by a validator below with its code as the type
        return kind
    field = where[1] if len(where) > 1 and where[0] == "lesson" else ""
    if field == "lesson_count":
        return "too_many_hours" if kind.startswith("less_than") else "too_few_hours"
    if field in ("km_start", "km_end"):
        return "km_range"
    if field in ("remarks", "signature", "lesson_type"):
        return field
    return "invalid"


_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_DEVICE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def iso_ms(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def local_day(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(LOCAL_TZ) \
        .strftime("%Y-%m-%d")


class LessonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=_UUID)]
    candidate_id: RowIdField
    vehicle_id: RowIdField
    started_at: datetime
    ended_at: datetime
    lesson_count: Annotated[int, Field(ge=1, le=4)]
    lesson_type: str
    km_start: Annotated[int, Field(ge=0, le=3_000_000)]
    km_end: Annotated[int, Field(ge=0, le=3_000_000)]
    remarks: Annotated[str, Field(max_length=2000)] = ""
    signature: Annotated[str, Field(max_length=MAX_SIGNATURE_CHARS)]

    @field_validator("started_at", "ended_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("a time needs its UTC offset (…Z)")
        return v

    @field_validator("lesson_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in LESSON_TYPES:
            raise PydanticCustomError("lesson_type", "unknown lesson type")
        return v

    @field_validator("signature")
    @classmethod
    def _png(cls, v: str) -> str:
        body = v.removeprefix(SIGNATURE_PREFIX)
        if body == v or len(body) < 100 or not _B64.match(body):
            raise PydanticCustomError("signature", "the signature must be a PNG data URL")
        return v

    @model_validator(mode="after")
    def _order(self) -> LessonIn:
        if self.ended_at < self.started_at:
            raise PydanticCustomError("time_order", "a lesson cannot end before it starts")
        if self.km_end < self.km_start:
            raise PydanticCustomError("km_order", "km at the end is below km at the start")
        return self

    def row(self) -> dict[str, Any]:
        started = iso_ms(self.started_at)
        return {"candidate_id": self.candidate_id, "vehicle_id": self.vehicle_id,
                "day": local_day(started), "started_at": started,
                "ended_at": iso_ms(self.ended_at), "lesson_count": self.lesson_count,
                "lesson_type": self.lesson_type, "km_start": self.km_start,
                "km_end": self.km_end, "remarks": self.remarks.strip(),
                "signature": self.signature}


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    edit_id: Annotated[str, Field(pattern=_UUID)]
    base_version: Annotated[int, Field(ge=0, le=MAX_ROW_ID)]
    edited_ms: BigIntField
    lesson: LessonIn


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Annotated[str, Field(pattern=_DEVICE)]
    edits: Annotated[list[dict[str, Any]], Field(max_length=50)]


Outcome = Literal["applied", "conflict", "rejected"]

NOTE_FIELDS = ("candidate_id", "vehicle_id", "started_at", "ended_at", "lesson_count",
               "lesson_type", "km_start", "km_end", "remarks")


@dataclass(frozen=True, slots=True)
class Editor:
    tenant: str
    instructor_id: int
    username: str
    device: str


def lesson_out(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "candidate_id", "instructor_id", "vehicle_id", "day",
                                "started_at", "ended_at", "lesson_count", "lesson_type",
                                "km_start", "km_end", "remarks", "signature", "version",
                                "updated_ms", "updated_device")}


def note_out(row: Any) -> dict[str, Any]:
    return {"edit_id": row["edit_id"], "device": row["device"], "username": row["username"],
            "base_version": row["base_version"], "edited_ms": row["edited_ms"],
            "received_ms": row["received_ms"], "data": row["data"]}


def conflict_notes(conn: Connection, tenant: str, lesson_ids: list[str]
                   ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if not lesson_ids:
        return out
    rows = conn.execute(select(lesson_edits).where(
        lesson_edits.c.tenant == tenant, lesson_edits.c.lesson_id.in_(lesson_ids),
        lesson_edits.c.outcome == "conflict").order_by(lesson_edits.c.received_ms)).mappings()
    for r in rows:
        out.setdefault(r["lesson_id"], []).append(note_out(r))
    return out


def _result(edit_id: str, lesson_id: str, outcome: Outcome, conn: Connection, tenant: str,
            *, duplicate: bool = False, code: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"edit_id": edit_id, "lesson_id": lesson_id, "outcome": outcome,
                           "duplicate": duplicate}
    if code:
        out.update(refusal(code))
    row = conn.execute(select(lessons).where(lessons.c.tenant == tenant,
                                             lessons.c.id == lesson_id)).mappings().first()
    if row is not None:
        out["lesson"] = lesson_out(row)
        out["conflicts"] = conflict_notes(conn, tenant, [lesson_id]).get(lesson_id, [])
    return out


def _prior(conn: Connection, editor: Editor, edit_id: str, lesson_id: str
           ) -> dict[str, Any] | None:
    row = conn.execute(select(lesson_edits.c.outcome, lesson_edits.c.tenant)
                       .where(lesson_edits.c.edit_id == edit_id)).first()
    if row is None:
        return None
    if row.tenant != editor.tenant:
        return _result(edit_id, lesson_id, "rejected", conn, editor.tenant,
                       code="id_in_use")
    return _result(edit_id, lesson_id, row.outcome, conn, editor.tenant, duplicate=True)


def apply_edit(conn: Connection, editor: Editor, raw: dict[str, Any], now_ms: int
               ) -> dict[str, Any]:
    """Apply one edit inside the caller's write transaction; returns its result."""
    edit_id = str(raw.get("edit_id", ""))[:36]
    lesson_id = str((raw.get("lesson") or {}).get("id", ""))[:36] \
        if isinstance(raw.get("lesson"), dict) else ""
    try:
        edit = EditIn.model_validate(raw)
    except ValidationError as exc:
        return {"edit_id": edit_id, "lesson_id": lesson_id, "outcome": "rejected",
                "duplicate": False, **refusal(refusal_code(exc))}
    lesson = edit.lesson
    values = lesson.row()
    known = conn.execute(select(candidates.c.id).where(
        candidates.c.tenant == editor.tenant, candidates.c.id == lesson.candidate_id)).first()
    car = conn.execute(select(vehicles.c.id).where(
        vehicles.c.tenant == editor.tenant, vehicles.c.id == lesson.vehicle_id)).first()
    if known is None or car is None:
        return _result(edit.edit_id, lesson.id, "rejected", conn, editor.tenant,
                       code="unknown_candidate_or_vehicle")
    note = {k: v for k, v in values.items() if k in NOTE_FIELDS}
    record = {"edit_id": edit.edit_id, "tenant": editor.tenant, "lesson_id": lesson.id,
              "device": editor.device, "username": editor.username,
              "base_version": edit.base_version, "edited_ms": edit.edited_ms,
              "received_ms": now_ms, "data": note}

    created = conn.execute(insert_ignore(conn, lessons).values(
        id=lesson.id, tenant=editor.tenant, instructor_id=editor.instructor_id, version=1,
        updated_ms=now_ms, updated_device=editor.device, created_ms=now_ms, **values)
        .returning(lessons.c.id)).first()
    if created is not None:  # RETURNING, not rowcount: psycopg reports -1 here
        conn.execute(insert(lesson_edits).values(outcome="applied", version_after=1,
                                                 **record))
        return _result(edit.edit_id, lesson.id, "applied", conn, editor.tenant)

    # the lesson exists: lock it, then look for this very edit (it may be a resend)
    current = conn.execute(select(lessons).where(lessons.c.id == lesson.id)
                           .with_for_update()).mappings().first()
    if current is None or current["tenant"] != editor.tenant:
        return {"edit_id": edit.edit_id, "lesson_id": lesson.id, "outcome": "rejected",
                "duplicate": False, **refusal("id_in_use")}
    prior = _prior(conn, editor, edit.edit_id, lesson.id)
    if prior is not None:
        return prior
    if current["instructor_id"] != editor.instructor_id:
        return _result(edit.edit_id, lesson.id, "rejected", conn, editor.tenant,
                       code="other_instructor")
    version = int(current["version"])
    foreign = conn.execute(select(lesson_edits.c.edit_id).where(and_(
        lesson_edits.c.tenant == editor.tenant, lesson_edits.c.lesson_id == lesson.id,
        lesson_edits.c.outcome == "applied",
        lesson_edits.c.version_after > edit.base_version,
        lesson_edits.c.device != editor.device)).limit(1)).first()
    if foreign is None:
        conn.execute(update(lessons).where(lessons.c.id == lesson.id).values(
            version=version + 1, updated_ms=now_ms, updated_device=editor.device, **values))
        conn.execute(insert(lesson_edits).values(outcome="applied",
                                                 version_after=version + 1, **record))
        return _result(edit.edit_id, lesson.id, "applied", conn, editor.tenant)
    record["data"] = {**note, "signature_differs": values["signature"] != current["signature"]}
    conn.execute(insert(lesson_edits).values(outcome="conflict", version_after=version,
                                             **record))
    return _result(edit.edit_id, lesson.id, "conflict", conn, editor.tenant)
