"""The theory training log (dnevnik usposabljanja): classroom sessions, who attended, and
the school hours a candidate has attended against the programme's minimum.

The minimum is from secondary sources (the Pravilnik's programme annex is not read, see
docs/driving_school.md): the general part is 16 school hours for every category
(brezstrahuzavolanom.si), the theory course (CPP) for B 24 school hours
(varnostljubljana.si). Every attended session counts, whatever its category, because the
general part is common to all categories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from cloud_bridge.driving_school.schema import candidates, theory_attendance, theory_sessions

GENERAL_PART_HOURS = 16
MINIMUM_HOURS = {"B": 24}


def minimum_hours(category: str) -> int:
    return MINIMUM_HOURS.get(category, GENERAL_PART_HOURS)


def sessions(conn: Connection, tenant: str, limit: int = 200) -> list[dict[str, Any]]:
    """The latest sessions with the number of candidates present."""
    present = (select(theory_attendance.c.session_id, func.count().label("present"))
               .where(theory_attendance.c.tenant == tenant)
               .group_by(theory_attendance.c.session_id).subquery())
    rows = conn.execute(
        select(theory_sessions, func.coalesce(present.c.present, 0).label("present"))
        .outerjoin(present, present.c.session_id == theory_sessions.c.id)
        .where(theory_sessions.c.tenant == tenant)
        .order_by(theory_sessions.c.day.desc(), theory_sessions.c.start_hm.desc())
        .limit(limit)).mappings()
    return [dict(r) for r in rows]


def attendees(conn: Connection, tenant: str, session_id: int) -> set[int]:
    return set(conn.execute(select(theory_attendance.c.candidate_id).where(
        theory_attendance.c.tenant == tenant,
        theory_attendance.c.session_id == session_id)).scalars())


def set_attendance(conn: Connection, tenant: str, session_id: int,
                   candidate_ids: set[int]) -> None:
    """Replace who attended; ids of another tenant's candidates are dropped."""
    mine = set(conn.execute(select(candidates.c.id).where(
        candidates.c.tenant == tenant, candidates.c.id.in_(candidate_ids))).scalars()) \
        if candidate_ids else set()
    conn.execute(delete(theory_attendance).where(
        theory_attendance.c.tenant == tenant, theory_attendance.c.session_id == session_id))
    if mine:
        conn.execute(insert(theory_attendance), [
            {"tenant": tenant, "session_id": session_id, "candidate_id": c}
            for c in sorted(mine)])


def candidate_theory(conn: Connection, tenant: str, candidate_id: int
                     ) -> list[dict[str, Any]]:
    """The sessions a candidate attended, oldest first."""
    rows = conn.execute(
        select(theory_sessions).join(theory_attendance, (
            theory_attendance.c.session_id == theory_sessions.c.id)
            & (theory_attendance.c.tenant == tenant))
        .where(theory_sessions.c.tenant == tenant,
               theory_attendance.c.candidate_id == candidate_id)
        .order_by(theory_sessions.c.day, theory_sessions.c.start_hm)).mappings()
    return [dict(r) for r in rows]
