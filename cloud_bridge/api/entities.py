"""What the routes of members, credentials and entitlements share: each is a row of one
table per tenant, listed by id, read one by id, and changed through membership_ops in a
transaction that also appends the change-log entry. Each entity keeps its own models,
its own checks (membership_ops) and its own response shape (``out``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, select

from cloud_bridge.api.deps import ApiContext, mutate, read
from cloud_bridge.errors import NotFound
from cloud_bridge.membership_ops import Record

OutT = TypeVar("OutT")
Row = RowMapping


@dataclass(frozen=True, slots=True)
class Entity(Generic[OutT]):
    table: Table
    what: str  # "member": used in the messages
    out: Callable[[Row, int | None], OutT]
    removed: str  # key of the delete response: "erased", "revoked", "deleted"

    def one(self, conn: Connection, tenant: str, entity_id: str) -> Row:
        row = conn.execute(select(self.table).where(
            self.table.c.tenant == tenant, self.table.c.id == entity_id)).mappings().first()
        if row is None:
            raise NotFound(f"{self.what} {entity_id!r} does not exist in tenant {tenant!r}")
        return row

    def listing(self, ctx: ApiContext, tenant: str, limit: int,
             *where: ColumnElement[bool]) -> list[OutT]:
        stmt = select(self.table).where(self.table.c.tenant == tenant, *where)
        rows = read(ctx, lambda c: c.execute(stmt.order_by(self.table.c.id).limit(limit))
                    .mappings().all())
        return [self.out(r, None) for r in rows]

    def get(self, ctx: ApiContext, tenant: str, entity_id: str,
            version: int | None = None) -> OutT:
        return self.out(read(ctx, lambda c: self.one(c, tenant, entity_id)), version)

    def create(self, ctx: ApiContext, tenant: str,
               work: Callable[[Connection], tuple[str, list[Record]]]) -> OutT:
        entity_id, version = mutate(ctx, tenant, work)
        return self.get(ctx, tenant, entity_id, version)

    def update(self, ctx: ApiContext, tenant: str, entity_id: str,
               work: Callable[[Connection], list[Record]]) -> OutT:
        _, version = mutate(ctx, tenant, lambda c: (None, work(c)))
        return self.get(ctx, tenant, entity_id, version)

    def remove(self, ctx: ApiContext, tenant: str, entity_id: str,
               work: Callable[[Connection], list[Record]]) -> dict[str, Any]:
        _, version = mutate(ctx, tenant, lambda c: (None, work(c)))
        return {self.removed: entity_id, "version": version}
