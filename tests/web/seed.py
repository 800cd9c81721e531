"""Rows a web test needs in a tenant: a member with a card, a pass and a plan (made
through the pages), a device that reported state, access decisions and POS receipts."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from cloud_bridge.db_schema import credentials, devices, entitlements, events, write_tx
from cloud_bridge.web.auth_schema import users

UID = "04A1B2C3D4E5F6"


@dataclass
class Seeded:
    member_id: str
    ent_id: str
    cred_id: str
    plan_id: str
    device: str
    receipt_seq: int
    user_id: int
    product_id: str
    ticket_id: str = ""


def ok_redirect(response: Any) -> str:
    assert response.status_code == 303, response.text[:500]
    location = response.headers["location"]
    assert "error=" not in location, location
    return str(location)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def add_events(engine: Engine, tenant: str, device: str, items: list[tuple[str, dict]],
               start_seq: int = 1, ts: datetime | None = None,
               received_at: int | None = None) -> int:
    now = ts or datetime.now(UTC)
    with write_tx(engine) as conn:
        for i, (kind, data) in enumerate(items):
            conn.execute(insert(events).values(
                tenant=tenant, device=device, seq=start_seq + i, id=str(uuid.uuid4()),
                ts=utc_iso(now + timedelta(milliseconds=i)), type=kind, data=data,
                received_at=received_at or int(time.time() * 1000)))
    return start_seq + len(items) - 1


def report_device(engine: Engine, tenant: str, device: str, site: str = "s1") -> None:
    state = {"v": 1, "online": True, "ts": utc_iso(datetime.now(UTC)), "version": "0.1.0",
             "site": site, "outbox_depth": 0, "membership_version": 0,
             "peripherals": [{"id": "g1", "role": "gate", "health": "ok", "detail": ""},
                             {"id": "receipt", "role": "printer", "health": "ok",
                              "detail": ""}]}
    with write_tx(engine) as conn:
        conn.execute(insert(devices).values(tenant=tenant, device=device, online=True,
                                            last_seen=int(time.time() * 1000),
                                            state_ts=state["ts"], state=state))


def decision(member: str | None, granted: bool, reason: str, direction: str = "in"
             ) -> tuple[str, dict]:
    return ("access.decision", {"reader": "entry", "gate": "g1", "zone": "main",
                                "direction": direction, "read_kind": "card",
                                "granted": granted, "reason": reason, "member": member,
                                "credential": None, "entitlement": None})


def receipt(invoice: str, total_cents: int = 1250) -> tuple[str, dict]:
    return ("pos.receipt", {
        "invoice_id": invoice, "issued_at": "2026-12-02T10:00:00+01:00", "zoi": "ab" * 16,
        "qr": "1" * 60, "lines": [{"name": "Kava", "quantity": "1", "unit_price_cents":
                                   total_cents, "discount_cents": 0, "vat": "22",
                                   "total_cents": total_cents, "unit": ""}],
        "payments": [{"method": "cash", "amount_cents": total_cents}],
        "totals": {"rates": [], "exempt_cents": 0, "total_cents": total_cents,
                   "paid_cents": total_cents, "change_cents": 0},
        "operator": {"name": "Maja", "foreign": False}, "fiscal_state": "pending",
        "eor": None, "deadline": "2026-12-04T22:59:59.000Z"})


def seed(client: TestClient, csrf: str, engine: Engine, tenant: str) -> Seeded:
    base = f"/t/{tenant}"
    ok_redirect(client.post(f"{base}/plans", data={
        "csrf_token": csrf, "name": "Monthly", "kind": "membership", "duration_days": "30",
        "price": "39,90", "vat_rate_bp": "2200"},
        follow_redirects=False))
    plan_id = re.search(r"/plans/(p-[0-9a-f]+)/active", client.get(f"{base}/plans").text)
    assert plan_id
    loc = ok_redirect(client.post(f"{base}/members", data={
        "csrf_token": csrf, "first_name": "Ana", "last_name": "Novak"}, follow_redirects=False))
    member_id = loc.split("/members/")[1].split("?")[0]
    ok_redirect(client.post(f"{base}/members/{member_id}/entitlements", data={
        "csrf_token": csrf, "plan_id": plan_id.group(1)}, follow_redirects=False))
    ok_redirect(client.post(f"{base}/members/{member_id}/credentials", data={
        "csrf_token": csrf, "kind": "card", "uid": UID}, follow_redirects=False))
    with engine.connect() as conn:
        ent_id = conn.execute(select(entitlements.c.id).where(
            entitlements.c.tenant == tenant)).scalar_one()
        cred_id = conn.execute(select(credentials.c.id).where(
            credentials.c.tenant == tenant)).scalar_one()
        user_id = conn.execute(select(users.c.id).where(users.c.tenant == tenant)).scalar()
    device = f"dev-{tenant}"
    report_device(engine, tenant, device)
    add_events(engine, tenant, device, [decision(member_id, True, "granted"),
                                        decision(None, False, "unknown_credential")])
    seq = add_events(engine, tenant, device, [receipt("P1-BLAG1-1")], start_seq=3)
    ok_redirect(client.post(f"{base}/catalogue", data={
        "csrf_token": csrf, "name": "Kava", "price": "1,80", "vat": "9.5",
        "category": "Pijače", "barcode": "3830001234567"}, follow_redirects=False))
    product = re.search(r"/catalogue/(p[0-9a-f]+)/active", client.get(f"{base}/catalogue").text)
    assert product
    ticket = ok_redirect(client.post(f"{base}/tickets", data={
        "csrf_token": csrf, "kind": "entries", "entries": "5", "price": "40",
        "valid_from": "1. 1. 2026", "valid_days": "365"}, follow_redirects=False))
    return Seeded(member_id, ent_id, cred_id, plan_id.group(1), device, seq, int(user_id),
                  product.group(1), ticket.split("/tickets/")[1].split("?")[0])
