"""Slovenian work-free days against dates published for those years."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.work_free_days import easter_sunday, holiday_name, holidays


@pytest.mark.parametrize(("year", "easter"), [
    (2016, date(2016, 3, 27)), (2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)),
    (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)),
    (2038, date(2038, 4, 25)),
])
def test_easter(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_2024_matches_the_published_list() -> None:
    expected = {date(2024, 1, 1), date(2024, 1, 2), date(2024, 2, 8), date(2024, 3, 31),
                date(2024, 4, 1), date(2024, 4, 27), date(2024, 5, 1), date(2024, 5, 2),
                date(2024, 5, 19), date(2024, 6, 25), date(2024, 8, 15), date(2024, 10, 31),
                date(2024, 11, 1), date(2024, 12, 25), date(2024, 12, 26)}
    assert set(holidays(2024)) == expected


def test_2026_moving_feasts_and_names() -> None:
    assert holiday_name(date(2026, 4, 5)) == "velikonočna nedelja"
    assert holiday_name(date(2026, 4, 6)) == "velikonočni ponedeljek"
    assert holiday_name(date(2026, 5, 24)) == "binkoštna nedelja (binkošti)"
    assert holiday_name(date(2026, 2, 8)).startswith("Prešernov dan")  # type: ignore[union-attr]
    assert holiday_name(date(2026, 11, 1)) == "dan spomina na mrtve"
    assert holiday_name(date(2026, 11, 2)) is None
    assert holiday_name(date(2026, 4, 3)) is None  # Good Friday is a working day


def test_2_january_was_a_working_day_2013_to_2016() -> None:
    assert holiday_name(date(2012, 1, 2)) == "novo leto"
    assert all(holiday_name(date(y, 1, 2)) is None for y in range(2013, 2017))
    assert holiday_name(date(2017, 1, 2)) == "novo leto"
    assert len(holidays(2015)) == 14 and len(holidays(2026)) == 15
