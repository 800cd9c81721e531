"""The gate's waiver rule with versions: a signature from before the current version took
effect no longer admits; leaving is never refused for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.access.engine import decide
from agent.access.model import (
    CredentialRecord,
    Entitlement,
    EntitlementKind,
    GateContext,
    LocalState,
    Member,
    SiteRules,
)
from contracts.device_config import SitePolicy
from contracts.reasons import Reason

LJ = ZoneInfo("Europe/Ljubljana")
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
PASS = Entitlement("e1", EntitlementKind.MEMBERSHIP, valid_from=NOW - timedelta(days=9),
                   valid_to=NOW + timedelta(days=9))
CRED = CredentialRecord("c1", "m1", "card")
V2_SINCE = date(2026, 6, 1)
RULES = SiteRules(tz=LJ, waiver_required=True, waiver_current_since=V2_SINCE)


def tap(signed: date | None, direction: str = "in", rules: SiteRules = RULES) -> Reason:
    member = Member("m1", "Ana", waiver_signed_on=signed)
    return decide(GateContext("g1", "main", direction), NOW,
                  LocalState(CRED, member, (PASS,)), rules).reason


def test_signature_of_the_current_version_admits() -> None:
    assert tap(V2_SINCE) is Reason.GRANTED
    assert tap(date(2026, 6, 9)) is Reason.GRANTED


def test_signature_of_an_older_version_asks_to_sign_again() -> None:
    assert tap(date(2026, 5, 31)) is Reason.WAIVER_MISSING
    assert tap(None) is Reason.WAIVER_MISSING


def test_leaving_is_never_refused_for_a_stale_waiver() -> None:
    assert tap(date(2025, 1, 1), direction="out") is Reason.GRANTED


def test_without_a_version_date_any_past_signature_admits() -> None:
    rules = SiteRules(tz=LJ, waiver_required=True)
    assert tap(date(2020, 1, 1), rules=rules) is Reason.GRANTED
    assert tap(date(2026, 7, 1), rules=rules) is Reason.WAIVER_MISSING  # post-dated


def test_the_device_config_carries_the_version_date() -> None:
    policy = SitePolicy.model_validate({"waiver_required": True,
                                        "waiver_current_since": "2026-06-01"})
    assert policy.waiver_current_since == V2_SINCE
