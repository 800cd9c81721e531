"""The till catalogue as it travels from the bridge to a device: a versioned payload in a
tenant-signed Ed25519 envelope (contracts/signed_envelope.py, like membership data).
The device verifies the signature with the tenant's public key, checks the tenant, and
never goes back to a lower version."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KIND: Literal["till_catalogue"] = "till_catalogue"
# the Slovenian VAT rates as a catalogue names them (ZDDV-1 art. 41/41.a; agent/pos/money.py
# VatRate): 22 % standard, 9.5 % reduced, 5 % and exempt supplies
VAT_RATES: tuple[str, ...] = ("22", "9.5", "5", "exempt")
# the largest signed catalogue a device takes from the broker
MAX_CATALOGUE_BYTES = 4 * 1024 * 1024


# the longest validity a ticket sold at a till may have (about ten years)
MAX_TICKET_DAYS = 3660


class CatalogueTicket(BaseModel):
    """A product that is a printed ticket or voucher (contracts/ticket_token.py): a till
    sells it as a fiscal receipt line and prints a signed QR code with it.

    ``day``: entries during ``valid_days`` local days from the sale (a day ticket, or a
    pass of N days); ``entries``: a number of entries (a gift of N visits) within
    ``valid_days``; ``value``: a gift voucher worth ``value`` euros within ``valid_days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["day", "entries", "value"]
    entries: int = Field(default=0, ge=0, le=0xFFFF)
    valid_days: int = Field(ge=1, le=MAX_TICKET_DAYS)
    value: str | None = Field(default=None, pattern=r"^\d{1,7}(\.\d{1,2})?$",
                              description="euros, value vouchers only")

    @model_validator(mode="after")
    def _consistent(self) -> CatalogueTicket:
        if self.kind == "value":
            if self.value is None or Decimal(self.value) <= 0 or self.entries:
                raise ValueError("a value voucher has a value above 0 and no entries")
        elif self.value is not None or self.entries < 1:
            raise ValueError("a day ticket or entry voucher has at least one entry and no "
                             "value")
        return self


class CatalogueProduct(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    price: str = Field(pattern=r"^\d{1,10}(\.\d{1,2})?$", description="euros, e.g. \"1.80\"")
    vat: str = Field(min_length=1, max_length=16, description="22, 9.5, 5 or exempt")
    category: str = Field(default="", max_length=40)
    barcode: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{4,32}$")
    ticket: CatalogueTicket | None = None


class CataloguePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["till_catalogue"] = KIND
    tenant: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    products: list[CatalogueProduct] = Field(max_length=20_000)
