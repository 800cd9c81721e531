"""Payloads the agent receives (docs/protocol.md), validated at the edge with pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, TypeAdapter

from contracts.membership_changes import Change, PinHash, TicketMark, WindowSpec

MAX_COMMAND_BYTES = 64 * 1024
MAX_ACK_BYTES = 1024


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ack(_Msg):
    v: Literal[1]
    acked_seq: Annotated[int, Field(ge=0)]


class Command(_Msg):
    v: Literal[1]
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    # UTC epoch ms; required: a command without one is refused (contracts/command_expiry.py)
    expires_at: Annotated[StrictInt, Field(ge=0, le=2**53)]
    args: dict[str, Any] = {}


class ChangeBatch(_Msg):
    """Validated in one pass from the signed bytes, records included."""

    v: Literal[1]
    tenant: str
    kind: Literal["changes"]
    from_version: Annotated[int, Field(ge=0)]
    to_version: Annotated[int, Field(ge=1)]
    changes: list[Change]


_Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\d$")] | None
_Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None
_Epoch = int | None

# Rows, not change records: a snapshot carries a whole tenant (a million credentials),
# and positional rows validate about four times faster and are half the size.
_Name = Annotated[str, StringConstraints(max_length=40)]
# id, first_name, waiver_signed_on, blocked[, waiver_version]: the fifth only where the
# signed waiver version is known (docs/waivers.md); four items = unknown, the day rule
MemberRow = Annotated[
    tuple[_Id, _Name, _Day, bool] | tuple[_Id, _Name, _Day, bool, Annotated[int, Field(ge=1)]],
    Field(union_mode="left_to_right"),
]
CredentialRow = tuple[_Id, _Id, Literal["card", "qr", "voucher", "phone"], _Hash, bool]
EntitlementRow = tuple[
    _Id, _Id, Literal["membership", "punch_card", "day_ticket", "gift_voucher"],
    _Epoch, _Epoch, _Day, Annotated[int, Field(ge=0)] | None, list[_Id] | None,
    list[WindowSpec] | None, _Epoch, _Epoch, _Id | None,
    dict[_Id, Annotated[int, Field(ge=0)]] | None,
]


class SnapshotChunk(_Msg):
    v: Literal[1]
    tenant: str
    kind: Literal["snapshot"]
    snapshot_id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=0)]
    chunk: Annotated[int, Field(ge=0)]
    chunks: Annotated[int, Field(ge=1, le=100_000)]
    members: list[MemberRow] = []
    credentials: list[CredentialRow] = []
    entitlements: list[EntitlementRow] = []
    pins: list[tuple[_Id, PinHash]] = []  # time-clock PINs: [member id, scrypt hash]
    # printed tickets the bridge has something to say about (docs/vouchers.md)
    tickets: list[TicketMark] = []


SIGNED_PAYLOAD: TypeAdapter[ChangeBatch | SnapshotChunk] = TypeAdapter(
    Annotated[ChangeBatch | SnapshotChunk, Field(discriminator="kind")]
)


class MembersVersion(_Msg):
    """The bridge's membership version, signed and retained on ``{t}/members/version``."""

    v: Literal[1]
    tenant: str
    kind: Literal["version"]
    version: Annotated[int, Field(ge=0)]


MAX_VERSION_BYTES = 1024


class OpenArgs(_Msg):
    gate: Annotated[str, Field(min_length=1, max_length=64)]
    direction: Literal["in", "out"] = "in"
