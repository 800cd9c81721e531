"""``[pos]`` table of the device config: the taxpayer, the premise and device, FURS, the
printer and the local HTTP endpoint. Secrets are SecretStr (never in a repr or an error)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

_FURS_ID = r"^[0-9A-Za-z]{1,20}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PosHttpConfig(_Strict):
    """The POS-on-the-LAN endpoint (``POST /pos/v1/receipts``)."""

    token: SecretStr | None = Field(default=None, description="bearer token, >= 16 chars")
    token_file: str | None = None
    # by default the router joins the agent's local HTTP server ([local_http]); give a
    # bind/port to serve the POS API on its own listener (e.g. the LAN address only)
    bind: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=8 * 1024 * 1024)

    @model_validator(mode="after")
    def _one_token(self) -> PosHttpConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of 'token' or 'token_file'")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token must be at least 16 characters")
        if (self.bind is None) != (self.port is None):
            raise ValueError("give both 'bind' and 'port', or neither")
        return self


class TillCashierConfig(_Strict):
    """A cashier of the on-device till (``[[pos.till.cashiers]]``). The tax number goes to
    FURS as OperatorTaxNumber only; the PIN is an scrypt hash (contracts/pin_hash.py)."""

    id: str = Field(pattern=r"^[0-9]{1,12}$", description="the number typed at sign-in")
    name: str = Field(min_length=1, max_length=40, description="printed operator label")
    tax_number: int = Field(ge=10_000_000, le=99_999_999)
    pin_hash: SecretStr
    # the cashier's card: contracts.credential_hash(tenant HMAC key, "uid", UID), never
    # the UID itself; read at a reader with ``till = true`` it signs the cashier in
    card_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    may_discount: bool = False
    may_refund: bool = False
    may_open_drawer: bool = False  # also cash in and out
    may_close_day: bool = False


class TillConfig(_Strict):
    """The cashier's till screen served by the agent (``/till``)."""

    catalogue_file: str = Field(description="JSON catalogue: products, prices, VAT, categories")
    cashiers: list[TillCashierConfig] = Field(min_length=1, max_length=200)
    drawer_kick: bool = Field(default=True, description="open the drawer (ESC p) on cash")
    session_minutes: int = Field(default=600, ge=1, le=24 * 60)
    customer_display: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="id of a [[displays]] entry: the line the customer sees")


class PremiseAddressConfig(_Strict):
    street: str = Field(min_length=1, max_length=100)
    house_number: str = Field(min_length=1, max_length=10)
    house_number_additional: str | None = Field(default=None, max_length=10)
    community: str = Field(min_length=1, max_length=100)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(pattern=r"^\d{4}$")


class PremiseRegistrationConfig(_Strict):
    """Data for registering the business premise with FURS (spec v3.2 §3.2)."""

    cadastral_number: int | None = Field(default=None, ge=0, le=9999)
    building_number: int | None = Field(default=None, ge=0, le=99999)
    building_section_number: int | None = Field(default=None, ge=0, le=9999)
    address: PremiseAddressConfig | None = None
    movable_type: Literal["A", "B", "C"] | None = None
    validity_date: dt.date
    software_supplier_tax_number: int | None = Field(default=None, ge=10_000_000,
                                                     le=99_999_999)
    software_supplier_name: str | None = Field(default=None, max_length=1000)
    notes: str | None = Field(default=None, max_length=1000)


class PosConfig(_Strict):
    tax_number: int = Field(ge=10_000_000, le=99_999_999,
                            description="the taxpayer's 8-digit Slovenian tax number")
    vat_id: str | None = Field(default=None, pattern=r"^SI\d{8}$",
                               description="printed when the issuer is VAT-registered")
    premise_id: str = Field(pattern=_FURS_ID, description="BusinessPremiseID")
    device_id: str = Field(pattern=_FURS_ID, description="ElectronicDeviceID")
    issuer_name: str = Field(min_length=1, max_length=100)
    issuer_address: list[str] = Field(min_length=1, max_length=3)
    pkcs12_path: str
    pkcs12_password: SecretStr | None = None
    pkcs12_password_file: str | None = None
    furs_url: str = "https://blagajne-test.fu.gov.si:9002"
    furs_ca_file: str | None = Field(default=None, description="CA bundle (PEM) for the TLS "
                                     "server and the response signer")
    furs_timeout_s: float = Field(default=2.0, ge=0.2, le=30)
    retry_initial_s: float = Field(default=5.0, ge=0.05, le=3600)
    retry_max_s: float = Field(default=600.0, ge=0.1, le=86400)
    deadline_working_days: int = Field(default=2, ge=1, le=10)
    at_risk_hours: float = Field(default=8.0, ge=0, le=240)
    printer: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                         description="id of a [[printers]] entry")
    paper_width: Literal[58, 80] = 80
    http: PosHttpConfig | None = None
    premise: PremiseRegistrationConfig | None = None
    till: TillConfig | None = None

    @model_validator(mode="after")
    def _one_password(self) -> PosConfig:
        if (self.pkcs12_password is None) == (self.pkcs12_password_file is None):
            raise ValueError("give exactly one of 'pkcs12_password' or 'pkcs12_password_file'")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        return self

    @property
    def columns(self) -> int:
        return 32 if self.paper_width == 58 else 48
