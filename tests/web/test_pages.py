"""The modules through their pages (SQLite and PostgreSQL): every entitlement kind,
cards and QR credentials, changes reaching devices as signed batches, search, a member's
entries and denials, live list and stream, statistics, fleet commands, receipts and
reprints, export and erasure, the user CLI."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from cloud_bridge.api_models import MemberIn
from cloud_bridge.cli import app as cli_app
from cloud_bridge.db_schema import (
    change_log,
    commands,
    credentials,
    entitlements,
    members,
    write_tx,
)
from cloud_bridge.device_reports import store_command_result, store_state
from cloud_bridge.membership_ops import create_member
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.web.device_commands import record_command
from cloud_bridge.web.plans import plan_prices, plans
from cloud_bridge.wire import CommandResult, DeviceState
from contracts.messages import SIGNED_PAYLOAD, ChangeBatch
from contracts.signed_envelope import verify_envelope
from tests.web.conftest import WebSite
from tests.web.seed import (
    Seeded,
    add_events,
    decision,
    ok_redirect,
    receipt,
    report_device,
    seed,
)


@pytest.fixture
def admin(site: WebSite) -> tuple[TestClient, str, Seeded]:
    a, _ = site.tenants
    client, csrf = site.login(site.user(a, "administrator"))
    return client, csrf, seed(client, csrf, site.engine, a)


def batches(site: WebSite, tenant: str) -> list[ChangeBatch]:
    key = TenantKeyStore(site.keys_dir).get(tenant).public_key
    out = []
    for payload in site.published.on(f"{tenant}/members/changes"):
        parsed = SIGNED_PAYLOAD.validate_json(verify_envelope(payload, key))
        assert isinstance(parsed, ChangeBatch)
        out.append(parsed)
    return out


def test_every_entitlement_kind_and_credential_reaches_devices_signed(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    url = f"/t/{a}/members/{s.member_id}"
    forms = [
        {"kind": "membership", "valid_from": "2026-01-01", "valid_until": "2026-12-31",
         "zones": "main, sauna", "windows": "mon-fri 06:00-14:00; sat,sun 22:00-02:00"},
        {"kind": "punch_card", "entries_total": "10"},
        {"kind": "day_ticket", "valid_on": "2026-12-24"},
        {"kind": "gift_voucher", "entries_total": "1", "voucher_code": "DARILO-2026"},
    ]
    for form in forms:
        ok_redirect(client.post(f"{url}/entitlements", data={"csrf_token": csrf, **form},
                                follow_redirects=False))
    # a punch card without entries is refused beside the field, the values kept
    bad = client.post(f"{url}/entitlements", data={"csrf_token": csrf, "kind": "punch_card",
                                                   "zones": "bazen"}, follow_redirects=False)
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    assert 'id="new-e-entries_total"' in bad.text and "potrebuje število vstopov" in bad.text
    assert 'value="bazen"' in bad.text
    ok_redirect(client.post(f"{url}/credentials", data={"csrf_token": csrf, "kind": "qr"},
                            follow_redirects=False))
    with site.engine.connect() as conn:
        rows = {r.kind: r for r in conn.execute(select(entitlements).where(
            entitlements.c.tenant == a, entitlements.c.member_id == s.member_id))}
        creds = {r.kind: r for r in conn.execute(select(credentials).where(
            credentials.c.tenant == a))}
    membership = [r for r in rows.values() if r.kind == "membership" and r.zones]
    assert membership and membership[0].zones == ["main", "sauna"]
    assert membership[0].windows == [{"days": [0, 1, 2, 3, 4], "start": "06:00", "end": "14:00"},
                                     {"days": [5, 6], "start": "22:00", "end": "02:00"}]
    assert membership[0].valid_to - membership[0].valid_from == 365 * 86400  # whole days
    assert rows["day_ticket"].valid_on == "2026-12-24"
    assert rows["gift_voucher"].credential_id == creds["voucher"].id
    assert creds["qr"].hash is None  # signed phone QR only
    assert creds["card"].hash and "04A1" not in json.dumps(dict(creds["card"]._mapping))

    # freeze the membership: an edit through the same form
    ent = membership[0]
    ok_redirect(client.post(f"{url}/entitlements/{ent.id}", data={
        "csrf_token": csrf, "kind": "membership", "valid_from": "2026-01-01",
        "valid_until": "2026-12-31", "zones": "main", "frozen_from": "2026-06-01",
        "frozen_until": "2026-06-30"}, follow_redirects=False))
    page = client.get(url).text
    assert "1. 6. 2026" in page and "30. 6. 2026" in page and "2026-06-01" not in page

    signed = batches(site, a)
    assert [b.to_version for b in signed] == list(range(1, len(signed) + 1))
    changes = [c.model_dump(mode="json") for b in signed for c in b.changes]
    kinds = {c.get("kind") for c in changes if c["entity"] == "entitlement"}
    assert kinds == {"membership", "punch_card", "day_ticket", "gift_voucher"}
    frozen = [c for c in changes if c.get("id") == ent.id and c.get("frozen_from")]
    assert frozen and frozen[-1]["zones"] == ["main"]
    assert all("last_name" not in c for c in changes)  # devices get first names only


def test_search_is_a_case_folded_prefix_and_pages(site: WebSite,
                                                 admin: tuple[TestClient, str, Seeded]) -> None:
    client, _, s = admin
    a, b = site.tenants
    with write_tx(site.engine) as conn:
        for i in range(120):
            create_member(conn, a, MemberIn(id=f"k{i:03d}", first_name=f"Jure{i}",
                                            last_name="Kovač", email=f"jk{i}@x.si"))
        create_member(conn, b, MemberIn(id="other", first_name="Kovač", last_name="Kovač"))
    page0 = client.get(f"/t/{a}/members", params={"q": "kov"}).text
    assert page0.count("Kovač Jure") == 50 and "naslednja →" in page0
    page2 = client.get(f"/t/{a}/members", params={"q": "KOV", "page": 2}).text
    assert page2.count("Kovač Jure") == 20 and "naslednja →" not in page2
    assert "/members/other" not in page0 + page2  # tenant B's Kovač never shows
    assert client.get(f"/t/{a}/members", params={"q": "jk7"}).text.count("Kovač Jure") == 11
    jure = client.get(f"/t/{a}/members", params={"q": "jure", "page": 2}).text
    assert jure.count("Kovač Jure") == 20 and "naslednja →" not in jure  # by first name
    assert client.get(f"/t/{a}/members", params={"q": "kov jure11"}).text.count(
        "Kovač Jure11") == 11  # last name, then first name
    assert "Ana" in client.get(f"/t/{a}/members", params={"q": s.member_id}).text
    assert "Ni najdenih članov" in client.get(f"/t/{a}/members", params={"q": "zz"}).text


def test_member_entries_live_list_stream_and_statistics(
        site: WebSite, admin: tuple[TestClient, str, Seeded],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, s = admin
    a, _ = site.tenants
    page = client.get(f"/t/{a}/members/{s.member_id}").text
    assert "Dovoljeno" in page
    add_events(site.engine, a, s.device, [decision(s.member_id, False, "expired")],
               start_seq=10)
    page = client.get(f"/t/{a}/members/{s.member_id}").text
    assert "Članarina je potekla." in page or "potekla" in page
    assert "expired" not in page.split("<main>")[1]  # no raw reason code

    live = client.get(f"/t/{a}/live").text
    assert "Ana Novak" in live and "unknown_credential" not in live
    assert "Zavrnjeno" in live
    assert re.search(r'id="fig-denied"[^>]*>2<', live)  # unknown card + expired
    assert re.search(r'id="fig-occupancy"[^>]*>1<', live)
    cursor = int(re.search(r"after=(\d+)", live).group(1))

    add_events(site.engine, a, s.device, [decision(s.member_id, True, "granted", "out")],
               start_seq=11)
    # another bridge process committed late: arrival time before the page's cursor
    add_events(site.engine, a, "dev-late", [decision(None, False, "blocked")],
               received_at=cursor - 2_000)
    monkeypatch.setattr("cloud_bridge.web.live.STREAM_MAX_S", 1.5)
    body = client.get(f"/t/{a}/live/stream", params={"after": cursor}).text
    sent = [json.loads(line[6:]) for line in body.splitlines()
            if line.startswith("data: ") and '"key"' in line]
    keys = [e["key"] for e in sent]
    # each event once per stream although every poll looks back OVERLAP_MS (the page's
    # own rows may come again in the first poll; live.js skips keys it shows)
    assert f"{s.device}:11" in keys and len(keys) == len(set(keys))
    assert "dev-late:1" in keys  # the stream's look-back catches out-of-order commits
    assert sent[-1]["name"] == "Ana Novak" and sent[-1]["direction"] == "out"
    other_site = client.get(f"/t/{a}/live", params={"site": "nowhere"}).text
    assert "Ana Novak" not in other_site

    stats = client.get(f"/t/{a}/stats").text
    assert stats.count('<rect class="granted"') == 14 + 24
    assert "Vstopi po urah" in stats


def test_fleet_commands_and_results(site: WebSite,
                                    admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    page = client.get(f"/t/{a}/fleet").text
    assert "povezana" in page and "Odpri g1" in page
    assert 'tiskalnik receipt: <span class="ok">deluje' in page
    ok_redirect(client.post(f"/t/{a}/fleet/command", data={
        "csrf_token": csrf, "device": s.device, "name": "open", "gate": "g1",
        "direction": "in"}, follow_redirects=False))
    sent = site.published.on(f"{a}/{s.device}/cmd/open")
    assert len(sent) == 1
    body = json.loads(sent[0])
    assert body["args"] == {"gate": "g1", "direction": "in"}
    # a physical action: valid for the default 10 s
    assert 0 < body["expires_at"] - time.time() * 1000 <= 10_000
    assert "čakam …" in client.get(f"/t/{a}/fleet").text
    with write_tx(site.engine) as conn:
        store_command_result(conn, a, s.device, CommandResult(
            v=1, request_id=body["request_id"], name="open", ok=True,
            result={"pulsed": True}))
    assert "pulsed=True" in client.get(f"/t/{a}/fleet").text
    # a device of nobody's is refused; nothing is published for it
    r = client.post(f"/t/{a}/fleet/command", data={"csrf_token": csrf, "device": "ghost",
                                                   "name": "reload"})
    assert r.status_code == 404 and not site.published.on("ghost/cmd/reload")


def outcomes(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-request="([^"]+)" data-outcome="(\w+)"', page))


def test_fleet_opens_only_online_devices_and_shows_each_outcome(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    report_device(site.engine, a, "gate-off")
    with write_tx(site.engine) as conn:  # its last will: offline
        store_state(conn, a, "gate-off", DeviceState(v=1, online=False))
    page = client.get(f"/t/{a}/fleet").text
    online_row = page.split(f'data-device="{s.device}"')[1].split("</tr>")[0]
    offline_row = page.split('data-device="gate-off"')[1].split("</tr>")[0]
    assert "Odpri g1" in online_row and "Odpri g1" not in offline_row
    assert "Naprava ni povezana" in offline_row and 'value="reload"' in offline_row

    def command(device: str, name: str, **form: str) -> int:
        return client.post(f"/t/{a}/fleet/command", data={
            "csrf_token": csrf, "device": device, "name": name, **form},
            follow_redirects=False).status_code

    # a forged open for the offline device is refused, and nothing is published
    assert command("gate-off", "open", gate="g1", direction="in") == 409
    assert not site.published.on(f"{a}/gate-off/cmd/open")
    # what only waits for the device may still be sent: reload, for 60 s
    assert command("gate-off", "reload") == 303
    reload_off = json.loads(site.published.on(f"{a}/gate-off/cmd/reload")[0])
    assert 50_000 < reload_off["expires_at"] - time.time() * 1000 <= 60_000
    for _ in range(3):
        assert command(s.device, "open", gate="g1", direction="in") == 303
    opened = [json.loads(b)["request_id"] for b in site.published.on(f"{a}/{s.device}/cmd/open")]
    with write_tx(site.engine) as conn:
        for rid, ok, error in ((opened[0], True, None), (opened[1], False, "expired"),
                               (opened[2], False, "gate g1: controller unplugged")):
            store_command_result(conn, a, s.device, CommandResult(
                v=1, request_id=rid, name="open", ok=ok, error=error,
                result={"pulsed": True} if ok else None))
        # sent long ago, never answered: past its expiry
        stale = record_command(conn, a, "gate-off", "resend-state", {},
                               int(time.time() * 1000) - 1000)
    page = client.get(f"/t/{a}/fleet").text
    assert outcomes(page) == {reload_off["request_id"]: "pending", opened[0]: "ok",
                              opened[1]: "expired", opened[2]: "error", stale: "expired"}
    rows = {rid: page.split(f'data-request="{rid}"')[1].split("</tr>")[0] for rid in outcomes(page)}
    assert "poteklo, ni izvedeno" in rows[opened[1]]
    assert "naprava ni odgovorila" in rows[stale]
    assert "naprava ni odgovorila" not in rows[opened[1]]
    assert "čaka na napravo" in rows[reload_off["request_id"]]
    assert "izvedeno" in rows[opened[0]] and "controller unplugged" in rows[opened[2]]
    assert 'src="/static/refresh.js"' in page  # one still pending: the page refreshes


def test_receipts_fiscal_states_and_reprint(site: WebSite,
                                            admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    add_events(site.engine, a, s.device, [
        receipt("P1-BLAG1-2", 990), receipt("P1-BLAG1-3", 500),
        ("pos.fiscalised", {"invoice_id": "P1-BLAG1-2", "eor": "eor-222", "subsequent": True,
                            "zoi": "x"}),
        ("pos.fiscal_rejected", {"invoice_id": "P1-BLAG1-3", "error_code": "S006",
                                 "error_message": "premise not registered"})], start_seq=20)
    page = client.get(f"/t/{a}/receipts").text
    assert "P1-BLAG1-1" in page and "čaka na naknadno pošiljanje" in page
    assert "zavrnjen S006" in page and "(naknadno poslano)" in page and "9,90\xa0€" in page
    only = client.get(f"/t/{a}/receipts", params={"state": "failed_rejected"}).text
    assert "P1-BLAG1-3" in only and "P1-BLAG1-2" not in only
    detail = client.get(f"/t/{a}/receipts/{s.device}/20").text
    assert "eor-222" in detail and "naknadnim pošiljanjem" in detail
    ok_redirect(client.post(f"/t/{a}/receipts/{s.device}/{s.receipt_seq}/reprint",
                            data={"csrf_token": csrf}, follow_redirects=False))
    sent = site.published.on(f"{a}/{s.device}/cmd/reprint")
    assert len(sent) == 1 and json.loads(sent[0])["args"] == {"invoice_id": "P1-BLAG1-1"}
    with site.engine.connect() as conn:
        assert conn.execute(select(commands.c.name).where(commands.c.tenant == a)).scalar() \
            == "reprint"
    assert client.get(f"/t/{a}/receipts/{s.device}/1").status_code == 404  # not a receipt
    # sixty newer receipts: the rejected one is no longer on the first page of all,
    # but the state filter still finds it
    add_events(site.engine, a, s.device, [receipt(f"P1-BLAG1-{n}") for n in range(4, 64)],
               start_seq=30)
    assert "P1-BLAG1-3<" not in client.get(f"/t/{a}/receipts").text
    only = client.get(f"/t/{a}/receipts", params={"state": "failed_rejected"}).text
    assert "P1-BLAG1-3<" in only and only.count("zavrnjen S006") == 1
    pending = client.get(f"/t/{a}/receipts", params={"state": "pending_subsequent",
                                                    "page": 1}).text
    assert pending.count("čaka na naknadno pošiljanje<") == 61 - 50  # 1 + 60 pending


def test_export_and_erasure(site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, b = site.tenants
    with write_tx(site.engine) as conn:
        create_member(conn, b, MemberIn(id="b-secret", first_name="Brigita"))
    r = client.get(f"/t/{a}/data/export.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(zf.namelist())
    for table in ("members", "credentials", "entitlements", "events", "change_log",
                  "web_users", "web_audit_log", "web_plans"):
        assert {f"{table}.json", f"{table}.csv"} <= names
    exported = json.loads(zf.read("members.json"))
    assert [m["first_name"] for m in exported] == ["Ana"]
    everything = b"".join(zf.read(n) for n in names - {"manifest.json"})
    assert b"Brigita" not in everything and b"$argon2" not in everything
    assert b"password_hash" not in everything and b"pin_hash" not in everything
    assert json.loads(zf.read("manifest.json"))["rows"]["members"] == 1
    assert len(json.loads(zf.read("events.json"))) == 3
    assert zf.read("events.csv").decode().splitlines()[0].startswith("tenant,device,seq")

    ok_redirect(client.post(f"/t/{a}/members/{s.member_id}/erase", data={"csrf_token": csrf},
                            follow_redirects=False))
    with site.engine.connect() as conn:
        assert conn.execute(select(members).where(members.c.tenant == a)).first() is None
        assert conn.execute(select(credentials).where(credentials.c.tenant == a)).first() \
            is None
        history = " ".join(conn.execute(select(change_log.c.changes).where(
            change_log.c.tenant == a)).scalars())
    assert "Ana" not in history
    last = batches(site, a)[-1]
    assert [c.model_dump(exclude_none=True) for c in last.changes] == [
        {"entity": "member", "op": "delete", "id": s.member_id}]
    audit_page = client.get(f"/t/{a}/audit").text
    assert "Izbrisan član" in audit_page and "Izvoženi podatki" in audit_page
    assert "member.erase" not in audit_page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_user_cli_creates_a_user_who_can_log_in(site: WebSite, db_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = site.tenants
    monkeypatch.setenv("BRIDGE_USER_PASSWORD", "first admin password")
    run = CliRunner().invoke(cli_app, ["user", "create", "--tenant", a, "--username",
                                       "Boss@Gym.si", "--role", "administrator", "--db",
                                       db_url])
    assert run.exit_code == 0, run.output
    client, _ = site.login("boss@gym.si", "first admin password")
    assert client.get(f"/t/{a}/users").status_code == 200
    again = CliRunner().invoke(cli_app, ["user", "create", "--tenant", a, "--username",
                                         "boss@gym.si", "--role", "reception", "--db", db_url])
    assert again.exit_code == 1 and "taken" in again.output
    bad = CliRunner().invoke(cli_app, ["user", "create", "--tenant", a, "--username", "x@y.si",
                                       "--role", "superuser", "--db", db_url])
    assert bad.exit_code == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_what_staff_type_is_shown_escaped(site: WebSite,
                                         admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, _ = admin
    a, _ = site.tenants
    loc = ok_redirect(client.post(f"/t/{a}/members", data={
        "csrf_token": csrf, "first_name": "<script>alert(1)</script>", "last_name": "Zz"},
        follow_redirects=False))
    for page in (client.get(loc).text, client.get(f"/t/{a}/members", params={"q": "zz"}).text):
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    shown = client.get(f"/t/{a}/plans", params={"error": "<img src=x onerror=alert(1)>"}).text
    assert "<img src=x" not in shown


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_plans_refuse_what_an_entitlement_would_refuse(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, _ = admin
    a, _ = site.tenants
    good = {"name": "X", "kind": "membership", "duration_days": "30", "price": "10",
            "vat_rate_bp": "2200"}
    for form, field, why in (
            ({"kind": "punch_card", "duration_days": ""}, "entries_total", "število vstopov"),
            ({"windows": "mon 25:00-26:00"}, "windows", "Ure vpišite"),
            ({"windows": "someday 08:00-09:00"}, "windows", "Ure vpišite"),
            ({"kind": "bogus"}, "kind", "Izberite eno od ponujenih možnosti"),
            ({"duration_days": "-5"}, "duration_days", "Vnesite 1 ali več"),
            ({"duration_days": "trideset"}, "duration_days", "celo število"),
            ({"duration_days": ""}, "duration_days", "trajanje v dneh"),
            ({"name": "A" * 10_000}, "name", "največ 80 znakov"),
            ({"price": "-3"}, "price", "znesek v evrih"),
            ({"price": "zastonj"}, "price", "znesek v evrih"),
            ({"vat_rate_bp": "1900"}, "vat_rate_bp", "ponujenih možnosti")):
        r = client.post(f"/t/{a}/plans", data={"csrf_token": csrf, **good, **form},
                        follow_redirects=False)
        assert r.status_code == 422 and "text/html" in r.headers["content-type"], form
        error = re.search(rf'id="e-{field}" class="field-error">([^<]*)<', r.text)
        assert error and why.lower() in error.group(1).lower(), (form, r.text[-3000:])
        typed = next(iter(form.values()))
        if field not in ("kind", "vat_rate_bp") and len(typed) < 100:
            assert f'value="{typed}"' in r.text  # what was typed is kept
    with site.engine.connect() as conn:  # none of them made a plan
        assert conn.execute(select(plans.c.name).where(plans.c.name == "X")).first() is None
    reception, rcsrf = site.login(site.user(a, "reception"))
    assert 'id="new-plan"' not in reception.get(f"/t/{a}/plans").text
    assert reception.post(f"/t/{a}/plans", data={"csrf_token": rcsrf, **good}
                          ).status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_plan_price_and_vat_are_stored_and_shown_as_money(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, _ = admin
    a, _ = site.tenants
    ok_redirect(client.post(f"/t/{a}/plans", data={
        "csrf_token": csrf, "name": "Sauna 10", "kind": "punch_card", "entries_total": "10",
        "price": "49,50", "vat_rate_bp": "950"}, follow_redirects=False))
    with site.engine.connect() as conn:
        row = conn.execute(select(plan_prices).join(plans, plans.c.id == plan_prices.c.plan_id)
                           .where(plans.c.name == "Sauna 10")).one()
    assert (row.price_cents, row.vat_rate_bp) == (4950, 950)
    page = client.get(f"/t/{a}/plans").text
    assert "49,50\xa0€" in page and "9,5 %" in page
    client.cookies.set("lang", "en")
    english = client.get(f"/t/{a}/plans").text
    assert "€49.50" in english and "incl. 9.5 % VAT" in english
