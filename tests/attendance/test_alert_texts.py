"""The timesheet's alerts are English data (JSON API, machine CSV); the pages and the
printout show each one in the reader's language, with its numbers and times kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_bridge.attendance.alert_texts import alert_text
from cloud_bridge.attendance.timesheet import Punch, Rules, shifts
from contracts.i18n import use_language
from contracts.punch_types import PunchType

LJ = ZoneInfo("Europe/Ljubljana")


def alerts_of(kinds: list[tuple[int, PunchType]]) -> list[str]:
    start = datetime(2026, 11, 3, 7, 0, tzinfo=LJ)
    punches = [Punch("e1", start + timedelta(hours=h), k, f"c#{i}")
               for i, (h, k) in enumerate(kinds, 1)]
    return [a for s in shifts("e1", punches, Rules(), datetime(2026, 12, 1, tzinfo=UTC))
            for a in s.alerts]


def test_every_alert_the_timesheet_writes_is_translated() -> None:
    written = [
        *alerts_of([(0, PunchType.ARRIVAL), (25, PunchType.ARRIVAL)]),  # two missing
        *alerts_of([(0, PunchType.BREAK_END)]),  # without an arrival
        *alerts_of([(0, PunchType.ARRIVAL), (1, PunchType.BREAK_END),
                    (2, PunchType.TRIP_START), (3, PunchType.DEPARTURE)]),
        *alerts_of([(0, PunchType.ARRIVAL), (15, PunchType.DEPARTURE)]),
    ]
    assert len(written) >= 5, written
    with use_language("sl"):
        slovenian = [alert_text(a) for a in written]
    with use_language("en"):
        english = [alert_text(a) for a in written]
    # English is the text itself, with the punch type's code as words
    assert english == [a.replace("break_end", "end of break") for a in written]
    for original, text in zip(written, slovenian, strict=True):
        assert text != original, original
    assert "manjka odhod (ni ga v 16 h po prihodu)" in slovenian
    assert "konec malice brez začetka" in slovenian
    assert "službeni izhod ni končan pred odhodom" in slovenian
    assert alert_text("something new") == "something new"
