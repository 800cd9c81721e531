"""The till's catalogue: products with price, VAT rate, category and barcode.

Read from the JSON file named by ``pos.till.catalogue_file``; the till keeps selling on
the version it loaded. Validated with pydantic at this edge: prices are decimal strings
(floats refused, like print jobs), VAT rates are the Slovenian ones (agent/pos/money.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.pos.job import money_value
from agent.pos.money import VatRate, to_cents


class _ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    price: Annotated[Any, BeforeValidator(money_value)]
    vat: str
    category: str = Field(default="", max_length=40)
    barcode: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{4,32}$")


class _CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=0)
    products: list[_ProductIn] = Field(max_length=20_000)


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    price_cents: int
    rate: VatRate
    category: str
    barcode: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "price_cents": self.price_cents,
                "vat": self.rate.value, "vat_label": self.rate.label,
                "category": self.category, "barcode": self.barcode}


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
        products = {p.id: Product(p.id, p.name, to_cents(p.price), VatRate.parse(p.vat),
                                  p.category, p.barcode) for p in data.products}
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{where}: not a valid till catalogue: {exc}") from None
    if len(products) != len(data.products):
        raise ConfigError(f"{where}: product ids must be unique")
    barcodes = {p.barcode: p for p in products.values() if p.barcode}
    return Catalogue(data.version, products, barcodes)


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the till catalogue: {exc}") from None
    return parse_catalogue(raw, str(path))
