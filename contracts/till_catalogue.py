"""The till catalogue as it travels from the bridge to a device: a versioned payload in a
tenant-signed Ed25519 envelope (contracts/signed_envelope.py, like membership data).
The device verifies the signature with the tenant's public key, checks the tenant, and
never goes back to a lower version."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KIND: Literal["till_catalogue"] = "till_catalogue"
# the Slovenian VAT rates as a catalogue names them (ZDDV-1 art. 41/41.a; agent/pos/money.py
# VatRate): 22 % standard, 9.5 % reduced, 5 % and exempt supplies
VAT_RATES: tuple[str, ...] = ("22", "9.5", "5", "exempt")
# the largest signed catalogue a device takes from the broker
MAX_CATALOGUE_BYTES = 4 * 1024 * 1024


class CatalogueProduct(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    price: str = Field(pattern=r"^\d{1,10}(\.\d{1,2})?$", description="euros, e.g. \"1.80\"")
    vat: str = Field(min_length=1, max_length=16, description="22, 9.5, 5 or exempt")
    category: str = Field(default="", max_length=40)
    barcode: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{4,32}$")


class CataloguePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["till_catalogue"] = KIND
    tenant: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    products: list[CatalogueProduct] = Field(max_length=20_000)
