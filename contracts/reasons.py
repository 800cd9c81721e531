"""The one enumeration of access reason codes, with the short text a gate display shows
and what each means for staff, both through the gettext catalogs."""

from __future__ import annotations

import enum

from contracts.i18n import N_, gettext


class Reason(enum.StrEnum):
    GRANTED = "granted"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    MALFORMED_CREDENTIAL = "malformed_credential"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"
    BLOCKED = "blocked"
    WAIVER_MISSING = "waiver_missing"
    ANTI_PASSBACK = "anti_passback"
    NO_ENTITLEMENT = "no_entitlement"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    FROZEN = "frozen"
    WRONG_ZONE = "wrong_zone"
    OUTSIDE_TIME_WINDOW = "outside_time_window"
    NO_ENTRIES_LEFT = "no_entries_left"
    OCCUPANCY_FULL = "occupancy_full"
    # the gate accepts only credentials that cannot be copied (SUN cards, signed QR)
    SECURE_CARD_REQUIRED = "secure_card_required"


# Short messages for a 2x16 or small LCD, and what each code means for staff explaining
# a denied tap. English msgids, translated where shown (contracts/locale/*/reasons.po):
# members read the display in the device's language, Slovenian by default.
DISPLAY_TEXT: dict[Reason, str] = {
    Reason.GRANTED: N_("Welcome"),
    Reason.UNKNOWN_CREDENTIAL: N_("Unknown card"),
    Reason.MALFORMED_CREDENTIAL: N_("Unreadable code"),
    Reason.BAD_SIGNATURE: N_("Invalid code"),
    Reason.REPLAYED: N_("Code already used"),
    Reason.BLOCKED: N_("Card blocked"),
    Reason.WAIVER_MISSING: N_("Sign the waiver"),
    Reason.ANTI_PASSBACK: N_("Already inside"),
    Reason.NO_ENTITLEMENT: N_("No valid ticket"),
    Reason.NOT_YET_VALID: N_("Ticket not valid yet"),
    Reason.EXPIRED: N_("Ticket expired"),
    Reason.FROZEN: N_("Membership frozen"),
    Reason.WRONG_ZONE: N_("No access to this zone"),
    Reason.OUTSIDE_TIME_WINDOW: N_("Outside allowed hours"),
    Reason.NO_ENTRIES_LEFT: N_("No entries left"),
    Reason.OCCUPANCY_FULL: N_("Site is full"),
    Reason.SECURE_CARD_REQUIRED: N_("Use a secure card"),
}

EXPLANATION: dict[Reason, str] = {
    Reason.GRANTED: N_("Entry granted."),
    Reason.UNKNOWN_CREDENTIAL: N_("The card or code is not issued to anybody."),
    Reason.MALFORMED_CREDENTIAL: N_("The read could not be parsed (damaged card or QR)."),
    Reason.BAD_SIGNATURE: N_("The QR token's signature did not verify."),
    Reason.REPLAYED: N_("The QR token or card message was used before (copy or replay)."),
    Reason.BLOCKED: N_("The member or the card is blocked."),
    Reason.WAIVER_MISSING: N_("No signed waiver on file."),
    Reason.ANTI_PASSBACK: N_("Already inside (anti-passback)."),
    Reason.NO_ENTITLEMENT: N_("No membership, card or ticket."),
    Reason.NOT_YET_VALID: N_("The membership starts later."),
    Reason.EXPIRED: N_("The membership has expired."),
    Reason.FROZEN: N_("The membership is frozen."),
    Reason.WRONG_ZONE: N_("The membership does not include this zone."),
    Reason.OUTSIDE_TIME_WINDOW: N_("Outside the membership's hours (e.g. off-peak only)."),
    Reason.NO_ENTRIES_LEFT: N_("All entries of the punch card or voucher are used."),
    Reason.OCCUPANCY_FULL: N_("The site was full."),
    Reason.SECURE_CARD_REQUIRED: N_("This gate accepts only secure cards or signed QR codes."),
}


def display_text(reason: Reason) -> str:
    """The display's short text in the current language."""
    return gettext(DISPLAY_TEXT[reason])


def explain(reason: str | None) -> str:
    """What a reason code means, for staff, in the current language; an unknown code
    is shown as it is."""
    try:
        return gettext(EXPLANATION[Reason(reason or "")])
    except ValueError:
        return reason or ""


# When no entitlement grants, report the failure closest to a grant: a member whose
# punch card is only out of entries should hear that, not that an old pass expired.
ENTITLEMENT_FAILURE_RANK: dict[Reason, int] = {
    Reason.NOT_YET_VALID: 1,
    Reason.EXPIRED: 1,
    Reason.FROZEN: 2,
    Reason.WRONG_ZONE: 3,
    Reason.OUTSIDE_TIME_WINDOW: 4,
    Reason.NO_ENTRIES_LEFT: 5,
}
