"""What the access engine decides on: frozen snapshots of local state for one tap."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from contracts.reasons import Reason
from contracts.ticket_token import TicketToken


class EntitlementKind(enum.StrEnum):
    MEMBERSHIP = "membership"  # time-bound, unlimited entries
    PUNCH_CARD = "punch_card"  # N entries
    DAY_TICKET = "day_ticket"  # one local calendar day
    GIFT_VOUCHER = "gift_voucher"  # N entries (usually 1), tied to its own code


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Weekdays (0 = Monday) and local wall-clock hours; end before start crosses midnight."""

    weekdays: frozenset[int]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start <= self.end:
            return day in self.weekdays and self.start <= t < self.end
        # e.g. 22:00-02:00: the early hours belong to the previous day's window
        return (day in self.weekdays and t >= self.start) or (
            (day - 1) % 7 in self.weekdays and t < self.end
        )


@dataclass(frozen=True, slots=True)
class Entitlement:
    id: str
    kind: EntitlementKind
    valid_from: datetime | None = None
    valid_to: datetime | None = None  # exclusive
    valid_on: date | None = None  # day tickets: the local date they are for
    entries_total: int | None = None  # None: unlimited
    entries_used: int = 0
    zones: frozenset[str] | None = None  # None: every zone
    windows: tuple[TimeWindow, ...] = ()  # empty: any time
    frozen_from: datetime | None = None
    frozen_to: datetime | None = None  # None with frozen_from set: frozen until unfrozen
    credential_id: str | None = None  # set: usable only with that credential (vouchers)

    @property
    def entries_left(self) -> int | None:
        if self.entries_total is None:
            return None
        return max(self.entries_total - self.entries_used, 0)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    first_name: str
    waiver_signed_on: date | None = None
    blocked: bool = False
    waiver_version: int | None = None  # the version signed, where the record carries it


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    id: str
    member_id: str
    kind: str  # card, qr, voucher
    blocked: bool = False


@dataclass(frozen=True, slots=True)
class Presence:
    direction: str  # "in" / "out"
    at: datetime


@dataclass(frozen=True, slots=True)
class GateContext:
    gate_id: str
    zone: str
    direction: str  # direction of the reader that was used: "in" / "out"
    # only credentials that cannot be copied open this gate: NTAG 424 SUN cards and
    # signed QR tokens; plain UIDs and static codes are refused (SECURE_CARD_REQUIRED)
    require_secure_card: bool = False


@dataclass(frozen=True, slots=True)
class SiteRules:
    tz: ZoneInfo
    anti_passback: bool = False
    reentry_after: timedelta = timedelta(0)
    waiver_required: bool = False
    # the day the current waiver version took effect: a signature from before it is for
    # an older version, so the member signs again at the next visit (docs/waivers.md)
    waiver_current_since: date | None = None
    # its version id: where a member's record carries the signed version, that must be it
    waiver_current_version: int | None = None
    occupancy_limit: int | None = None
    presence_expiry: timedelta = timedelta(hours=12)
    # what one entry costs a value voucher at a gate; None: gates refuse value vouchers
    ticket_gate_price_cents: int | None = None


@dataclass(frozen=True, slots=True)
class LocalState:
    """Everything stored locally that matters for one credential, read in one transaction."""

    credential: CredentialRecord | None
    member: Member | None = None
    entitlements: tuple[Entitlement, ...] = ()
    presence: Presence | None = None
    occupancy: int = 0


@dataclass(frozen=True, slots=True)
class TicketState:
    """A verified printed ticket and what is known of its use, read in the tap's
    transaction; the ticket id is the holder (presence, anti-passback, occupancy)."""

    token: TicketToken
    entries_used: int = 0
    value_used_cents: int = 0
    revoked: bool = False
    presence: Presence | None = None
    occupancy: int = 0

    @property
    def holder(self) -> str:
        return holder_id(self.token.ticket_id)


def holder_id(ticket_id: str) -> str:
    """The presence key of a ticket's holder (never equal to a member id)."""
    return f"ticket:{ticket_id}"


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    message: str
    # the entitlement the grant rests on; consume=True means one entry is used up
    entitlement_id: str | None = None
    consume: bool = False
    entries_left: int | None = None
    # printed tickets: cents taken from a value voucher and what it has left
    amount_cents: int = 0
    value_left_cents: int | None = None

    @property
    def granted(self) -> bool:
        return self.reason is Reason.GRANTED
