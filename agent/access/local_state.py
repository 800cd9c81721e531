"""Reads the LocalState for one credential from the store (inside the tap's transaction)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta

from agent.access.model import (
    CredentialRecord,
    Entitlement,
    EntitlementKind,
    LocalState,
    Member,
    Presence,
    SiteRules,
    TimeWindow,
)


def _dt(epoch_s: int | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def parse_windows(raw: str | None) -> tuple[TimeWindow, ...]:
    if not raw:
        return ()
    return tuple(
        TimeWindow(
            weekdays=frozenset(int(d) for d in w["days"]),
            start=time.fromisoformat(w["start"]),
            end=time.fromisoformat(w["end"]),
        )
        for w in json.loads(raw)
    )


def _remote_uses(raw: str | None, device: str) -> int:
    if not raw:
        return 0
    return sum(int(n) for d, n in json.loads(raw).items() if d != device)


# the columns of _ENTITLEMENTS_SQL, in order
_EntitlementColumns = tuple[str, str, int | None, int | None, str | None, int | None,
                            str | None, str | None, int | None, int | None, str | None,
                            int | None, str | None]


def _entitlement(row: _EntitlementColumns, device: str) -> Entitlement:
    (eid, kind, vfrom, vto, von, total, zones, windows, ffrom, fto, cred_id, used,
     remote) = row
    return Entitlement(
        id=eid,
        kind=EntitlementKind(kind),
        valid_from=_dt(vfrom),
        valid_to=_dt(vto),
        valid_on=date.fromisoformat(von) if von else None,
        entries_total=total,
        entries_used=(used or 0) + _remote_uses(remote, device),
        zones=frozenset(json.loads(zones)) if zones is not None else None,
        windows=parse_windows(windows),
        frozen_from=_dt(ffrom),
        frozen_to=_dt(fto),
        credential_id=cred_id,
    )


_ENTITLEMENTS_SQL = (
    "SELECT e.id, e.kind, e.valid_from, e.valid_to, e.valid_on, e.entries_total, e.zones, "
    "e.windows, e.frozen_from, e.frozen_to, e.credential_id, c.used, e.used_remote "
    "FROM entitlements e LEFT JOIN entry_counters c ON c.entitlement_id = e.id "
    "WHERE e.member_id = ?"
)


_CREDENTIAL_AND_MEMBER = (
    "SELECT c.id, c.member_id, c.kind, c.blocked, m.id, m.first_name, m.waiver_signed_on, "
    "m.blocked, m.waiver_version FROM credentials c LEFT JOIN members m ON m.id = c.member_id "
)
_CREDENTIAL_BY_HASH = _CREDENTIAL_AND_MEMBER + "WHERE c.hash = ?"
_CREDENTIAL_BY_ID = _CREDENTIAL_AND_MEMBER + "WHERE c.id = ? AND c.kind = 'qr'"


def load_state(
    conn: sqlite3.Connection,
    *,
    lookup_hash: str | None,
    credential_id: str | None,
    now: datetime,
    rules: SiteRules,
    need_occupancy: bool,
    device: str,
    presence_trusted_since: datetime | None = None,
) -> LocalState:
    """``presence_trusted_since``: set while the device is cut off from its site's other
    gates (docs/multi_gate.md); an older passage is not known to be the member's last one
    (they may have left through an unreachable gate), so it does not count for
    anti-passback. Occupancy still counts it: the site's last known count."""
    if lookup_hash is not None:
        row = conn.execute(_CREDENTIAL_BY_HASH, (lookup_hash,)).fetchone()
    else:
        row = conn.execute(_CREDENTIAL_BY_ID, (credential_id,)).fetchone()
    if row is None:
        return LocalState(credential=None)
    cred = CredentialRecord(id=row[0], member_id=row[1], kind=row[2], blocked=bool(row[3]))
    if row[4] is None:
        return LocalState(credential=cred)
    member = Member(
        id=row[4],
        first_name=row[5],
        waiver_signed_on=date.fromisoformat(row[6]) if row[6] else None,
        blocked=bool(row[7]),
        waiver_version=row[8],
    )
    ents = tuple(_entitlement(r, device) for r in conn.execute(_ENTITLEMENTS_SQL, (member.id,)))
    prow = conn.execute(
        "SELECT direction, at_ms FROM presence WHERE member_id = ?", (member.id,)
    ).fetchone()
    presence = (
        Presence(direction=prow[0], at=datetime.fromtimestamp(prow[1] / 1000, UTC))
        if prow
        else None
    )
    if presence is not None and presence_trusted_since is not None \
            and presence.at < presence_trusted_since:
        presence = None
    occupancy = 0
    if need_occupancy:
        since_ms = presence_expiry_cutoff(now, rules.presence_expiry)
        occupancy = int(
            conn.execute(
                "SELECT COUNT(*) FROM presence WHERE direction = 'in' AND at_ms > ?", (since_ms,)
            ).fetchone()[0]
        )
    return LocalState(cred, member, ents, presence, occupancy)


def presence_expiry_cutoff(now: datetime, expiry: timedelta) -> int:
    return int((now - expiry).timestamp() * 1000)
