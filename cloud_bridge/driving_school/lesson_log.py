"""Reading the lesson log: per candidate, per instructor and day, as rows for the pages
and as CSV; and the candidate's record-card data (evidenčni karton vožnje)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from cloud_bridge.driving_school.lesson_sync import LOCAL_TZ, conflict_notes, lesson_types
from cloud_bridge.driving_school.schema import (
    candidates,
    courses,
    instructors,
    lessons,
    vehicles,
)

CSV_COLUMNS = ("datum", "zacetek", "konec", "kandidat", "evidencna_st", "ucitelj",
               "vozilo", "vrsta_ure", "st_ur", "km_zacetek", "km_konec", "km", "opombe",
               "podpisano", "razlicica", "spori")


def local_hm(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(LOCAL_TZ) \
        .strftime("%H:%M")


def log_rows(conn: Connection, tenant: str, *, candidate_id: int | None = None,
             instructor_id: int | None = None, day: str | None = None
             ) -> list[dict[str, Any]]:
    """Lessons with names resolved and their conflict notes, oldest first."""
    stmt = (select(lessons, candidates.c.first_name, candidates.c.last_name,
                   candidates.c.register_no, instructors.c.name.label("instructor"),
                   vehicles.c.registration)
            .join(candidates, candidates.c.id == lessons.c.candidate_id)
            .join(instructors, instructors.c.id == lessons.c.instructor_id)
            .join(vehicles, vehicles.c.id == lessons.c.vehicle_id)
            .where(lessons.c.tenant == tenant))
    if candidate_id is not None:
        stmt = stmt.where(lessons.c.candidate_id == candidate_id)
    if instructor_id is not None:
        stmt = stmt.where(lessons.c.instructor_id == instructor_id)
    if day is not None:
        stmt = stmt.where(lessons.c.day == day)
    rows = [dict(r) for r in conn.execute(stmt.order_by(lessons.c.started_at)).mappings()]
    notes = conflict_notes(conn, tenant, [r["id"] for r in rows])
    types = lesson_types()
    for r in rows:
        r["candidate"] = f"{r['last_name']} {r['first_name']}"
        r["start_hm"], r["end_hm"] = local_hm(r["started_at"]), local_hm(r["ended_at"])
        r["type_label"] = types.get(r["lesson_type"], r["lesson_type"])
        r["km"] = r["km_end"] - r["km_start"]
        r["conflicts"] = notes.get(r["id"], [])
    return rows


def log_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")  # Slovenian Excel expects ";" (decimal comma)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        notes = " | ".join(f"{n['device']} {n['username']}: km {n['data']['km_start']}-"
                           f"{n['data']['km_end']}, {n['data']['remarks']}"
                           for n in r["conflicts"])
        w.writerow([r["day"], r["start_hm"], r["end_hm"], r["candidate"], r["register_no"],
                    r["instructor"], r["registration"], r["type_label"], r["lesson_count"],
                    r["km_start"], r["km_end"], r["km"], r["remarks"],
                    "da" if r["signature"] else "ne", r["version"], notes])
    # BOM: Excel opens UTF-8 CSV with č š ž correctly only with it
    return "\ufeff" + out.getvalue()


def record_card(conn: Connection, tenant: str, candidate_id: int, school: str
                ) -> dict[str, Any] | None:
    """The candidate's basic data for the record card, as sent to the office printer."""
    c = conn.execute(select(candidates).where(candidates.c.tenant == tenant,
                                              candidates.c.id == candidate_id)
                     ).mappings().first()
    if c is None:
        return None
    course = conn.execute(select(courses).where(
        courses.c.tenant == tenant, courses.c.candidate_id == candidate_id)
        .order_by(courses.c.id.desc()).limit(1)).mappings().first()
    teacher = conn.execute(select(instructors.c.name, instructors.c.licence_no).where(
        instructors.c.tenant == tenant, instructors.c.id == c["instructor_id"])).first() \
        if c["instructor_id"] else None
    rows = log_rows(conn, tenant, candidate_id=candidate_id)
    return {
        "school": school,
        "register_no": c["register_no"],
        "first_name": c["first_name"], "last_name": c["last_name"],
        "birth_date": c["birth_date"], "birth_place": c["birth_place"],
        "emso": c["emso"], "address": c["address"], "phone": c["phone"],
        "category": course["category"] if course else "",
        "started_on": course["started_on"] if course else "",
        "theory_done_on": course["theory_done_on"] if course else "",
        "theory_exam_on": course["theory_exam_on"] if course else "",
        "first_aid_on": course["first_aid_on"] if course else "",
        "medical_valid_until": course["medical_valid_until"] if course else "",
        "required_lessons": course["required_lessons"] if course else 0,
        "finished_on": course["finished_on"] if course else "",
        "instructor": teacher.name if teacher else "",
        "instructor_licence": teacher.licence_no if teacher else "",
        "lessons_done": sum(r["lesson_count"] for r in rows),
        "km_total": sum(r["km"] for r in rows),
        "last_lesson_day": rows[-1]["day"] if rows else "",
        "lessons": [{"day": r["day"], "start": r["start_hm"], "end": r["end_hm"],
                     "count": r["lesson_count"], "type": r["lesson_type"],
                     "vehicle": r["registration"], "km": r["km"]} for r in rows],
    }
