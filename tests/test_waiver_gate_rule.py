"""The gate's waiver rule with versions: a signature from before the current version took
effect no longer admits; leaving is never refused for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.access.engine import decide
from agent.access.local_state import load_state
from agent.access.model import (
    CredentialRecord,
    Entitlement,
    EntitlementKind,
    GateContext,
    LocalState,
    Member,
    SiteRules,
)
from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes
from contracts.device_config import SitePolicy
from contracts.membership_changes import CredentialUpsert, MemberUpsert
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


# -- version ids: same-day precise where the member's record carries the signed version

V_RULES = SiteRules(tz=LJ, waiver_required=True, waiver_current_since=V2_SINCE,
                    waiver_current_version=2)


def vtap(signed: date | None, version: int | None, direction: str = "in") -> Reason:
    member = Member("m1", "Ana", waiver_signed_on=signed, waiver_version=version)
    return decide(GateContext("g1", "main", direction), NOW,
                  LocalState(CRED, member, (PASS,)), V_RULES).reason


def test_the_version_id_decides_where_the_record_carries_it() -> None:
    assert vtap(V2_SINCE, 2) is Reason.GRANTED
    # signed version 1 on the very day version 2 was published: the day rule let this in
    assert vtap(V2_SINCE, 1) is Reason.WAIVER_MISSING
    assert vtap(date(2026, 6, 9), 1, direction="out") is Reason.GRANTED
    assert vtap(date(2026, 7, 1), 2) is Reason.WAIVER_MISSING  # post-dated still refused


def test_a_record_without_a_version_keeps_the_day_rule() -> None:
    assert vtap(V2_SINCE, None) is Reason.GRANTED
    assert vtap(date(2026, 5, 31), None) is Reason.WAIVER_MISSING


def test_a_policy_without_a_version_keeps_the_day_rule() -> None:
    member = Member("m1", "Ana", waiver_signed_on=V2_SINCE, waiver_version=1)
    assert decide(GateContext("g1", "main", "in"), NOW, LocalState(CRED, member, (PASS,)),
                  RULES).reason is Reason.GRANTED


def test_the_version_id_travels_in_config_and_change_records(tmp_path: Path) -> None:
    policy = SitePolicy.model_validate({"waiver_required": True,
                                        "waiver_current_since": "2026-06-01",
                                        "waiver_current_version": 2})
    assert policy.waiver_current_version == 2
    store = LocalStore(tmp_path / "store.db")  # its migrations add the column
    with store.conn:
        apply_changes(store.conn, [
            MemberUpsert(entity="member", op="upsert", id="m1", first_name="Ana",
                         waiver_signed_on=V2_SINCE, waiver_version=1),
            CredentialUpsert(entity="credential", op="upsert", id="c1", member_id="m1",
                             kind="card", hash="a" * 64)])
    state = load_state(store.conn, lookup_hash="a" * 64, credential_id=None, now=NOW,
                       rules=V_RULES, need_occupancy=False, device="gate-1")
    assert state.member is not None and state.member.waiver_version == 1
    assert decide(GateContext("g1", "main", "in"), NOW, state,
                  V_RULES).reason is Reason.WAIVER_MISSING
    store.close()
