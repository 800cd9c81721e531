"""Member notices (issue 18, part 4) through the notifications outbox to a real SMTP
server (aiosmtpd) and the file SMS provider, on SQLite and PostgreSQL: the sweep finds
memberships about to end and punch cards running low (entries counted from ingested
gate events), tells each member once per entitlement and threshold, in Slovenian;
opted-out, blocked and unreachable members get nothing; the member's own page and the
staff toggle set the one opt-out that every kind (waiver to sign too) respects; a
voucher sale queues its notice in the sale's transaction."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud_bridge.api_models import EntitlementIn, MemberIn
from cloud_bridge.db_schema import members, write_tx
from cloud_bridge.ingest import Ingestor
from cloud_bridge.member_notice_sweep import (
    NoticeSettings,
    ensure_member_notice_schema,
    set_tenant_settings,
    sweep,
)
from cloud_bridge.member_notices import OptoutLinks, queue_voucher_bought_notice
from cloud_bridge.member_qr_links import LOCAL_TZ, load_link_key
from cloud_bridge.membership_ops import create_entitlement, create_member
from cloud_bridge.notice_optouts import opt_out, opted_out, optout_token
from cloud_bridge.notifications import Notifier, mailer_from_url, sms_from_url
from cloud_bridge.notifications.outbox import outbox as notification_outbox
from cloud_bridge.waiver_notices import waiver_to_sign
from cloud_bridge.waivers import ensure_waiver_schema, publish
from cloud_bridge.wire import EventBatch
from tests.outbox_isolation import set_aside_other_tenants
from tests.smtp_server import SmtpServer
from tests.web.conftest import WebSite

NOW = datetime.now(LOCAL_TZ).replace(microsecond=0)


def _member(conn, tenant: str, name: str, **contact: object) -> str:  # type: ignore[no-untyped-def]
    member_id, _ = create_member(conn, tenant, MemberIn(first_name=name, **contact))  # type: ignore[arg-type]
    return member_id


def _membership(conn, tenant: str, member_id: str, ends_in_days: float) -> str:  # type: ignore[no-untyped-def]
    ent_id, _ = create_entitlement(conn, tenant, EntitlementIn(
        member_id=member_id, kind="membership",
        valid_from=int((NOW - timedelta(days=20)).timestamp()),
        valid_to=int((NOW + timedelta(days=ends_in_days)).timestamp())))
    return ent_id


def _use_entries(engine, tenant: str, member_id: str, ent_id: str, n: int) -> None:  # type: ignore[no-untyped-def]
    """n entries consumed at a gate, as the bridge ingests them from the device."""
    device = f"gate-{uuid.uuid4().hex[:6]}"
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = [{"id": str(uuid.uuid4()), "tenant": tenant, "device": device, "seq": seq,
               "ts": ts, "type": "access.decision",
               "data": {"gate": "g1", "member": member_id, "entitlement": ent_id,
                        "consumed": True, "granted": True}} for seq in range(1, n + 1)]
    Ingestor(engine).ingest([EventBatch.model_validate_json(json.dumps(
        {"v": 1, "tenant": tenant, "device": device, "events": events}))])


def _outbox(engine, tenant: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return sorted((r.kind, r.channel, r.recipient) for r in conn.execute(
            select(notification_outbox).where(notification_outbox.c.tenant == tenant)))


@pytest.fixture
def notifier(site: WebSite, smtp_server: SmtpServer, tmp_path: Path) -> Notifier:
    ensure_member_notice_schema(site.engine)
    set_aside_other_tenants(site.engine, site.tenants)
    return Notifier(site.engine, mailer_from_url(smtp_server.url()),
                    sms_from_url(f"file://{tmp_path / 'sms.jsonl'}"))


def test_the_sweep_tells_each_member_once_in_slovenian(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer, tmp_path: Path) -> None:
    tenant, other = site.tenants
    links = OptoutLinks("https://bridge.example.si", load_link_key(site.keys_dir))
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si", phone="+38640111222")
        _membership(conn, tenant, ana, 3)  # ends in 3 days: told
        bor = _member(conn, tenant, "Bor", email="bor@example.si")
        _membership(conn, tenant, bor, 20)  # 20 days: not yet
        card = create_entitlement(conn, tenant, EntitlementIn(
            member_id=bor, kind="punch_card", entries_total=5))[0]
        create_entitlement(conn, tenant, EntitlementIn(  # new, none used: not "low"
            member_id=bor, kind="punch_card", entries_total=2))
        quiet = _member(conn, tenant, "Cene", email="cene@example.si")
        _membership(conn, tenant, quiet, 2)
        opt_out(conn, tenant, quiet)  # every notice off
        stopped = _member(conn, tenant, "Dora", email="dora@example.si", blocked=True)
        _membership(conn, tenant, stopped, 2)
        eva = _member(conn, other, "Eva", email="eva@example.si")
        _membership(conn, other, eva, 20)
        set_tenant_settings(conn, other, NoticeSettings(expiring_days=30))
    _use_entries(site.engine, tenant, bor, card, 2)  # 3 left: above the threshold of 2

    assert sweep(site.engine, notifier, NOW, links) == 3  # Ana by mail and SMS, Eva
    _use_entries(site.engine, tenant, bor, card, 1)  # 2 left
    assert sweep(site.engine, notifier, NOW, links) == 1
    _use_entries(site.engine, tenant, bor, card, 1)  # 1 left: same threshold, not again
    assert sweep(site.engine, notifier, NOW, links) == 0
    assert _outbox(site.engine, tenant) == [
        ("membership_expiring", "email", "ana@example.si"),
        ("membership_expiring", "sms", "+38640111222"),
        ("punch_card_low", "email", "bor@example.si")]

    notifier.deliver_due()
    mails = {m["To"]: m for m in smtp_server.wait_for(3)}
    assert set(mails) == {"ana@example.si", "bor@example.si", "eva@example.si"}
    expiring = mails["ana@example.si"]
    assert expiring["Subject"].startswith("Vaša članarina poteče ")
    text = expiring.get_content()
    days = ((NOW + timedelta(days=3) - timedelta(seconds=1)).date() - NOW.date()).days
    assert "Pozdravljeni, Ana" in text and f"(še {days} dni)" in text
    link = f"https://bridge.example.si/member-notices/{tenant}/{ana}#k="
    assert link + optout_token(load_link_key(site.keys_dir), tenant, ana) in text
    assert "ostalo še obiskov: 2" in mails["bor@example.si"].get_content()
    # RFC 8058: the mail client's "unsubscribe" button posts to the header's address
    assert expiring["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    oneclick = expiring["List-Unsubscribe"].strip("<>").removeprefix("https://bridge.example.si")
    assert oneclick.startswith(f"/member-notices/{tenant}/{ana}/one-click?k=")
    c = site.client()
    form = {"List-Unsubscribe": "One-Click"}
    assert c.post(oneclick[:-2] + "xx", data=form).status_code == 404
    assert c.post(oneclick.replace(tenant, other), data=form).status_code == 404
    assert c.post(oneclick, data=form).status_code == 200
    with site.engine.connect() as conn:
        assert opted_out(conn, tenant, ana) and not opted_out(conn, tenant, bor)
    (sms,) = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert sms["to"] == "+38640111222" and sms["text"].startswith("Vaša članarina velja do ")


def test_an_extended_membership_is_told_again_near_its_new_end(
        site: WebSite, notifier: Notifier) -> None:
    tenant, _ = site.tenants
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si")
        _membership(conn, tenant, ana, 2)
    assert sweep(site.engine, notifier, NOW) == 1
    later = NOW + timedelta(days=30)
    with write_tx(site.engine) as conn:
        _membership(conn, tenant, ana, 33)  # renewed: ends 3 days after ``later``
    assert sweep(site.engine, notifier, later) == 1
    assert sweep(site.engine, notifier, later) == 0


def test_the_members_page_and_the_staff_toggle_set_one_opt_out_for_every_kind(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer) -> None:
    tenant, other = site.tenants
    ensure_waiver_schema(site.engine)
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si")
        _membership(conn, tenant, ana, 2)
    key = load_link_key(site.keys_dir)
    token = optout_token(key, tenant, ana)
    c = site.client()
    page = c.get(f"/member-notices/{tenant}/{ana}")
    assert page.status_code == 200 and "Naša sporočila" in page.text
    assert token not in page.text and "no-store" in page.headers["cache-control"]
    state = f"/member-notices/{tenant}/{ana}/state"
    assert c.get(state, headers={"authorization": "Bearer " + "x" * 22}).status_code == 404
    assert c.get(f"/member-notices/{other}/{ana}/state",
                 headers={"authorization": f"Bearer {token}"}).status_code == 404
    bearer = {"authorization": f"Bearer {token}"}
    assert c.get(state, headers=bearer).json() == {"opted_out": False}
    assert c.put(state, headers=bearer, json={"opted_out": True}).json() == {"opted_out": True}

    version, _failed = publish(site.engine, tenant, "Izjava", "Besedilo.", by="test")
    assert waiver_to_sign(site.engine, notifier, tenant, version) == 0  # the same opt-out
    assert sweep(site.engine, notifier, NOW) == 0
    with write_tx(site.engine) as conn:
        assert queue_voucher_bought_notice(conn, notifier, tenant, "v-1", code="ABC",
                                           member_id=ana) == 0

    clerk, csrf = site.login(site.user(tenant, "reception"))
    assert "Od nas ne prejema sporočil" in clerk.get(f"/t/{tenant}/members/{ana}").text
    r = clerk.post(f"/t/{tenant}/members/{ana}/notices",
                   data={"csrf_token": csrf, "opted_out": "0"}, follow_redirects=False)
    assert r.status_code == 303
    with site.engine.connect() as conn:
        assert not opted_out(conn, tenant, ana, "membership_expiring")
    assert c.get(state, headers=bearer).json() == {"opted_out": False}
    assert sweep(site.engine, notifier, NOW) == 1
    r = clerk.post(f"/t/{other}/members/{ana}/notices",
                   data={"csrf_token": csrf, "opted_out": "1"}, follow_redirects=False)
    assert r.status_code in (403, 404)  # another tenant's page: not this clerk's
    with site.engine.connect() as conn:
        assert not opted_out(conn, tenant, ana)


def test_a_voucher_sale_queues_its_notice_once(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer) -> None:
    tenant, _ = site.tenants
    with write_tx(site.engine) as conn:
        buyer = _member(conn, tenant, "Ana", email="ana@example.si")
        assert queue_voucher_bought_notice(
            conn, notifier, tenant, "v-1", code="GIFT-7Q2K", member_id=buyer,
            amount_cents=5000, valid_until=date(2027, 12, 31)) == 1
        assert queue_voucher_bought_notice(conn, notifier, tenant, "v-1", code="GIFT-7Q2K",
                                           member_id=buyer) == 0  # the same voucher
        # a buyer who is no member: the address given at the till
        assert queue_voucher_bought_notice(conn, notifier, tenant, "v-2", code="GIFT-9",
                                           email="gost@example.si") == 1
        assert conn.execute(select(members.c.id).where(members.c.tenant == tenant)).all()
    notifier.deliver_due()
    mails = {m["To"]: m for m in smtp_server.wait_for(2)}
    mail = mails["ana@example.si"]
    assert mail["Subject"] == "Vaš darilni bon"
    text = mail.get_content()
    assert "GIFT-7Q2K" in text and "50,00" in text and "31. dec. 2027" in text
    assert "Pozdravljeni," in mails["gost@example.si"].get_content()


def test_tenant_settings_are_kept_and_refused_beside_the_field(site: WebSite) -> None:
    tenant, _ = site.tenants
    admin, csrf = site.login(site.user(tenant, "administrator"))
    r = admin.post(f"/t/{tenant}/member-notices",
                   data={"csrf_token": csrf, "expiring_days": "99", "punch_low": "3"})
    assert r.status_code == 422 and "od 0 do 60" in r.text and 'value="99"' in r.text
    r = admin.post(f"/t/{tenant}/member-notices",
                   data={"csrf_token": csrf, "expiring_days": "14", "punch_low": "3"})
    assert r.status_code == 200 and 'value="14"' in r.text
    clerk, csrf2 = site.login(site.user(tenant, "reception"))
    r = clerk.post(f"/t/{tenant}/member-notices",
                   data={"csrf_token": csrf2, "expiring_days": "1", "punch_low": "1"})
    assert r.status_code == 403
    assert 'value="14"' not in clerk.get(f"/t/{tenant}/member-notices").text
    assert "14" in clerk.get(f"/t/{tenant}/member-notices").text


def test_waiver_notices_go_by_sms_too_and_link_the_opt_out_page(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer, tmp_path: Path) -> None:
    tenant, _ = site.tenants
    ensure_waiver_schema(site.engine)
    links = OptoutLinks("https://bridge.example.si", load_link_key(site.keys_dir))
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si", phone="+38640111222")
        _member(conn, tenant, "Bor", phone="+38641000000")
        _member(conn, tenant, "Cene")  # neither: nothing
    version, _failed = publish(site.engine, tenant, "Izjava", "Besedilo.", by="test")
    assert waiver_to_sign(site.engine, notifier, tenant, version, links) == 3
    assert waiver_to_sign(site.engine, notifier, tenant, version, links) == 0
    notifier.deliver_due()
    (mail,) = smtp_server.wait_for(1)
    assert mail["Subject"] == "Podpišite novo izjavo"
    assert f"/member-notices/{tenant}/{ana}#k=" in mail.get_content()
    texts = sorted(json.loads(line)["to"]
                   for line in (tmp_path / "sms.jsonl").read_text().splitlines())
    assert texts == ["+38640111222", "+38641000000"]


def test_the_bridge_thread_sweeps_and_the_notifier_sends(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer) -> None:
    from cloud_bridge.member_notice_sweep import MemberNoticeSweep

    tenant, _ = site.tenants
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si")
        _membership(conn, tenant, ana, 1)
    sweeper = MemberNoticeSweep(site.engine, notifier, interval_s=0.2)
    notifier.start(interval_s=0.2)
    sweeper.start()
    try:
        (mail,) = smtp_server.wait_for(1)
        time.sleep(0.8)  # a few more passes of both threads
    finally:
        sweeper.stop()
        notifier.stop()
    assert mail["To"] == "ana@example.si"
    assert len(smtp_server.messages) == 1  # later passes found nothing new


def test_a_gift_voucher_sold_on_the_member_page_mails_its_code_unless_opted_out(
        site: WebSite, notifier: Notifier, smtp_server: SmtpServer) -> None:
    import dataclasses

    tenant, _ = site.tenants
    ctx = site.app.state.web_context
    site.app.state.web_context = dataclasses.replace(ctx, notifier=notifier)
    with write_tx(site.engine) as conn:
        ana = _member(conn, tenant, "Ana", email="ana@example.si")
        quiet = _member(conn, tenant, "Cene", email="cene@example.si")
        opt_out(conn, tenant, quiet)
    clerk, csrf = site.login(site.user(tenant, "reception"))
    for member, code in ((ana, "DARILO-ANA-1"), (quiet, "DARILO-CENE-1")):
        r = clerk.post(f"/t/{tenant}/members/{member}/entitlements", follow_redirects=False,
                       data={"csrf_token": csrf, "kind": "gift_voucher",
                             "entries_total": "3", "voucher_code": code,
                             "valid_from": "2026-12-01", "valid_until": "2027-06-30"})
        assert r.status_code == 303, r.text[:500]
    notifier.deliver_due()
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "ana@example.si" and mail["Subject"] == "Vaš darilni bon"
    text = mail.get_content()
    assert "DARILO-ANA-1" in text and "30. jun. 2027" in text
    assert [kind for kind, _r, _s in _outbox(site.engine, tenant)] == ["voucher_bought"]
