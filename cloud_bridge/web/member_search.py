"""Member search, answered from the expression indexes in db_schema.py: ranges on
lower(column) ordered by (lower(column), id), so a page costs an index range read of
page-size rows however many members match (no LIKE '%…', no sort of all matches).

What a query means:
- an exact member id is listed first;
- otherwise the first field with any match, in this order: last-name prefix, first-name
  prefix, e-mail prefix;
- two or more words ("novak a") are a last-name prefix and a first-name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from cloud_bridge.db_schema import members

PAGE_SIZE = 50
_TOP = "\uffff"
FIELDS = ("last_name", "first_name", "email")


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[dict[str, Any]]
    page: int
    has_next: bool
    field: str | None  # the field that matched


def _folded(conn: Connection, column: str) -> Any:
    expr = func.lower(members.c[column])
    # must read like the index expression for the planner to use it (see db_schema.py)
    return expr.collate("C") if conn.dialect.name == "postgresql" else expr


def _fold_query(conn: Connection, q: str) -> str:
    if conn.dialect.name == "sqlite":
        # SQLite's lower() folds ASCII only; fold the query the same way
        return "".join(c.lower() if c.isascii() else c for c in q)
    return q.lower()


def _prefix(conn: Connection, column: str, text: str) -> Any:
    folded = _fold_query(conn, text)
    return (_folded(conn, column) >= folded) & (_folded(conn, column) < folded + _TOP)


def _base() -> Any:
    return select(members.c.id, members.c.first_name, members.c.last_name, members.c.email,
                  members.c.blocked)


def search_members(conn: Connection, tenant: str, q: str, page: int = 0,
                   page_size: int = PAGE_SIZE) -> SearchPage:
    q = " ".join(q.split())[:80]
    offset, limit = page * page_size, page_size + 1

    def fetch(column: str, *conds: Any) -> list[dict[str, Any]]:
        stmt = (_base().where(members.c.tenant == tenant, *conds)
                .order_by(_folded(conn, column), members.c.id).offset(offset).limit(limit))
        return [dict(r) for r in conn.execute(stmt).mappings()]

    if not q:
        rows, field = fetch("last_name"), None
    else:
        words = q.split(" ")
        exact = [] if page else [dict(r) for r in conn.execute(
            _base().where(members.c.tenant == tenant, members.c.id == q)).mappings()]
        rows, field = [], None
        if len(words) > 1:
            rows = fetch("last_name", _prefix(conn, "last_name", words[0]),
                         _prefix(conn, "first_name", " ".join(words[1:])))
            field = "last_name first_name"
        else:
            # the field is chosen by an index probe, so every page uses the same one
            for column in FIELDS:
                cond = _prefix(conn, column, q)
                if conn.execute(select(members.c.id).where(members.c.tenant == tenant, cond)
                                .limit(1)).first() is not None:
                    rows, field = fetch(column, cond), column
                    break
        rows = exact + [r for r in rows if not exact or r["id"] != exact[0]["id"]]
    return SearchPage(rows[:page_size], page, len(rows) > page_size, field)
