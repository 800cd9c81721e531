"""Request and response bodies of the JSON API, validated with pydantic.

Clear card UIDs and codes are accepted only on the way in (to be hashed with the
tenant's key); no response ever contains them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cloud_bridge.param_bounds import MAX_BIGINT
from contracts.credential_format import MAX_QR_LEN, normalise_uid
from contracts.membership_changes import WindowSpec

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Epoch = Annotated[int, Field(ge=0, le=2**40)]
EntitlementKind = Literal["membership", "punch_card", "day_ticket", "gift_voucher"]
CredentialKind = Literal["card", "qr", "voucher", "phone"]
CommandName = Literal["open", "reload", "resend-state"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


FirstName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
LastName = Annotated[str, StringConstraints(max_length=80)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,189}$", max_length=254)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()/-]{3,32}$")]
Pin = Annotated[str, StringConstraints(pattern=r"^\d{4,8}$")]
MemberLanguage = Literal["sl", "en"]  # of the member's notices (contracts.i18n.LANGUAGES)


class MemberIn(_In):
    id: Id | None = None
    first_name: FirstName
    last_name: LastName = ""
    email: Email | None = None
    phone: Phone | None = None
    waiver_signed_on: date | None = None
    blocked: bool = False
    pin: Pin | None = Field(default=None, description="time-clock PIN; stored as scrypt hash")
    language: MemberLanguage = Field(default="sl", description="language of the member's "
                                     "notices (e-mail, SMS)")


class MemberPatch(_In):
    first_name: FirstName | None = None
    last_name: LastName | None = None
    email: Email | None = None
    phone: Phone | None = None
    waiver_signed_on: date | None = None
    blocked: bool | None = None
    pin: Pin | None = Field(default=None, description="null removes the PIN")
    language: MemberLanguage | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> MemberPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        if "first_name" in self.model_fields_set and self.first_name is None:
            raise ValueError("first_name cannot be removed")
        if "blocked" in self.model_fields_set and self.blocked is None:
            raise ValueError("blocked must be true or false")
        if "language" in self.model_fields_set and self.language is None:
            raise ValueError("language must be 'sl' or 'en'")
        return self


class MemberOut(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    waiver_signed_on: str | None
    blocked: bool
    has_pin: bool
    language: str = "sl"
    version: int | None = None  # change-log version that carried this change


class CredentialIn(_In):
    id: Id | None = None
    member_id: Id
    kind: CredentialKind
    uid: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="card UID as read (hex, separators allowed); kind card")
    code: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QR_LEN)] | None = Field(
        default=None, description="static QR/voucher code; kind qr without code = signed "
        "QR tokens only")
    public_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")] | None = Field(
        default=None, description="kind phone: the member app's Ed25519 public key, 32 bytes "
        "in hex (docs/phone_nfc.md)")
    blocked: bool = False

    @model_validator(mode="after")
    def _kind_fits(self) -> CredentialIn:
        if (self.kind == "phone") != (self.public_key is not None):
            raise ValueError("public_key is for phone credentials, and a phone needs it")
        if self.kind == "phone":
            if self.uid is not None or self.code is not None:
                raise ValueError("a phone credential takes public_key, not uid or code")
            return self
        if self.kind == "card":
            if self.uid is None or self.code is not None:
                raise ValueError("a card credential needs uid (and no code)")
            if normalise_uid(self.uid) is None:
                raise ValueError("uid must be 4-10 bytes of hex (separators ':', '-', ' ' allowed)")
        else:
            if self.uid is not None:
                raise ValueError(f"a {self.kind} credential takes code, not uid")
            if self.kind == "voucher" and self.code is None:
                raise ValueError("a voucher credential needs its code")
            if self.code is not None and not self.code.isprintable():
                raise ValueError("code has control characters")
        return self


class CredentialPatch(_In):
    blocked: bool


class CredentialOut(BaseModel):
    id: str
    member_id: str
    kind: str
    hash_ref: str | None  # short, non-reversible reference to the keyed hash
    signed_qr_only: bool
    blocked: bool
    version: int | None = None


class EntitlementFields(_In):
    member_id: Id
    kind: EntitlementKind
    valid_from: Epoch | None = None
    valid_to: Epoch | None = None
    valid_on: date | None = None
    entries_total: Annotated[int, Field(ge=0, le=100_000)] | None = None
    zones: Annotated[list[Id], Field(max_length=64)] | None = None
    windows: Annotated[list[WindowSpec], Field(max_length=64)] = []
    frozen_from: Epoch | None = None
    frozen_to: Epoch | None = None
    credential_id: Id | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EntitlementFields:
        if self.valid_from is not None and self.valid_to is not None \
                and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from (it is exclusive)")
        if self.frozen_to is not None:
            if self.frozen_from is None:
                raise ValueError("frozen_to needs frozen_from")
            if self.frozen_to <= self.frozen_from:
                raise ValueError("frozen_to must be after frozen_from (it is exclusive)")
        if self.kind == "day_ticket" and self.valid_on is None:
            raise ValueError("a day_ticket needs valid_on (the local date it is valid)")
        if self.kind in ("punch_card", "gift_voucher") and self.entries_total is None:
            raise ValueError(f"a {self.kind} needs entries_total")
        for w in self.windows:
            for t in (w.start, w.end):
                hh, mm = int(t[:2]), int(t[3:])
                if hh > 23 or mm > 59:
                    raise ValueError(f"window time {t} is not a wall-clock time")
        return self


class EntitlementIn(EntitlementFields):
    id: Id | None = None


class EntitlementPatch(_In):
    """Any field of an entitlement; the result is validated as a whole."""

    kind: EntitlementKind | None = None
    valid_from: Epoch | None = None
    valid_to: Epoch | None = None
    valid_on: date | None = None
    entries_total: Annotated[int, Field(ge=0, le=100_000)] | None = None
    zones: Annotated[list[Id], Field(max_length=64)] | None = None
    windows: Annotated[list[WindowSpec], Field(max_length=64)] | None = None
    frozen_from: Epoch | None = None
    frozen_to: Epoch | None = None
    credential_id: Id | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> EntitlementPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


class EntitlementOut(BaseModel):
    id: str
    member_id: str
    kind: str
    valid_from: int | None
    valid_to: int | None
    valid_on: str | None
    entries_total: int | None
    zones: list[str] | None
    windows: list[dict[str, Any]]
    frozen_from: int | None
    frozen_to: int | None
    credential_id: str | None
    used_by_device: dict[str, int]
    version: int | None = None


class CommandIn(_In):
    name: CommandName
    args: dict[str, Any] = {}


class CommandOut(BaseModel):
    request_id: str
    device: str
    name: str
    args: dict[str, Any]
    sent_at: int
    expires_at: int | None  # None: sent before commands carried an expiry
    answered: bool
    ok: bool | None
    result: dict[str, Any] | None
    error: str | None
    outcome: Literal["pending", "ok", "error", "expired"]


class PruneIn(_In):
    keep: Annotated[int, Field(ge=0, le=MAX_BIGINT)]
