"""The bridge's side of the member's phone QR page (cloud_bridge/member_qr.py): the server
link key, and which signed-QR credential a member link stands for.

A member's link is bound to their newest signed-QR credential: the link epoch is derived
from that credential's id, so revoking the credential and issuing a new one turns every
old link (a lost phone, a forwarded message) into a 404, while the new link works.
Blocking the credential or the member makes the page answer "not valid now".
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, RowMapping, select

from cloud_bridge.db_schema import credentials, entitlements, members, read_tx
from cloud_bridge.member_qr import CredentialGetter, MemberQrCredential, member_link

LINK_KEY_FILE = "member-link.key"
# a credential has no end date on the bridge (entitlements have): the token's own window
# is then this horizon, and the gate still checks the member's entitlements
HORIZON_S = 5 * 365 * 86400
LOCAL_TZ = ZoneInfo("Europe/Ljubljana")  # a day ticket's day is the site's


def load_link_key(keys_dir: Path) -> bytes:
    """The server secret behind every member link, made on first use (mode 0600)."""
    path = keys_dir / LINK_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another bridge process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    key = base64.b64decode(path.read_text().strip(), validate=True)
    if len(key) < 32:
        raise ValueError(f"{path} must hold at least 32 random bytes, base64")
    return key


def link_epoch(credential_id: str) -> int:
    return int.from_bytes(hashlib.sha256(credential_id.encode()).digest()[:6], "big")


def _newest_qr(conn: Connection, tenant: str, member_id: str) -> RowMapping | None:
    # signed-QR credentials are kind 'qr' without a hash (a static code has one)
    return conn.execute(select(credentials).where(
        credentials.c.tenant == tenant, credentials.c.member_id == member_id,
        credentials.c.kind == "qr", credentials.c.hash.is_(None))
        .order_by(credentials.c.created_at.desc(), credentials.c.id.desc())).mappings().first()


def _valid_now(ent: RowMapping, now_s: int, today: str, cred_id: str) -> bool:
    """Roughly what a gate checks of one entitlement (dates, freeze, entries left), to
    tell the member "no valid membership" on the page; zones and hours are left to the
    gate, which decides."""
    if ent["credential_id"] not in (None, cred_id):
        return False  # a voucher bound to its own code
    if ent["valid_on"] is not None:
        in_dates = ent["valid_on"] == today
    else:
        in_dates = ((ent["valid_from"] or 0) <= now_s
                    and (ent["valid_to"] is None or now_s < ent["valid_to"]))
    frozen = (ent["frozen_from"] is not None and ent["frozen_from"] <= now_s
              and (ent["frozen_to"] is None or now_s < ent["frozen_to"]))
    used = sum((ent["used_by_device"] or {}).values())
    left = ent["entries_total"] is None or used < ent["entries_total"]
    return in_dates and not frozen and left


def has_pass(conn: Connection, tenant: str, member_id: str, cred_id: str) -> bool:
    now = datetime.now(LOCAL_TZ)
    rows = conn.execute(select(entitlements).where(
        entitlements.c.tenant == tenant, entitlements.c.member_id == member_id)).mappings()
    return any(_valid_now(e, int(now.timestamp()), now.date().isoformat(), cred_id)
               for e in rows)


def credential_getter(engine: Engine) -> CredentialGetter:
    def get(tenant: str, member_id: str) -> MemberQrCredential | None:
        with read_tx(engine) as conn:
            cred = _newest_qr(conn, tenant, member_id)
            if cred is None:
                return None
            member = conn.execute(select(members.c.first_name, members.c.blocked).where(
                members.c.tenant == tenant, members.c.id == member_id)).first()
            valid = has_pass(conn, tenant, member_id, cred["id"])
        if member is None:
            return None
        start = int(cred["created_at"]) // 1000
        return MemberQrCredential(
            credential_id=cred["id"], valid_from=start, valid_to=start + HORIZON_S,
            first_name=member.first_name or "", blocked=bool(cred["blocked"] or member.blocked),
            link_epoch=link_epoch(cred["id"]), has_pass=valid)

    return get


def phone_links(conn: Connection, base_url: str, key: bytes, tenant: str,
                member_id: str) -> dict[str, str]:
    """{credential id: link} for the member's current signed-QR credential (staff send
    the link to the member; it is secret like a password)."""
    cred = _newest_qr(conn, tenant, member_id)
    if cred is None:
        return {}
    return {cred["id"]: member_link(base_url, key, tenant, member_id, link_epoch(cred["id"]))}
