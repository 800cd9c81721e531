"""The access decision: a pure function of (credential, gate, time, local state).

No I/O and no clock reads here, so every reason code is testable with plain values and
the same inputs always give the same answer. ``access.service`` does the lookups before
and the writes after.
"""

from __future__ import annotations

from datetime import datetime

from agent.access.model import (
    Decision,
    Entitlement,
    GateContext,
    LocalState,
    Member,
    Presence,
    SiteRules,
    TicketState,
)
from contracts.reasons import ENTITLEMENT_FAILURE_RANK, Reason, display_text
from contracts.ticket_token import TicketKind


def deny(reason: Reason) -> Decision:
    return Decision(reason=reason, message=display_text(reason))


def check_entitlement(
    ent: Entitlement, gate: GateContext, now: datetime, rules: SiteRules, credential_id: str
) -> Reason:
    """GRANTED if this entitlement admits an entry now, else why not."""
    if ent.credential_id is not None and ent.credential_id != credential_id:
        return Reason.NO_ENTITLEMENT
    local = now.astimezone(rules.tz)
    if ent.valid_on is not None:
        if local.date() < ent.valid_on:
            return Reason.NOT_YET_VALID
        if local.date() > ent.valid_on:
            return Reason.EXPIRED
    if ent.valid_from is not None and now < ent.valid_from:
        return Reason.NOT_YET_VALID
    if ent.valid_to is not None and now >= ent.valid_to:
        return Reason.EXPIRED
    if ent.frozen_from is not None and ent.frozen_from <= now and (
        ent.frozen_to is None or now < ent.frozen_to
    ):
        return Reason.FROZEN
    if ent.zones is not None and gate.zone not in ent.zones:
        return Reason.WRONG_ZONE
    if ent.windows and not any(w.contains(local) for w in ent.windows):
        return Reason.OUTSIDE_TIME_WINDOW
    left = ent.entries_left
    if left is not None and left <= 0:
        return Reason.NO_ENTRIES_LEFT
    return Reason.GRANTED


def _preference(ent: Entitlement) -> tuple[int, float, str]:
    # Unlimited passes first, so a member with both a membership and a punch card
    # does not lose a punch; among counted ones use the soonest to expire.
    counted = 0 if ent.entries_total is None else 1
    expiry = ent.valid_to.timestamp() if ent.valid_to else float("inf")
    return (counted, expiry, ent.id)


def _greeting(member: Member, ent: Entitlement, left_after: int | None) -> str:
    text = f"{display_text(Reason.GRANTED)}, {member.first_name}".rstrip(", ")
    if left_after is not None:
        text += f" (še {left_after})"
    return text


def _presence_blocks(state: LocalState, gate: GateContext, now: datetime, rules: SiteRules) -> bool:
    return _passback(state.presence, gate, now, rules)


def _passback(p: Presence | None, gate: GateContext, now: datetime, rules: SiteRules) -> bool:
    if p is None or now - p.at >= rules.presence_expiry:
        return False
    if p.direction != gate.direction:
        return False
    # same direction twice: a card passed back over the barrier, unless timed re-entry allows it
    return not (rules.reentry_after.total_seconds() > 0 and now - p.at >= rules.reentry_after)


def _waiver_current(member: Member, now: datetime, rules: SiteRules) -> bool:
    """Signed, not post-dated, and the current version: by its id where both the member's
    record and the site policy carry one, else not before the day it took effect."""
    signed = member.waiver_signed_on
    if signed is None or signed > now.astimezone(rules.tz).date():
        return False
    if rules.waiver_current_version is not None and member.waiver_version is not None:
        return member.waiver_version >= rules.waiver_current_version
    return rules.waiver_current_since is None or signed >= rules.waiver_current_since


def decide(
    gate: GateContext,
    now: datetime,
    state: LocalState,
    rules: SiteRules,
    credential_problem: Reason | None = None,
    secure_credential: bool = False,
) -> Decision:
    """Decide one tap. ``credential_problem`` carries what reading the credential found
    (malformed, bad signature, replayed) before any lookup could happen;
    ``secure_credential`` says the read was a verified SUN card or signed token."""
    if credential_problem is not None:
        return deny(credential_problem)
    if gate.require_secure_card and not secure_credential and gate.direction != "out":
        # refused before the lookup: a cloned UID learns nothing about its victim here.
        # Leaving stays possible with any card (nobody is locked in).
        return deny(Reason.SECURE_CARD_REQUIRED)
    cred = state.credential
    if cred is None or state.member is None:
        return deny(Reason.UNKNOWN_CREDENTIAL)
    member = state.member
    if cred.blocked or member.blocked:
        return deny(Reason.BLOCKED)
    if rules.anti_passback and _presence_blocks(state, gate, now, rules):
        return deny(Reason.ANTI_PASSBACK)

    if gate.direction == "out":
        # Leaving is never refused for lack of a valid pass: nobody is locked in.
        return Decision(Reason.GRANTED, f"Nasvidenje, {member.first_name}".rstrip(", "))

    if rules.waiver_required and not _waiver_current(member, now, rules):
        return deny(Reason.WAIVER_MISSING)

    best_failure: Reason | None = None
    for ent in sorted(state.entitlements, key=_preference):
        verdict = check_entitlement(ent, gate, now, rules, cred.id)
        if verdict is Reason.GRANTED:
            if (
                rules.occupancy_limit is not None
                and state.occupancy >= rules.occupancy_limit
            ):
                return deny(Reason.OCCUPANCY_FULL)
            counted = ent.entries_total is not None
            left_after = ent.entries_left - 1 if counted and ent.entries_left else None
            return Decision(
                reason=Reason.GRANTED,
                message=_greeting(member, ent, left_after),
                entitlement_id=ent.id,
                consume=counted,
                entries_left=left_after,
            )
        if best_failure is None or ENTITLEMENT_FAILURE_RANK.get(
            verdict, 0
        ) > ENTITLEMENT_FAILURE_RANK.get(best_failure, 0):
            best_failure = verdict
    return deny(best_failure or Reason.NO_ENTITLEMENT)


def _ticket_take(state: TicketState, rules: SiteRules) -> Decision:
    """What one entry takes from the ticket (entries or cents), or why it cannot."""
    token = state.token
    if token.kind is TicketKind.VALUE_VOUCHER:
        price = rules.ticket_gate_price_cents
        if price is None:  # spent at the till, unless the site prices a gate entry
            return deny(Reason.NO_ENTITLEMENT)
        left = token.value_cents - state.value_used_cents
        if left < price:
            return deny(Reason.NO_ENTRIES_LEFT)
        return Decision(Reason.GRANTED, display_text(Reason.GRANTED), consume=True,
                        amount_cents=price, value_left_cents=left - price)
    entries_left = token.entries - state.entries_used
    if entries_left <= 0:
        return deny(Reason.NO_ENTRIES_LEFT)
    text = f"{display_text(Reason.GRANTED)} (še {entries_left - 1})"
    return Decision(Reason.GRANTED, text, consume=True, entries_left=entries_left - 1)


def decide_ticket(gate: GateContext, now: datetime, state: TicketState,
                  rules: SiteRules) -> Decision:
    """Decide one tap of a printed ticket whose code verified (signature, site, validity:
    contracts/ticket_token.py). No waiver check: a ticket names no person."""
    if state.revoked:  # refunded or cancelled at the bridge
        return deny(Reason.BLOCKED)
    if rules.anti_passback and _passback(state.presence, gate, now, rules):
        return deny(Reason.ANTI_PASSBACK)
    if gate.direction == "out":
        return Decision(Reason.GRANTED, "Nasvidenje")
    take = _ticket_take(state, rules)
    if take.granted and rules.occupancy_limit is not None \
            and state.occupancy >= rules.occupancy_limit:
        return deny(Reason.OCCUPANCY_FULL)
    return take
