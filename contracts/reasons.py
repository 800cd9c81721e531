"""The one enumeration of access reason codes, with the short text a gate display shows."""

from __future__ import annotations

import enum


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


# Short messages for a 2x16 or small LCD: Slovenian first, as members read them.
DISPLAY_TEXT: dict[Reason, str] = {
    Reason.GRANTED: "Dobrodošli",
    Reason.UNKNOWN_CREDENTIAL: "Neznana kartica",
    Reason.MALFORMED_CREDENTIAL: "Neberljiva koda",
    Reason.BAD_SIGNATURE: "Neveljavna koda",
    Reason.REPLAYED: "Koda že uporabljena",
    Reason.BLOCKED: "Kartica blokirana",
    Reason.WAIVER_MISSING: "Podpišite izjavo",
    Reason.ANTI_PASSBACK: "Že ste vstopili",
    Reason.NO_ENTITLEMENT: "Ni veljavne karte",
    Reason.NOT_YET_VALID: "Karta še ni veljavna",
    Reason.EXPIRED: "Karta je potekla",
    Reason.FROZEN: "Članarina zamrznjena",
    Reason.WRONG_ZONE: "Ni dostopa v to cono",
    Reason.OUTSIDE_TIME_WINDOW: "Izven dovoljenega časa",
    Reason.NO_ENTRIES_LEFT: "Ni več vstopov",
    Reason.OCCUPANCY_FULL: "Objekt je poln",
    Reason.SECURE_CARD_REQUIRED: "Uporabite varno kartico",
}

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
