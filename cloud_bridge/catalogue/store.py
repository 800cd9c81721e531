"""The tenant's till catalogue on the bridge: its products as staff edit them, and a
numbered version of the whole catalogue for every saved change.

A product is added, edited, retired or offered again in one transaction with the
catalogue version it makes: the version holds the active products in the contract's form
(contracts/till_catalogue.py) and counts up per tenant from 1, never reused, so a till
can refuse anything not newer than what it sells on. The publisher
(cloud_bridge/catalogue/publisher.py) signs the newest version and hands it to the
devices.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import create_tables, write_tx
from cloud_bridge.errors import Conflict
from contracts.till_catalogue import CatalogueProduct, CatalogueTicket

catalogue_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676563617421  # pg advisory lock id ("edgecat!")

till_products = Table(
    "till_products", catalogue_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("barcode", String(32), nullable=True),
    Column("price_cents", Integer, nullable=False),
    Column("vat", String(8), nullable=False),  # contracts.till_catalogue.VAT_RATES
    Column("category", String(40), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# a product that is a ticket or voucher (issue 22 part 6); its own table so that
# databases made before it need no column migration (create_all adds the table)
till_product_tickets = Table(
    "till_product_tickets", catalogue_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("kind", String(8), nullable=False),  # day | entries | value
    Column("entries", Integer, nullable=False),
    Column("valid_days", Integer, nullable=False),
    Column("value_cents", Integer, nullable=False),
)

till_catalogue_versions = Table(
    "till_catalogue_versions", catalogue_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("products", JSON, nullable=False),  # the active products, contract form
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(120), nullable=False),
)


class CatalogueConflict(Conflict):
    """The change clashes with another product (``field`` names the form field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def ensure_catalogue_schema(engine: Engine) -> None:
    create_tables(engine, catalogue_metadata, _SCHEMA_LOCK)


@dataclass(frozen=True, slots=True)
class TicketFields:
    """A ticket product: what the printed code grants (contracts/till_catalogue.py)."""

    kind: str  # day | entries | value
    entries: int
    valid_days: int
    value_cents: int

    def for_device(self) -> CatalogueTicket:
        value = None
        if self.kind == "value":
            whole, cents = divmod(self.value_cents, 100)
            value = f"{whole}.{cents:02d}"
        return CatalogueTicket(kind=self.kind,  # type: ignore[arg-type]
                               entries=self.entries, valid_days=self.valid_days, value=value)


@dataclass(frozen=True, slots=True)
class ProductFields:
    """What staff set on a product (checked by the page's form)."""

    name: str
    barcode: str | None
    price_cents: int
    vat: str
    category: str
    ticket: TicketFields | None = None


@dataclass(frozen=True, slots=True)
class StoredProduct:
    id: str
    fields: ProductFields
    active: bool
    updated_ms: int

    def for_device(self) -> CatalogueProduct:
        f = self.fields
        whole, cents = divmod(f.price_cents, 100)
        return CatalogueProduct(id=self.id, name=f.name, price=f"{whole}.{cents:02d}",
                                vat=f.vat, category=f.category, barcode=f.barcode,
                                ticket=None if f.ticket is None else f.ticket.for_device())


@dataclass(frozen=True, slots=True)
class CatalogueVersion:
    tenant: str
    version: int
    products: list[CatalogueProduct]
    created_ms: int
    created_by: str


Audit = Callable[[Connection, str, int], None]  # (conn, product id, new version)


def _stored(row: Any) -> StoredProduct:
    ticket = None
    if row.kind is not None:
        ticket = TicketFields(row.kind, int(row.entries), int(row.valid_days),
                              int(row.value_cents))
    return StoredProduct(row.id, ProductFields(row.name, row.barcode, int(row.price_cents),
                                               row.vat, row.category, ticket),
                         bool(row.active), int(row.updated_ms))


def _with_tickets() -> Any:
    t = till_product_tickets
    return select(till_products, t.c.kind, t.c.entries, t.c.valid_days, t.c.value_cents
                  ).select_from(till_products.outerjoin(t, (t.c.tenant == till_products.c.tenant)
                                                        & (t.c.id == till_products.c.id)))


def list_products(conn: Connection, tenant: str) -> list[StoredProduct]:
    """Every product of the tenant, retired ones too, by category and name."""
    rows = conn.execute(_with_tickets().where(till_products.c.tenant == tenant)
                        .order_by(till_products.c.category, till_products.c.name))
    return [_stored(r) for r in rows]


def get_product(conn: Connection, tenant: str, product_id: str) -> StoredProduct | None:
    row = conn.execute(_with_tickets().where(
        till_products.c.tenant == tenant, till_products.c.id == product_id)).first()
    return None if row is None else _stored(row)


def _save_ticket(conn: Connection, tenant: str, product_id: str,
                 ticket: TicketFields | None) -> None:
    t = till_product_tickets
    conn.execute(delete(t).where(t.c.tenant == tenant, t.c.id == product_id))
    if ticket is not None:
        conn.execute(insert(t).values(tenant=tenant, id=product_id, kind=ticket.kind,
                                      entries=ticket.entries, valid_days=ticket.valid_days,
                                      value_cents=ticket.value_cents))


def save_product(engine: Engine, tenant: str, product_id: str | None, fields: ProductFields,
                 *, by: str, now_ms: int, audit: Audit | None = None) -> tuple[str, int]:
    """Add (``product_id`` None) or change a product; returns (its id, the new catalogue
    version). CatalogueConflict when its barcode is another active product's; LookupError
    when ``product_id`` is not the tenant's."""
    new_id = product_id or f"p{uuid.uuid4().hex[:12]}"

    def change(conn: Connection) -> None:
        _check_barcode(conn, tenant, new_id, fields.barcode)
        values = {"name": fields.name, "barcode": fields.barcode,
                  "price_cents": fields.price_cents, "vat": fields.vat,
                  "category": fields.category, "updated_ms": now_ms}
        if product_id is None:
            conn.execute(insert(till_products).values(tenant=tenant, id=new_id, active=True,
                                                      **values))
        elif not conn.execute(update(till_products).where(
                till_products.c.tenant == tenant,
                till_products.c.id == product_id).values(**values)).rowcount:
            raise LookupError(product_id)
        _save_ticket(conn, tenant, new_id, fields.ticket)

    return new_id, _new_version(engine, tenant, new_id, change, by, now_ms, audit)


def set_active(engine: Engine, tenant: str, product_id: str, active: bool, *, by: str,
               now_ms: int, audit: Audit | None = None) -> int:
    """Retire a product (the tills stop offering it) or offer it again; the new version.
    LookupError when it is not the tenant's; CatalogueConflict when offering it again
    would give its barcode to two products."""
    def change(conn: Connection) -> None:
        product = get_product(conn, tenant, product_id)
        if product is None:
            raise LookupError(product_id)
        if active:
            _check_barcode(conn, tenant, product_id, product.fields.barcode)
        conn.execute(update(till_products).where(
            till_products.c.tenant == tenant, till_products.c.id == product_id).values(
            active=active, updated_ms=now_ms))

    return _new_version(engine, tenant, product_id, change, by, now_ms, audit)


def _check_barcode(conn: Connection, tenant: str, product_id: str,
                   barcode: str | None) -> None:
    if barcode is None:
        return
    other = conn.execute(select(till_products.c.name).where(
        till_products.c.tenant == tenant, till_products.c.barcode == barcode,
        till_products.c.active.is_(True), till_products.c.id != product_id)).scalar()
    if other is not None:
        raise CatalogueConflict("barcode", other)


def _new_version(engine: Engine, tenant: str, product_id: str,
                 change: Callable[[Connection], None], by: str, now_ms: int,
                 audit: Audit | None) -> int:
    """Run ``change`` and record the catalogue it leaves as the next version, together."""
    for _attempt in range(3):  # two editors at once: the loser takes the next number
        try:
            with write_tx(engine) as conn:
                change(conn)
                last = conn.execute(select(func.max(till_catalogue_versions.c.version)).where(
                    till_catalogue_versions.c.tenant == tenant)).scalar()
                version = int(last or 0) + 1
                products = [p.for_device().model_dump(mode="json", exclude_none=True)
                            for p in list_products(conn, tenant) if p.active]
                conn.execute(insert(till_catalogue_versions).values(
                    tenant=tenant, version=version, products=products, created_ms=now_ms,
                    created_by=by[:120]))
                if audit is not None:
                    audit(conn, product_id, version)
            return version
        except IntegrityError:
            continue
    raise CatalogueConflict("__all__", "changed by someone else at the same moment")


def latest_versions(conn: Connection) -> dict[str, int]:
    """tenant -> its newest catalogue version, for every tenant that has one."""
    stmt = select(till_catalogue_versions.c.tenant,
                  func.max(till_catalogue_versions.c.version)).group_by(
        till_catalogue_versions.c.tenant)
    return {t: int(v) for t, v in conn.execute(stmt)}


def get_version(conn: Connection, tenant: str, version: int | None = None
                ) -> CatalogueVersion | None:
    """The tenant's newest catalogue version (or ``version``); None if there is none."""
    stmt = select(till_catalogue_versions).where(till_catalogue_versions.c.tenant == tenant)
    if version is not None:
        stmt = stmt.where(till_catalogue_versions.c.version == version)
    row = conn.execute(stmt.order_by(till_catalogue_versions.c.version.desc()).limit(1)).first()
    if row is None:
        return None
    return CatalogueVersion(tenant, int(row.version),
                            [CatalogueProduct.model_validate(p) for p in row.products],
                            int(row.created_ms), row.created_by)
