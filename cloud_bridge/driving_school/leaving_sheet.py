"""The izpisni list: when a candidate moves to another driving school, the school issues
a sheet with what the candidate has done so far (the record card's data, the theory
hours attended, the driving lessons), records the leaving (``ds_leavings``) and takes
the candidate off the active list. Issuing again keeps the first record."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, select, update

from cloud_bridge.db_schema import insert_ignore
from cloud_bridge.driving_school import theory_log
from cloud_bridge.driving_school.lesson_log import record_card
from cloud_bridge.driving_school.schema import candidates, leavings


def record_leaving(conn: Connection, tenant: str, candidate_id: int, left_on: str,
                   to_school: str, issued_by: str) -> None:
    conn.execute(insert_ignore(conn, leavings).values(
        tenant=tenant, candidate_id=candidate_id, left_on=left_on, to_school=to_school,
        issued_by=issued_by, issued_ms=int(time.time() * 1000)))
    conn.execute(update(candidates).where(candidates.c.tenant == tenant,
                                          candidates.c.id == candidate_id)
                 .values(active=False))


def leaving_sheet(conn: Connection, tenant: str, candidate_id: int, school: str
                  ) -> dict[str, Any] | None:
    """The sheet's data, or None when the candidate has not left (or is not ours)."""
    left = conn.execute(select(leavings).where(
        leavings.c.tenant == tenant, leavings.c.candidate_id == candidate_id)
    ).mappings().first()
    card = record_card(conn, tenant, candidate_id, school)
    if left is None or card is None:
        return None
    theory = theory_log.candidate_theory(conn, tenant, candidate_id)
    return {**card, "left_on": left["left_on"], "to_school": left["to_school"],
            "issued_by": left["issued_by"], "issued_ms": left["issued_ms"],
            "theory_hours": sum(t["hours"] for t in theory),
            "theory_minimum": theory_log.minimum_hours(card["category"] or "B")}
