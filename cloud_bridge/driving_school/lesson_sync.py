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
from sqlalchemy import Connection, and_, insert, select, update

from cloud_bridge.db_schema import insert_ignore
from cloud_bridge.driving_school.schema import candidates, lesson_edits, lessons, vehicles
from cloud_bridge.param_bounds import MAX_ROW_ID, BigIntField, RowIdField

LOCAL_TZ = ZoneInfo("Europe/Ljubljana")
MAX_SIGNATURE_CHARS = 400_000  # a 600 x 200 PNG of a scribble is ~10-40 kB
SIGNATURE_PREFIX = "data:image/png;base64,"

# Lesson types of the practical part (assumed list, see docs/driving_school.md)
LESSON_TYPES: dict[str, str] = {
    "poligon": "Vožnja na neprometni površini",
    "promet": "Vožnja v cestnem prometu",
    "avtocesta": "Vožnja po avtocesti",
    "nocna": "Nočna vožnja",
    "preizkus": "Preverjanje pred izpitom",
}

CONFLICT_RULE = (
    "Prva sprememba, ki prispe na strežnik, velja. Sprememba, narejena na starejši "
    "različici ure (ker jo je medtem spremenila druga tablica), se ne uveljavi, ampak se "
    "shrani kot opomba o sporu, ki jo vidita učitelj in pisarna. / The first edit to reach "
    "the server wins; an edit made on an older version of the lesson (another tablet "
    "changed it meanwhile) is not applied but kept as a conflict note shown on the "
    "tablet and in the office.")

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
            raise ValueError(f"unknown lesson type (known: {', '.join(LESSON_TYPES)})")
        return v

    @field_validator("signature")
    @classmethod
    def _png(cls, v: str) -> str:
        body = v.removeprefix(SIGNATURE_PREFIX)
        if body == v or len(body) < 100 or not _B64.match(body):
            raise ValueError("the candidate's signature must be a PNG data URL")
        return v

    @model_validator(mode="after")
    def _order(self) -> LessonIn:
        if self.ended_at < self.started_at:
            raise ValueError("a lesson cannot end before it starts")
        if self.km_end < self.km_start:
            raise ValueError("km at the end is below km at the start")
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
            *, duplicate: bool = False, error: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"edit_id": edit_id, "lesson_id": lesson_id, "outcome": outcome,
                           "duplicate": duplicate}
    if error:
        out["error"] = error
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
                       error="edit id already used")
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
        first = exc.errors()[0]
        return {"edit_id": edit_id, "lesson_id": lesson_id, "outcome": "rejected",
                "duplicate": False,
                "error": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}
    lesson = edit.lesson
    values = lesson.row()
    known = conn.execute(select(candidates.c.id).where(
        candidates.c.tenant == editor.tenant, candidates.c.id == lesson.candidate_id)).first()
    car = conn.execute(select(vehicles.c.id).where(
        vehicles.c.tenant == editor.tenant, vehicles.c.id == lesson.vehicle_id)).first()
    if known is None or car is None:
        return _result(edit.edit_id, lesson.id, "rejected", conn, editor.tenant,
                       error="unknown candidate or vehicle")
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
                "duplicate": False, "error": "lesson id already used"}
    prior = _prior(conn, editor, edit.edit_id, lesson.id)
    if prior is not None:
        return prior
    if current["instructor_id"] != editor.instructor_id:
        return _result(edit.edit_id, lesson.id, "rejected", conn, editor.tenant,
                       error="another instructor's lesson")
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
