"""Membership change records: what a signed change batch or snapshot carries from the
bridge to the devices (docs/protocol.md). Validation only; the agent's store applies them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

EntityId = Annotated[str, Field(min_length=1, max_length=64)]


class ChangeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(ChangeRecord):
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1)
    start: Annotated[str, Field(pattern=r"^\d\d:\d\d$")]
    end: Annotated[str, Field(pattern=r"^\d\d:\d\d$")]


PinHash = Annotated[str, Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$",
                                max_length=200)]


class MemberUpsert(ChangeRecord):
    entity: Literal["member"]
    op: Literal["upsert"]
    id: EntityId
    first_name: Annotated[str, Field(max_length=40)] = ""
    waiver_signed_on: date | None = None
    # the waiver version signed on that day (absent: unknown, the gate compares days)
    waiver_version: Annotated[int, Field(ge=1)] | None = None
    blocked: bool = False
    # time-clock PIN (scrypt hash made in the bridge); None removes it
    pin_hash: PinHash | None = None


class CredentialUpsert(ChangeRecord):
    entity: Literal["credential"]
    op: Literal["upsert"]
    id: EntityId
    member_id: EntityId
    # phone: the hash is of the phone's enrolled Ed25519 public key (docs/phone_nfc.md)
    kind: Literal["card", "qr", "voucher", "phone"]
    # hex of HMAC-SHA256; absent for signed-QR-only credentials
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    blocked: bool = False


class EntitlementUpsert(ChangeRecord):
    entity: Literal["entitlement"]
    op: Literal["upsert"]
    id: EntityId
    member_id: EntityId
    kind: Literal["membership", "punch_card", "day_ticket", "gift_voucher"]
    valid_from: int | None = None
    valid_to: int | None = None
    valid_on: date | None = None
    entries_total: Annotated[int, Field(ge=0)] | None = None
    zones: list[EntityId] | None = None
    windows: tuple[WindowSpec, ...] = ()
    frozen_from: int | None = None
    frozen_to: int | None = None
    credential_id: EntityId | None = None
    used_by_device: dict[EntityId, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class TicketMark(ChangeRecord):
    """The bridge's word on one printed ticket or voucher (contracts/ticket_token.py,
    docs/vouchers.md): ``revoked`` once it is refunded or cancelled (never undone), and
    the uses its ledger counts per device (entries, cents), so a gate adds the uses made
    elsewhere to its own. Only tickets with something to say are sent."""

    entity: Literal["ticket"]
    op: Literal["upsert"]
    id: EntityId  # the ticket id (UUID) inside the signed code
    revoked: bool = False
    used_by_device: dict[EntityId, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    value_by_device: dict[EntityId, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    valid_to: int | None = None  # the ticket's end, when the bridge knows it (for pruning)


class Delete(ChangeRecord):
    entity: Literal["member", "credential", "entitlement"]
    op: Literal["delete"]
    id: EntityId


# Tagged by op, then by entity, so pydantic goes straight to the right model instead of
# trying each in turn (this is what makes a 1,000,000-credential snapshot fast enough).
Upsert = Annotated[MemberUpsert | CredentialUpsert | EntitlementUpsert | TicketMark,
                   Field(discriminator="entity")]
Change = Annotated[Upsert | Delete, Field(discriminator="op")]
CHANGES = TypeAdapter(list[Change])


AnyChange = MemberUpsert | CredentialUpsert | EntitlementUpsert | TicketMark | Delete


def parse_changes(raw: object) -> list[AnyChange]:
    """Validate a list of change dicts; raises pydantic.ValidationError."""
    return CHANGES.validate_python(raw)
