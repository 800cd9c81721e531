"""Member search: a case-folded prefix of last name, first name or e-mail, or an exact
member id, answered from the expression indexes in db_schema.py (ranges on lower(col),
never a LIKE with a leading wildcard or a table scan), paginated by offset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from cloud_bridge.db_schema import members

PAGE_SIZE = 50
_TOP = "\uffff"


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[dict[str, Any]]
    page: int
    has_next: bool


def _folded(conn: Connection, column: str) -> Any:
    expr = func.lower(members.c[column])
    # must read like the index expression for the planner to use it (see db_schema.py)
    return expr.collate("C") if conn.dialect.name == "postgresql" else expr


def _fold_query(conn: Connection, q: str) -> str:
    if conn.dialect.name == "sqlite":
        # SQLite's lower() folds ASCII only; fold the query the same way
        return "".join(c.lower() if c.isascii() else c for c in q)
    return q.lower()


def search_members(conn: Connection, tenant: str, q: str, page: int = 0,
                   page_size: int = PAGE_SIZE) -> SearchPage:
    q = q.strip()[:80]
    stmt = select(members.c.id, members.c.first_name, members.c.last_name, members.c.email,
                  members.c.blocked).where(members.c.tenant == tenant)
    if q:
        folded = _fold_query(conn, q)
        ranges = [(_folded(conn, c) >= folded) & (_folded(conn, c) < folded + _TOP)
                  for c in ("last_name", "first_name", "email")]
        stmt = stmt.where(or_(members.c.id == q, *ranges))
    order = _folded(conn, "last_name")
    stmt = stmt.order_by(order, members.c.id).offset(page * page_size).limit(page_size + 1)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return SearchPage(rows[:page_size], page, len(rows) > page_size)
