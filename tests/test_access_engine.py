"""The pure decision function: every reason code, time windows across DST, anti-passback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.access.engine import decide
from agent.access.model import (
    CredentialRecord,
    Entitlement,
    EntitlementKind,
    GateContext,
    LocalState,
    Member,
    Presence,
    SiteRules,
    TimeWindow,
)
from contracts.i18n import use_language
from contracts.reasons import DISPLAY_TEXT, Reason, display_text

LJ = ZoneInfo("Europe/Ljubljana")
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Ljubljana
RULES = SiteRules(tz=LJ)
GATE_IN = GateContext("g1", "main", "in")
GATE_OUT = GateContext("g1", "main", "out")
CRED = CredentialRecord("c1", "m1", "card")
MEMBER = Member("m1", "Ana", waiver_signed_on=date(2026, 1, 1))


def membership(**kw) -> Entitlement:
    base = dict(id="e1", kind=EntitlementKind.MEMBERSHIP,
                valid_from=NOW - timedelta(days=30), valid_to=NOW + timedelta(days=30))
    base.update(kw)
    return Entitlement(**base)


def year_pass(**kw) -> Entitlement:
    return membership(valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                      valid_to=datetime(2027, 1, 1, tzinfo=UTC), **kw)


def state(*ents: Entitlement, member: Member = MEMBER, cred: CredentialRecord = CRED,
          presence: Presence | None = None, occupancy: int = 0) -> LocalState:
    return LocalState(cred, member, tuple(ents), presence, occupancy)


def reason(st: LocalState, gate: GateContext = GATE_IN, now: datetime = NOW,
           rules: SiteRules = RULES) -> Reason:
    return decide(gate, now, st, rules).reason


# --- one test per reason code ------------------------------------------------------

def test_granted_membership() -> None:
    d = decide(GATE_IN, NOW, state(membership()), RULES)
    assert d.granted and d.reason is Reason.GRANTED
    assert d.message == "Dobrodošli, Ana"
    assert d.entitlement_id == "e1" and not d.consume


def test_unknown_credential() -> None:
    assert reason(LocalState(credential=None)) is Reason.UNKNOWN_CREDENTIAL
    # a credential whose member is gone (erased) is unknown too
    assert reason(LocalState(credential=CRED, member=None)) is Reason.UNKNOWN_CREDENTIAL


@pytest.mark.parametrize("problem", [Reason.MALFORMED_CREDENTIAL, Reason.BAD_SIGNATURE,
                                     Reason.REPLAYED])
def test_credential_problems_from_reading(problem: Reason) -> None:
    d = decide(GATE_IN, NOW, state(membership()), RULES, credential_problem=problem)
    assert d.reason is problem and not d.granted


def test_blocked_credential_and_member() -> None:
    assert reason(state(membership(), cred=CredentialRecord("c1", "m1", "card", blocked=True))) \
        is Reason.BLOCKED
    assert reason(state(membership(), member=Member("m1", "Ana", blocked=True))) is Reason.BLOCKED


def test_waiver_missing_only_where_required() -> None:
    rules = SiteRules(tz=LJ, waiver_required=True)
    unsigned = Member("m1", "Ana", waiver_signed_on=None)
    assert reason(state(membership(), member=unsigned), rules=rules) is Reason.WAIVER_MISSING
    future = Member("m1", "Ana", waiver_signed_on=date(2026, 7, 1))
    assert reason(state(membership(), member=future), rules=rules) is Reason.WAIVER_MISSING
    assert reason(state(membership()), rules=rules) is Reason.GRANTED
    assert reason(state(membership(), member=unsigned)) is Reason.GRANTED


def test_no_entitlement() -> None:
    assert reason(state()) is Reason.NO_ENTITLEMENT


def test_not_yet_valid_and_expired() -> None:
    assert reason(state(membership(valid_from=NOW + timedelta(seconds=1)))) is Reason.NOT_YET_VALID
    assert reason(state(membership(valid_to=NOW))) is Reason.EXPIRED  # valid_to is exclusive
    assert reason(state(membership(valid_to=NOW + timedelta(seconds=1)))) is Reason.GRANTED


def test_frozen() -> None:
    assert reason(state(membership(frozen_from=NOW - timedelta(days=1),
                                   frozen_to=NOW + timedelta(days=1)))) is Reason.FROZEN
    assert reason(state(membership(frozen_from=NOW - timedelta(days=1)))) is Reason.FROZEN
    assert reason(state(membership(frozen_from=NOW - timedelta(days=2),
                                   frozen_to=NOW - timedelta(days=1)))) is Reason.GRANTED


def test_wrong_zone() -> None:
    ent = membership(zones=frozenset({"main"}))
    assert reason(state(ent), gate=GateContext("g2", "sauna", "in")) is Reason.WRONG_ZONE
    assert reason(state(ent)) is Reason.GRANTED


def test_outside_time_window() -> None:
    mornings = (TimeWindow(frozenset({0, 1, 2, 3, 4}), time(6), time(11)),)
    assert reason(state(membership(windows=mornings))) is Reason.OUTSIDE_TIME_WINDOW
    assert reason(state(membership(windows=mornings)), now=NOW - timedelta(hours=2)) \
        is Reason.GRANTED


def test_no_entries_left_and_consumption() -> None:
    card = Entitlement("p1", EntitlementKind.PUNCH_CARD, entries_total=10, entries_used=10)
    assert reason(state(card)) is Reason.NO_ENTRIES_LEFT
    d = decide(GATE_IN, NOW, state(Entitlement("p1", EntitlementKind.PUNCH_CARD,
                                              entries_total=10, entries_used=7)), RULES)
    assert d.granted and d.consume and d.entries_left == 2
    assert d.message == "Dobrodošli, Ana (še 2)"


def test_anti_passback() -> None:
    rules = SiteRules(tz=LJ, anti_passback=True)
    inside = Presence("in", NOW - timedelta(minutes=5))
    assert reason(state(membership(), presence=inside), rules=rules) is Reason.ANTI_PASSBACK
    # leaving is fine, and after leaving entering is fine again
    assert reason(state(membership(), presence=inside), gate=GATE_OUT, rules=rules) \
        is Reason.GRANTED
    outside = Presence("out", NOW - timedelta(minutes=1))
    assert reason(state(membership(), presence=outside), rules=rules) is Reason.GRANTED
    # a card passed back out over the barrier
    assert reason(state(membership(), presence=outside), gate=GATE_OUT, rules=rules) \
        is Reason.ANTI_PASSBACK
    # without anti-passback, no effect
    assert reason(state(membership(), presence=inside)) is Reason.GRANTED


def test_timed_reentry_and_presence_expiry() -> None:
    rules = SiteRules(tz=LJ, anti_passback=True, reentry_after=timedelta(minutes=10))
    assert reason(state(membership(), presence=Presence("in", NOW - timedelta(minutes=9))),
                  rules=rules) is Reason.ANTI_PASSBACK
    assert reason(state(membership(), presence=Presence("in", NOW - timedelta(minutes=10))),
                  rules=rules) is Reason.GRANTED
    strict = SiteRules(tz=LJ, anti_passback=True)
    # someone who never badged out yesterday is not locked out today
    assert reason(state(membership(), presence=Presence("in", NOW - timedelta(hours=13))),
                  rules=strict) is Reason.GRANTED


def test_occupancy_full() -> None:
    rules = SiteRules(tz=LJ, occupancy_limit=100)
    assert reason(state(membership(), occupancy=100), rules=rules) is Reason.OCCUPANCY_FULL
    assert reason(state(membership(), occupancy=99), rules=rules) is Reason.GRANTED
    # exits are never refused for a full house
    assert reason(state(membership(), occupancy=100), gate=GATE_OUT, rules=rules) \
        is Reason.GRANTED
    # an expired member hears "expired", not "full"
    assert reason(state(membership(valid_to=NOW), occupancy=100), rules=rules) is Reason.EXPIRED


def test_secure_card_required_only_where_the_gate_asks() -> None:
    secure_gate = replace(GATE_IN, require_secure_card=True)
    st = state(membership())
    # a plain UID (or static code) at a gate that wants SUN cards or signed QR: refused,
    # even before the lookup says whether the card is known
    assert decide(secure_gate, NOW, st, RULES).reason is Reason.SECURE_CARD_REQUIRED
    assert decide(secure_gate, NOW, LocalState(credential=None), RULES).reason \
        is Reason.SECURE_CARD_REQUIRED
    assert decide(secure_gate, NOW, st, RULES, secure_credential=True).granted
    # reading problems still win, ordinary gates do not care, leaving is always possible
    assert decide(secure_gate, NOW, st, RULES, Reason.REPLAYED, True).reason is Reason.REPLAYED
    assert decide(GATE_IN, NOW, st, RULES).granted
    assert decide(replace(GATE_OUT, require_secure_card=True), NOW, st, RULES).granted
    with use_language("sl"):
        assert display_text(Reason.SECURE_CARD_REQUIRED) == "Uporabite varno kartico"


def test_every_reason_code_has_a_test_and_display_text() -> None:
    assert set(DISPLAY_TEXT) == set(Reason)
    tested = {
        Reason.GRANTED, Reason.UNKNOWN_CREDENTIAL, Reason.MALFORMED_CREDENTIAL,
        Reason.BAD_SIGNATURE, Reason.REPLAYED, Reason.BLOCKED, Reason.WAIVER_MISSING,
        Reason.ANTI_PASSBACK, Reason.NO_ENTITLEMENT, Reason.NOT_YET_VALID, Reason.EXPIRED,
        Reason.FROZEN, Reason.WRONG_ZONE, Reason.OUTSIDE_TIME_WINDOW, Reason.NO_ENTRIES_LEFT,
        Reason.OCCUPANCY_FULL, Reason.SECURE_CARD_REQUIRED,
    }
    assert tested == set(Reason), "a new reason code needs a test above"


# --- entitlement kinds and choice ----------------------------------------------------

def test_day_ticket_is_a_local_calendar_day() -> None:
    ticket = Entitlement("d1", EntitlementKind.DAY_TICKET, valid_on=date(2026, 6, 10))
    # 23:30 UTC on the 9th is already 01:30 on the 10th in Ljubljana (CEST)
    assert reason(state(ticket), now=datetime(2026, 6, 9, 23, 30, tzinfo=UTC)) is Reason.GRANTED
    assert reason(state(ticket), now=datetime(2026, 6, 9, 21, 59, tzinfo=UTC)) \
        is Reason.NOT_YET_VALID
    assert reason(state(ticket), now=datetime(2026, 6, 10, 21, 59, tzinfo=UTC)) is Reason.GRANTED
    assert reason(state(ticket), now=datetime(2026, 6, 10, 22, 0, tzinfo=UTC)) is Reason.EXPIRED


def test_gift_voucher_only_with_its_own_code() -> None:
    voucher = Entitlement("v1", EntitlementKind.GIFT_VOUCHER, entries_total=1,
                          credential_id="voucher-code")
    assert reason(state(voucher)) is Reason.NO_ENTITLEMENT
    code = CredentialRecord("voucher-code", "m1", "voucher")
    d = decide(GATE_IN, NOW, state(voucher, cred=code), RULES)
    assert d.granted and d.consume and d.entries_left == 0
    assert reason(state(Entitlement("v1", EntitlementKind.GIFT_VOUCHER, entries_total=1,
                                    entries_used=1, credential_id="voucher-code"), cred=code)) \
        is Reason.NO_ENTRIES_LEFT


def test_membership_preferred_over_punch_card() -> None:
    card = Entitlement("p1", EntitlementKind.PUNCH_CARD, entries_total=10)
    d = decide(GATE_IN, NOW, state(card, membership(id="e9")), RULES)
    assert d.entitlement_id == "e9" and not d.consume


def test_soonest_expiring_punch_card_used_first() -> None:
    late = Entitlement("late", EntitlementKind.PUNCH_CARD, entries_total=5,
                       valid_to=NOW + timedelta(days=90))
    soon = Entitlement("soon", EntitlementKind.PUNCH_CARD, entries_total=5,
                       valid_to=NOW + timedelta(days=3))
    assert decide(GATE_IN, NOW, state(late, soon), RULES).entitlement_id == "soon"


def test_most_helpful_failure_is_reported() -> None:
    old = membership(id="old", valid_to=NOW - timedelta(days=100))
    empty = Entitlement("p1", EntitlementKind.PUNCH_CARD, entries_total=5, entries_used=5)
    assert reason(state(old, empty)) is Reason.NO_ENTRIES_LEFT


def test_decision_is_pure() -> None:
    st = state(Entitlement("p1", EntitlementKind.PUNCH_CARD, entries_total=2, entries_used=1))
    assert decide(GATE_IN, NOW, st, RULES) == decide(GATE_IN, NOW, st, RULES)


# --- daylight saving time (Europe/Ljubljana) -------------------------------------------

OFF_PEAK = (TimeWindow(frozenset({6}), time(6), time(8)),)  # Sundays 06:00-08:00 local


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # 2026-03-29: clocks jump 02:00 -> 03:00 CET->CEST, so 06:00 local = 04:00 UTC
        (datetime(2026, 3, 29, 3, 59, tzinfo=UTC), Reason.OUTSIDE_TIME_WINDOW),
        (datetime(2026, 3, 29, 4, 0, tzinfo=UTC), Reason.GRANTED),
        (datetime(2026, 3, 29, 5, 59, tzinfo=UTC), Reason.GRANTED),
        (datetime(2026, 3, 29, 6, 0, tzinfo=UTC), Reason.OUTSIDE_TIME_WINDOW),
        # 2026-10-25: clocks go back 03:00 -> 02:00 CEST->CET, so 06:00 local = 05:00 UTC
        (datetime(2026, 10, 25, 4, 59, tzinfo=UTC), Reason.OUTSIDE_TIME_WINDOW),
        (datetime(2026, 10, 25, 5, 0, tzinfo=UTC), Reason.GRANTED),
        (datetime(2026, 10, 25, 6, 59, tzinfo=UTC), Reason.GRANTED),
        (datetime(2026, 10, 25, 7, 0, tzinfo=UTC), Reason.OUTSIDE_TIME_WINDOW),
    ],
)
def test_time_window_follows_dst(utc: datetime, expected: Reason) -> None:
    assert reason(state(year_pass(windows=OFF_PEAK)), now=utc) is expected


def test_window_in_the_repeated_autumn_hour() -> None:
    # 02:00-03:00 local happens twice on 2026-10-25; both instants are inside
    night = (TimeWindow(frozenset({6}), time(2), time(3)),)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert reason(state(year_pass(windows=night)), now=first) is Reason.GRANTED
    assert reason(state(year_pass(windows=night)), now=second) is Reason.GRANTED
    assert reason(state(year_pass(windows=night)), now=first - timedelta(minutes=31)) \
        is Reason.OUTSIDE_TIME_WINDOW


def test_window_missing_in_the_spring_gap_is_simply_closed() -> None:
    # 02:00-03:00 local does not exist on 2026-03-29; no instant is inside
    night = (TimeWindow(frozenset({6}), time(2), time(3)),)
    for minute in range(0, 120, 5):
        moment = datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=minute)
        assert reason(state(year_pass(windows=night)), now=moment) \
            is Reason.OUTSIDE_TIME_WINDOW


def test_window_crossing_midnight_belongs_to_its_start_day() -> None:
    late = (TimeWindow(frozenset({4}), time(22), time(2)),)  # Friday 22:00 - Saturday 02:00
    fri_23 = datetime(2026, 6, 12, 21, 0, tzinfo=UTC)  # 23:00 CEST Friday
    sat_01 = datetime(2026, 6, 12, 23, 0, tzinfo=UTC)  # 01:00 CEST Saturday
    sat_23 = datetime(2026, 6, 13, 21, 0, tzinfo=UTC)  # 23:00 CEST Saturday
    assert reason(state(year_pass(windows=late)), now=fri_23) is Reason.GRANTED
    assert reason(state(year_pass(windows=late)), now=sat_01) is Reason.GRANTED
    assert reason(state(year_pass(windows=late)), now=sat_23) is Reason.OUTSIDE_TIME_WINDOW


def test_membership_end_at_local_midnight_across_dst() -> None:
    # membership "until 24 October" ends at 25 Oct 00:00 CEST = 24 Oct 22:00 UTC
    end = datetime(2026, 10, 25, 0, 0, tzinfo=LJ)
    ent = replace(year_pass(), valid_to=end.astimezone(UTC))
    assert reason(state(ent), now=datetime(2026, 10, 24, 21, 59, 59, tzinfo=UTC)) \
        is Reason.GRANTED
    assert reason(state(ent), now=datetime(2026, 10, 24, 22, 0, tzinfo=UTC)) is Reason.EXPIRED
