"""What each access reason code means, for staff explaining a denied tap."""

from __future__ import annotations

from contracts.reasons import Reason

REASON_TEXT: dict[str, str] = {
    Reason.GRANTED: "Entry granted.",
    Reason.UNKNOWN_CREDENTIAL: "The card or code is not issued to anybody.",
    Reason.MALFORMED_CREDENTIAL: "The read could not be parsed (damaged card or QR).",
    Reason.BAD_SIGNATURE: "The QR token's signature did not verify.",
    Reason.REPLAYED: "The QR token or card message was used before (copy or replay).",
    Reason.BLOCKED: "The member or the card is blocked.",
    Reason.WAIVER_MISSING: "No signed waiver on file.",
    Reason.ANTI_PASSBACK: "Already inside (anti-passback).",
    Reason.NO_ENTITLEMENT: "No membership, card or ticket.",
    Reason.NOT_YET_VALID: "The membership starts later.",
    Reason.EXPIRED: "The membership has expired.",
    Reason.FROZEN: "The membership is frozen.",
    Reason.WRONG_ZONE: "The membership does not include this zone.",
    Reason.OUTSIDE_TIME_WINDOW: "Outside the membership's hours (e.g. off-peak only).",
    Reason.NO_ENTRIES_LEFT: "All entries of the punch card or voucher are used.",
    Reason.OCCUPANCY_FULL: "The site was full.",
    Reason.SECURE_CARD_REQUIRED: "This gate accepts only secure cards or signed QR codes.",
}


def explain(reason: str | None) -> str:
    return REASON_TEXT.get(reason or "", reason or "")
