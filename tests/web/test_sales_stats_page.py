"""The sales-and-use statistics page and its CSV files, on SQLite and PostgreSQL: plans
sold through the member pages (the real audit rows revenue is derived from), sale moments
moved to known local days, vouchers used, used up and expired; every expected figure is
counted here by hand. Tenants apart, roles, the period form's errors beside the field."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cloud_bridge import membership_ops
from cloud_bridge.api_models import EntitlementIn
from cloud_bridge.db_schema import entitlements, write_tx
from cloud_bridge.web.auth_schema import audit_log
from tests.web.conftest import WebSite
from tests.web.seed import ok_redirect

FORMULA_NAME = '=HYPERLINK("http://x";"y")'
NOVEMBER = {"from": "1. 11. 2026", "to": "30. 11. 2026"}


def make_plan(client: TestClient, csrf: str, tenant: str, **fields: str) -> str:
    ok_redirect(client.post(f"/t/{tenant}/plans", data={
        "csrf_token": csrf, "vat_rate_bp": "2200", **fields}, follow_redirects=False))
    page = client.get(f"/t/{tenant}/plans").text
    ids = re.findall(r"/plans/(p-[0-9a-f]+)/active", page)
    return next(i for i in ids if i not in make_plan.seen)  # type: ignore[attr-defined]


make_plan.seen = set()  # type: ignore[attr-defined]


def sell(client: TestClient, csrf: str, tenant: str, member: str, plan: str,
         at_utc: str, site: WebSite) -> None:
    """Sell a plan on the member's page, then move the sale's audit row to a known moment."""
    ok_redirect(client.post(f"/t/{tenant}/members/{member}/entitlements", data={
        "csrf_token": csrf, "plan_id": plan}, follow_redirects=False))
    at_ms = int(datetime.fromisoformat(at_utc + ":00+00:00").timestamp() * 1000)
    with write_tx(site.engine) as conn:
        newest = conn.execute(select(audit_log.c.id).where(
            audit_log.c.tenant == tenant, audit_log.c.action == "entitlement.create")
            .order_by(audit_log.c.id.desc()).limit(1)).scalar_one()
        conn.execute(update(audit_log).where(audit_log.c.id == newest).values(at_ms=at_ms))


def rows_of(response: object) -> list[list[str]]:
    body = response.content  # type: ignore[attr-defined]
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte order mark
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8")), delimiter=";"))


def shop(site: WebSite) -> tuple[TestClient, str, str, dict[str, str]]:
    """Tenant A's sales: plans, one member, sales at known moments, vouchers in use."""
    a = site.tenants[0]
    client, csrf = site.login(site.user(a, "administrator"))
    plans = {}
    for key, fields in (
            ("month", {"name": "Mesečna", "kind": "membership", "duration_days": "30",
                       "price": "39,90"}),
            ("punch", {"name": "10 obiskov", "kind": "punch_card", "entries_total": "10",
                       "price": "80"}),
            ("voucher", {"name": "Darilni bon 5", "kind": "gift_voucher",
                         "entries_total": "5", "price": "50,00"}),
            ("day", {"name": FORMULA_NAME, "kind": "day_ticket", "price": "8"})):
        plans[key] = make_plan(client, csrf, a, **fields)
        make_plan.seen.add(plans[key])  # type: ignore[attr-defined]
    member = ok_redirect(client.post(f"/t/{a}/members", data={
        "csrf_token": csrf, "first_name": "Ana", "last_name": "Novak"},
        follow_redirects=False)).split("/members/")[1].split("?")[0]
    for plan, at in (("month", "2026-10-31T23:30"),  # 1 November 00:30 local: November
                     ("month", "2026-11-15T10:00"),
                     ("punch", "2026-10-31T22:59"),  # 31 October 23:59 local: October
                     ("voucher", "2026-11-02T09:00"), ("voucher", "2026-11-02T09:05"),
                     ("voucher", "2026-11-02T09:10"),
                     ("day", "2026-11-20T10:00"),
                     ("day", "2026-11-30T23:30")):  # 1 December 00:30 local: December
        sell(client, csrf, a, member, plans[plan], at, site)
    return client, csrf, member, plans


def use_vouchers(site: WebSite, member: str) -> None:
    """Of the three vouchers sold: 2 of 5 entries used, all 5 used, one expired; and a
    gift voucher added by hand (3 entries, no plan, no price)."""
    a = site.tenants[0]
    with write_tx(site.engine) as conn:
        ids = list(conn.execute(select(entitlements.c.id).where(
            entitlements.c.tenant == a, entitlements.c.kind == "gift_voucher")
            .order_by(entitlements.c.created_at, entitlements.c.id)).scalars())
        assert len(ids) == 3
        for ent_id, values in zip(ids, (
                {"used_by_device": {"gate-1": 1, "gate-2": 1}},
                {"used_by_device": {"gate-1": 5}},
                {"valid_to": int(time.time()) - 86_400}), strict=True):
            conn.execute(update(entitlements).where(entitlements.c.tenant == a,
                                                    entitlements.c.id == ent_id).values(**values))
        membership_ops.create_entitlement(conn, a, EntitlementIn.model_validate({
            "member_id": member, "kind": "gift_voucher", "entries_total": 3}))


def test_revenue_entries_and_vouchers_as_page_and_csv(site: WebSite) -> None:
    a, b = site.tenants
    client, _csrf, member, _plans = shop(site)
    use_vouchers(site, member)

    page = client.get(f"/t/{a}/sales-stats", params=NOVEMBER)
    assert page.status_code == 200
    assert "<h1>Prodaja in obisk</h1>" in page.text
    assert 'role="img"' in page.text and "<desc" in page.text

    # per type in November: 2 × 39,90; 3 × 50,00; 1 × 8,00 (the punch card was October's)
    kinds = rows_of(client.get(f"/t/{a}/sales-stats.csv",
                               params={"table": "revenue_types", **NOVEMBER}))
    assert kinds == [["Vrsta vstopnice", "Prodano", "Prihodek"],
                     ["Članarina (časovno omejena)", "2", "79,80"],
                     ["Dnevna vstopnica", "1", "8,00"],
                     ["Darilni bon", "3", "150,00"]]
    revenue = client.get(f"/t/{a}/sales-stats.csv", params={"table": "revenue", **NOVEMBER})
    assert revenue.headers["content-type"].startswith("text/csv")
    assert "attachment" in revenue.headers["content-disposition"]
    by_plan = {r[2]: r for r in rows_of(revenue)[1:]}
    assert by_plan["Mesečna"][3:] == ["2", "39,90", "79,80"]
    assert by_plan["Darilni bon 5"][3:] == ["3", "50,00", "150,00"]
    # a name typed like a formula is kept as text; the field is quoted (it holds ; and ")
    assert by_plan["'" + FORMULA_NAME][3:] == ["1", "8,00", "8,00"]
    assert b'"\'=HYPERLINK(""http://x"";""y"")"' in revenue.content
    assert "10 obiskov" not in by_plan

    october = rows_of(client.get(f"/t/{a}/sales-stats.csv", params={
        "table": "revenue_types", "from": "1. 10. 2026", "to": "31. 10. 2026"}))
    assert october[1:] == [["Karta za več vstopov", "1", "80,00"]]

    # vouchers today: 3 entries left on the first (3 × 50,00 / 5 = 30,00), the used-up
    # and the expired ones do not count, the hand-made one has 3 entries and no value
    vouchers = rows_of(client.get(f"/t/{a}/sales-stats.csv",
                                  params={"table": "vouchers", **NOVEMBER}))
    assert vouchers == [["Paket", "Boni", "Preostali vstopi", "Vrednost"],
                        ["Darilni bon 5", "1", "3", "30,00"],
                        ["Brez paketa ali cene", "1", "3", ""],
                        ["Skupaj", "2", "6", "30,00"]]
    page = client.get(f"/t/{a}/sales-stats", params=NOVEMBER)
    assert "<td>30,00\xa0€</td>" in page.text  # the vouchers table, as read on the page
    assert "<td>150,00\xa0€</td>" in page.text

    # the other tenant sees none of it
    other, _ = site.login(site.user(b, "administrator"))
    theirs = other.get(f"/t/{b}/sales-stats", params=NOVEMBER)
    assert theirs.status_code == 200 and "Mesečna" not in theirs.text
    assert rows_of(other.get(f"/t/{b}/sales-stats.csv",
                             params={"table": "revenue", **NOVEMBER}))[1:] == []
    assert other.get(f"/t/{a}/sales-stats", params=NOVEMBER).status_code == 404
    assert other.get(f"/t/{a}/sales-stats.csv", params={"table": "revenue"}
                     ).status_code == 404


def test_period_errors_beside_the_fields_and_roles(site: WebSite) -> None:
    a = site.tenants[0]
    accountant, _ = site.login(site.user(a, "accountant"))
    bad = accountant.get(f"/t/{a}/sales-stats", params={"from": "32. 1. 2026", "to": ""})
    assert bad.status_code == 422
    assert 'id="e-from"' in bad.text and 'value="32. 1. 2026"' in bad.text
    backwards = accountant.get(f"/t/{a}/sales-stats",
                               params={"from": "2. 11. 2026", "to": "1. 11. 2026"})
    assert backwards.status_code == 422 and 'id="e-to"' in backwards.text
    assert "Konec ne sme biti pred začetkom." in backwards.text
    too_long = accountant.get(f"/t/{a}/sales-stats",
                              params={"from": "1. 1. 2020", "to": "1. 1. 2026"})
    assert too_long.status_code == 422 and "Izberite največ 731 dni." in too_long.text
    csv_bad = accountant.get(f"/t/{a}/sales-stats.csv",
                             params={"table": "revenue", "from": "x"})
    assert csv_bad.status_code == 422 and csv_bad.headers["content-type"].startswith(
        "text/html")
    assert accountant.get(f"/t/{a}/sales-stats.csv", params={"table": "nope"}
                          ).status_code == 400
    accountant.get("/lang/en")
    english = accountant.get(f"/t/{a}/sales-stats")
    assert english.status_code == 200 and "<h1>Sales and use</h1>" in english.text
    reception, _ = site.login(site.user(a, "reception"))
    assert reception.get(f"/t/{a}/sales-stats").status_code == 403
    assert reception.get(f"/t/{a}/sales-stats.csv", params={"table": "revenue"}
                         ).status_code == 403


def test_entries_table_and_csv_count_the_local_hours(site: WebSite) -> None:
    """The page's heatmap table and CSV from inserted decisions (the queries' own test,
    test_sales_stats_queries.py, covers the DST nights)."""
    from tests.web.seed import add_events, decision

    a = site.tenants[0]
    client, _ = site.login(site.user(a, "administrator"))
    # Tuesday 3 November 2026, 06:30 and 06:45 UTC = 07:30, 07:45 CET; an exit at 07:50
    at = datetime(2026, 11, 3, 6, 30, tzinfo=UTC)
    add_events(site.engine, a, "gate-1", [decision("m-1", True, "granted")], 1, ts=at)
    add_events(site.engine, a, "gate-1", [decision("m-2", True, "granted")], 2,
               ts=at.replace(minute=45))
    add_events(site.engine, a, "gate-1", [decision("m-2", True, "granted", "out")], 3,
               ts=at.replace(minute=50))
    rows = rows_of(client.get(f"/t/{a}/sales-stats.csv", params={"table": "entries",
                                                                  **NOVEMBER}))
    assert rows[0][:3] == ["Dan", "00", "01"] and rows[0][-1] == "Skupaj"
    assert rows[2][0] == "tor" and rows[2][1 + 7] == "2" and rows[2][-1] == "2"
    assert sum(int(c) for r in rows[1:] for c in r[1:-1]) == 2
    page = client.get(f"/t/{a}/sales-stats", params=NOVEMBER).text
    assert 'data-day="1" data-hour="7" data-n="2"' in page
    members = rows_of(client.get(f"/t/{a}/sales-stats.csv",
                                 params={"table": "members", **NOVEMBER}))
    assert members[1][:2] == ["november 2026", "2"]


def test_a_voucher_ledger_plugs_in_behind_the_liabilities(site: WebSite) -> None:
    """The page takes liabilities from app.state.voucher_liabilities when it is set."""
    from cloud_bridge.web.voucher_liabilities import VoucherLiabilities, VoucherLine

    a = site.tenants[0]
    seen: list[str] = []

    def ledger(_conn: object, tenant: str, _now: datetime) -> VoucherLiabilities:
        seen.append(tenant)
        return VoucherLiabilities((VoucherLine("led-1", "Bon iz knjige", 2, 7, 12_345),))

    site.app.state.voucher_liabilities = ledger
    client, _ = site.login(site.user(a, "administrator"))
    rows = rows_of(client.get(f"/t/{a}/sales-stats.csv", params={"table": "vouchers"}))
    assert rows[1:] == [["Bon iz knjige", "2", "7", "123,45"], ["Skupaj", "2", "7", "123,45"]]
    assert seen == [a]


def test_printed_vouchers_of_the_ticket_ledger_are_among_the_liabilities(
        site: WebSite) -> None:
    import time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cloud_bridge.db_schema import write_tx
    from cloud_bridge.tickets import ledger
    from contracts.ticket_token import TicketKind

    a, b = site.tenants[:2]
    now = int(time.time())
    key = Ed25519PrivateKey.generate()
    with write_tx(site.engine) as conn:
        for tenant, value in ((a, 2500), (a, 1000), (b, 9900)):
            ledger.issue(conn, tenant, key, ledger.IssueRequest(
                kind=TicketKind.VALUE_VOUCHER, valid_from=now - 60, valid_to=now + 86400,
                value_cents=value, price_cents=value))
        ledger.issue(conn, a, key, ledger.IssueRequest(
            kind=TicketKind.ENTRY_VOUCHER, valid_from=now - 60, valid_to=now + 86400,
            entries=4, price_cents=4000))
    client, _ = site.login(site.user(a, "administrator"))
    rows = rows_of(client.get(f"/t/{a}/sales-stats.csv", params={"table": "vouchers"}))
    assert ["Natisnjeni boni za vstope", "1", "4", "40,00"] in rows
    assert ["Natisnjeni vrednostni boni", "2", "0", "35,00"] in rows
    assert rows[-1] == ["Skupaj", "3", "4", "75,00"]  # not tenant b's 99 €
