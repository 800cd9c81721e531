"""Deterministic synthetic members for demos and load tests.

Member i gets card UID ``04`` + 6 bytes of i (so a technician can tap it again by
index) and one entitlement of a kind that rotates through everything the engine knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

FIRST_NAMES = (
    "Ana", "Luka", "Maja", "Jan", "Nika", "Žiga", "Eva", "Matej", "Špela", "Tilen",
    "Urša", "Rok", "Petra", "Nejc", "Katja", "Gašper", "Tina", "Blaž", "Mojca", "Črt",
)
KINDS = ("membership", "punch_card", "day_ticket", "off_peak", "gift_voucher")


def uid_for(index: int) -> str:
    return "04" + f"{index:012X}"


def member_record(index: int, today: date | None = None) -> dict[str, Any]:
    today = today or datetime.now(UTC).date()
    now = int(datetime.now(UTC).timestamp())
    kind = KINDS[index % len(KINDS)]
    member_id = f"m{index:07d}"
    ent: dict[str, Any] = {"entity": "entitlement", "op": "upsert", "id": f"{member_id}-e1",
                           "member_id": member_id}
    year = 365 * 24 * 3600
    if kind == "membership":
        ent |= {"kind": "membership", "valid_from": now - year, "valid_to": now + year}
    elif kind == "punch_card":
        ent |= {"kind": "punch_card", "valid_from": now - year, "valid_to": now + year,
                "entries_total": 10}
    elif kind == "day_ticket":
        ent |= {"kind": "day_ticket", "valid_on": today.isoformat()}
    elif kind == "off_peak":
        ent |= {"kind": "membership", "valid_from": now - year, "valid_to": now + year,
                "windows": [{"days": [0, 1, 2, 3, 4], "start": "06:00", "end": "16:00"},
                            {"days": [5, 6], "start": "08:00", "end": "20:00"}]}
    else:
        ent |= {"kind": "gift_voucher", "valid_from": now - year, "valid_to": now + year,
                "entries_total": 1}
    return {
        "id": member_id,
        "first_name": FIRST_NAMES[index % len(FIRST_NAMES)],
        "uid": uid_for(index),
        "waiver_signed_on": (today - timedelta(days=30)).isoformat(),
        "entitlement": ent,
        "kind": kind,
    }


def generate(count: int, start: int = 1) -> Iterator[dict[str, Any]]:
    today = datetime.now(UTC).date()
    for i in range(start, start + count):
        yield member_record(i, today)
