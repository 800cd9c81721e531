"""The till's catalogue: products with price, VAT rate, category and barcode.

Read from the file named by ``pos.till.catalogue_file``; the till keeps selling on the
version it loaded. The products are the contract's (contracts/till_catalogue.py): prices
are decimal strings (floats refused, like print jobs), VAT rates the Slovenian ones
(agent/pos/money.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.pos.money import VatRate, to_cents
from agent.remote_config import write_atomic
from contracts.errors import BadInput, SignatureError
from contracts.signed_envelope import verify_envelope
from contracts.ticket_token import TicketKind
from contracts.till_catalogue import CataloguePayload, CatalogueProduct, CatalogueTicket

log = logging.getLogger(__name__)


class _CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=0)
    products: list[CatalogueProduct] = Field(max_length=20_000)


_KINDS = {"day": TicketKind.DAY_TICKET, "entries": TicketKind.ENTRY_VOUCHER,
          "value": TicketKind.VALUE_VOUCHER}


@dataclass(frozen=True, slots=True)
class TicketSpec:
    """What a ticket product grants (contracts/till_catalogue.CatalogueTicket)."""

    kind: TicketKind
    entries: int
    valid_days: int
    value_cents: int

    @staticmethod
    def of(ticket: CatalogueTicket | None) -> TicketSpec | None:
        if ticket is None:
            return None
        value = 0 if ticket.value is None else to_cents(Decimal(ticket.value))
        return TicketSpec(_KINDS[ticket.kind], ticket.entries, ticket.valid_days, value)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.name.lower(), "entries": self.entries,
                "valid_days": self.valid_days, "value_cents": self.value_cents}


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    price_cents: int
    rate: VatRate
    category: str
    barcode: str | None
    ticket: TicketSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "price_cents": self.price_cents,
            "vat": self.rate.value, "vat_label": self.rate.label, "category": self.category,
            "barcode": self.barcode}
        if self.ticket is not None:
            out["ticket"] = self.ticket.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: int
    products: dict[str, Product]
    by_barcode: dict[str, Product]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version,
                "products": [p.to_dict() for p in self.products.values()]}


def parse_catalogue(raw: Any, where: str) -> Catalogue:
    try:
        data = _CatalogueIn.model_validate(raw)
        products = {p.id: Product(p.id, p.name, to_cents(Decimal(p.price)), VatRate.parse(p.vat),
                                  p.category, p.barcode, TicketSpec.of(p.ticket))
                    for p in data.products}
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{where}: not a valid till catalogue: {exc}") from None
    if len(products) != len(data.products):
        raise ConfigError(f"{where}: product ids must be unique")
    barcodes = {p.barcode: p for p in products.values() if p.barcode}
    return Catalogue(data.version, products, barcodes)


def open_signed(data: bytes, public_key: bytes, tenant: str, where: str) -> Catalogue:
    """A catalogue from the bridge: the tenant's signature checked before anything is read."""
    try:
        payload = CataloguePayload.model_validate_json(
            verify_envelope(data, Ed25519PublicKey.from_public_bytes(public_key)))
    except (BadInput, SignatureError, ValidationError) as exc:
        raise ConfigError(f"{where}: till catalogue refused: {exc}") from None
    if payload.tenant != tenant:
        raise ConfigError(f"{where}: till catalogue of tenant '{payload.tenant}', this device "
                          f"belongs to '{tenant}'")
    return parse_catalogue({"version": payload.version, "products": [
        p.model_dump(exclude_none=True) for p in payload.products]}, where)


def load_catalogue(path: Path, public_key: bytes | None = None, tenant: str = "") -> Catalogue:
    """The catalogue file: a signed envelope from the bridge whenever the device has the
    tenant's public key (then an unsigned file is refused, and a missing one is an empty
    catalogue of version 0 until the bridge's arrives), plain JSON only without one (a
    demo or a bench device)."""
    if public_key is not None and not path.exists():
        # a till fed by the bridge may be installed without one: it starts with no
        # products (version 0) and takes the bridge's first version
        log.warning("%s: no till catalogue yet; waiting for the bridge's", path)
        return Catalogue(0, {}, {})
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the till catalogue: {exc.strerror}") from None
    if public_key is not None:
        return open_signed(data, public_key, tenant, str(path))
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: cannot read the till catalogue: {exc}") from None
    return parse_catalogue(raw, str(path))


class StaleCatalogue(ConfigError):
    """A signed catalogue whose version is not newer than the one the till sells on."""

    def __init__(self, version: int, current: int) -> None:
        super().__init__(f"catalogue update: version {version} is not newer than "
                         f"version {current}")
        self.version = version
        self.current = current


class CatalogueUpdates:
    """A newer signed catalogue from the bridge replaces the file (atomically) and the
    till's catalogue; an older or equal version, a bad signature or another tenant's
    catalogue is refused and the till keeps selling on the version it has."""

    def __init__(self, path: Path, public_key: bytes | None, tenant: str) -> None:
        self.path = path
        self.public_key = public_key
        self.tenant = tenant

    def accept(self, data: bytes, current: Catalogue) -> Catalogue:
        if self.public_key is None:
            raise ConfigError("this device has no tenant public key: catalogue updates are "
                              "refused (keys.tenant_public_key)")
        new = open_signed(data, self.public_key, self.tenant, "catalogue update")
        if new.version <= current.version:
            raise StaleCatalogue(new.version, current.version)
        write_atomic(self.path, data)
        return new
