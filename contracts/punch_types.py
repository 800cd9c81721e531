"""Punch types of the E-EDC time clock and which one to suggest to an employee."""

from __future__ import annotations

import enum


class PunchType(enum.StrEnum):
    ARRIVAL = "arrival"
    DEPARTURE = "departure"
    BREAK_START = "break_start"
    BREAK_END = "break_end"
    TRIP_START = "trip_start"  # official trip / field work
    TRIP_END = "trip_end"
    PRIVATE_START = "private_start"  # private leave during the day
    PRIVATE_END = "private_end"


# what the kiosk buttons say (Slovenian, as employees read them)
LABELS: dict[PunchType, str] = {
    PunchType.ARRIVAL: "Prihod",
    PunchType.DEPARTURE: "Odhod",
    PunchType.BREAK_START: "Začetek malice",
    PunchType.BREAK_END: "Konec malice",
    PunchType.TRIP_START: "Službeni izhod",
    PunchType.TRIP_END: "Povratek s službenega izhoda",
    PunchType.PRIVATE_START: "Zasebni izhod",
    PunchType.PRIVATE_END: "Povratek z zasebnega izhoda",
}

_CLOSES = {
    PunchType.BREAK_START: PunchType.BREAK_END,
    PunchType.TRIP_START: PunchType.TRIP_END,
    PunchType.PRIVATE_START: PunchType.PRIVATE_END,
}


def suggest(last_today: PunchType | None) -> PunchType:
    """The likely next punch, from the employee's last punch of the current work day:
    nothing yet → arrival; an open break/trip/leave → its end; otherwise → departure."""
    if last_today is None or last_today is PunchType.DEPARTURE:
        return PunchType.ARRIVAL
    if last_today in _CLOSES:
        return _CLOSES[last_today]
    return PunchType.DEPARTURE
