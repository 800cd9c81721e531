"""A value voucher spent at the till (issue 18 part 1, issue 22 part 6), in the running
agent: part of a sale paid with the voucher and the rest in cash (printed: the voucher
payment, its note and the change), the same voucher again takes only what is left, a
retried sale states the same payment, and forged, other-site, expired, revoked, used-up
and entry-ticket codes are refused with nothing recorded."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.store.tickets import apply_mark, record_use
from agent.till.voucher_pay import VoucherRefused
from contracts.membership_changes import TicketMark
from contracts.ticket_token import TicketKind, issue_ticket
from tests.browser import chromium
from tests.pos.escpos_decode import decode
from tests.till.test_till_tickets import TicketTill, ticket_till  # noqa: F401  (fixture)


def _voucher(till: TicketTill, cents: int, *, site: str | None = "s1",
             valid_to: int | None = None, kind: TicketKind = TicketKind.VALUE_VOUCHER,
             signer: object = None) -> tuple[str, str]:
    now = int(time.time())
    tid = str(uuid.uuid4())
    key = signer or till.keys.get("t1").signing_key
    code = issue_ticket(key, kind=kind, ticket_id=tid,  # type: ignore[arg-type]
                        valid_from=now - 60, valid_to=valid_to or now + 86_400,
                        entries=1 if kind is not TicketKind.VALUE_VOUCHER else 0,
                        value_cents=cents if kind is TicketKind.VALUE_VOUCHER else 0,
                        site_id=site)
    return code, tid


def _pay(till: TicketTill, key: str, code: str, method: str = "cash",
         given: str | None = None, *products: str) -> dict[str, Any]:
    payment: dict[str, object] = {"method": method, "voucher": code}
    if given is not None:
        payment["given"] = given
    r = till.client.post("/till/api/sale", headers={"X-Till-Session": till.token},
                         json={"idempotency_key": key, "payment": payment,
                               "lines": [{"product": p, "quantity": "1"}
                                         for p in products or ("kava",)]})
    return {"status": r.status_code, **r.json()}


def _uses(till: TicketTill) -> list[tuple[str, int]]:
    with till.daemon.store.lock:
        return [(str(t), int(v)) for t, v in till.daemon.store.conn.execute(
            "SELECT ticket_id, value_used_cents FROM ticket_uses ORDER BY ticket_id")]


def test_a_value_voucher_pays_part_of_a_sale_and_keeps_its_balance(
        ticket_till: TicketTill) -> None:  # noqa: F811
    till = ticket_till
    code, tid = _voucher(till, 500)
    # three coffees at 1.80 = 5.40: the voucher pays 5.00, 1.00 in cash, 0.60 back
    sale = _pay(till, "vou-000001", code, "cash", "1.00", "kava", "kava", "kava")
    assert sale["status"] == 200, sale
    assert sale["total"] == "5.40" and sale["change_cents"] == 60
    assert sale["voucher_cents"] == 500 and sale["voucher_left_cents"] == 0
    jobs = till.daemon.printers["receipt"].jobs  # type: ignore[attr-defined]
    text = decode(jobs[-2].payload).text  # the last one kicked the drawer
    assert "Vračilo                                     0,60" in text
    assert "Drugo                                       5,00" in text  # 48 columns
    assert (f"Darilni bon {tid[:8]}: plačano 5,00 EUR, ostane 0,00 EUR"
            in text.replace("\n", " "))  # the note wraps
    (receipt,) = [e for e in till.events("pos.receipt") if e["invoice_id"] == sale["invoice_id"]]
    assert receipt["payments"] == [{"method": "other", "amount_cents": 500},
                                   {"method": "cash", "amount_cents": 100}]
    assert len(receipt["lines"]) == 3  # type: ignore[arg-type]  # the goods keep their VAT
    (used,) = till.events("ticket.used")
    assert used == {"ticket_id": tid, "where": "till", "entries": 0, "amount_cents": 500,
                    "entries_left": 0, "value_left_cents": 0,
                    "receipt": sale["invoice_id"]}
    assert code not in json.dumps([e.data for e in till.daemon.outbox.pending(limit=10_000)])
    # a retry of the same sale is the same receipt, nothing spent twice
    again = _pay(till, "vou-000001", code, "cash", "1.00", "kava", "kava", "kava")
    assert again["duplicate"] is True and again["invoice_id"] == sale["invoice_id"]
    assert _uses(till) == [(tid, 500)]
    # used up now: refused, nothing recorded
    refused = _pay(till, "vou-000002", code)
    assert refused["status"] == 409 and refused["reason"] == "voucher_used_up"

    big, big_id = _voucher(till, 2000)
    first = _pay(till, "vou-000003", big, "card", None, "kava")
    assert first["voucher_cents"] == 180 and first["voucher_left_cents"] == 1820
    # another device's use, as the bridge tells it, counts too
    with till.daemon.store.transaction() as conn:
        apply_mark(conn, TicketMark(entity="ticket", op="upsert", id=big_id,
                                    value_by_device={"other-dev": 1700}))
    second = _pay(till, "vou-000004", big, "card", None, "kava", "kava")
    assert second["status"] == 200, second
    assert second["voucher_cents"] == 120 and second["voucher_left_cents"] == 0
    (receipt,) = [e for e in till.events("pos.receipt")
                  if e["invoice_id"] == second["invoice_id"]]
    assert receipt["payments"] == [{"method": "other", "amount_cents": 120},
                                   {"method": "card", "amount_cents": 240}]
    assert [e["amount_cents"] for e in till.events("ticket.used")] == [500, 180, 120]


def test_bad_vouchers_are_refused_and_nothing_is_recorded(ticket_till: TicketTill  # noqa: F811
                                                          ) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    till = ticket_till
    now = int(time.time())
    revoked, revoked_id = _voucher(till, 1000)
    with till.daemon.store.transaction() as conn:
        apply_mark(conn, TicketMark(entity="ticket", op="upsert", id=revoked_id,
                                    revoked=True))
    forged, _ = _voucher(till, 1000, signer=Ed25519PrivateKey.generate())
    cases = {"voucher_forged": forged, "voucher_other_site": _voucher(till, 1000, site="s2")[0],
             "voucher_expired": _voucher(till, 1000, valid_to=now - 1)[0],
             "voucher_revoked": revoked,
             "voucher_no_value": _voucher(till, 0, kind=TicketKind.ENTRY_VOUCHER)[0]}
    tampered = forged[:-4] + ("AAAA" if forged[-4:] != "AAAA" else "BBBB")
    cases_list = [*cases.items(), ("voucher_forged", tampered)]
    for i, (reason, code) in enumerate(cases_list):
        r = _pay(till, f"bad-{i:06d}", code)
        assert r["status"] == 409 and r["reason"] == reason, (reason, r)
    assert _uses(till) == [] and till.events("ticket.used") == []
    assert till.events("pos.receipt") == []


def test_two_tills_cannot_spend_the_same_balance_twice(ticket_till: TicketTill  # noqa: F811
                                                       ) -> None:
    till = ticket_till
    code, tid = _voucher(till, 180)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _pay(till, f"race-{i:05d}", code, "card", None),
                                range(4)))
    assert sorted(r["status"] for r in results) == [200, 409, 409, 409]
    assert {r.get("reason") for r in results if r["status"] == 409} <= {
        "voucher_used_up", "voucher_balance_changed"}
    assert _uses(till) == [(tid, 180)]
    assert [e["amount_cents"] for e in till.events("ticket.used")] == [180]
    # the check inside the receipt's transaction: planned on a balance that a gate or
    # another till took meanwhile, the receipt is rolled back
    other, other_id = _voucher(till, 300)
    vouchers = till.daemon.pos.till.vouchers  # type: ignore[union-attr]
    assert vouchers is not None
    token = vouchers.verify(other, int(time.time()))
    planned = vouchers.available(token, "late-00001")
    with till.daemon.store.transaction() as conn:
        record_use(conn, other_id, 0, 200, token.valid_to, 0)
    with pytest.raises(VoucherRefused) as late, till.daemon.store.transaction() as conn:
        vouchers.writer(token, planned, "late-00001")(conn, "P1-BLAG1-99", datetime.now(UTC))
    assert late.value.problem == "voucher_balance_changed"
    assert dict(_uses(till))[other_id] == 200


def test_the_cashier_pays_with_a_voucher_on_the_page(ticket_till: TicketTill  # noqa: F811
                                                     ) -> None:
    till = ticket_till
    used_up, used_id = _voucher(till, 100)
    with till.daemon.store.transaction() as conn:
        record_use(conn, used_id, 0, 100, int(time.time()) + 86_400, 0)
    code, tid = _voucher(till, 1000)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 600})
        page.goto(f"{till.client.base_url}/till")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_label("Številka blagajnika").fill("11")
        page.get_by_label("PIN").fill("2468")
        page.get_by_role("button", name="Prijava").click()
        page.locator("#grid [data-product='kava']").click()
        # a used-up voucher: told why, the code stays in its field, nothing sold
        page.get_by_label("Koda darilnega bona").fill(used_up)
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_have_text("Na tem bonu ni več dobroimetja")
        expect(page.get_by_label("Koda darilnega bona")).to_have_value(used_up)
        # a good one scanned into the search field (keyboard-wedge scanner) pays it all
        page.get_by_label("Koda darilnega bona").fill("")
        page.locator("#search").fill(code)
        page.locator("#search").press("Enter")
        expect(page.get_by_label("Koda darilnega bona")).to_have_value(code)
        page.get_by_role("button", name="Plačilo s kartico").click()
        expect(page.get_by_test_id("message")).to_contain_text(
            "Z bonom plačano 1,80\u00a0€, na njem ostane 8,20\u00a0€")
        expect(page.get_by_label("Koda darilnega bona")).to_have_value("")
    assert _uses(till) == sorted([(used_id, 100), (tid, 180)])
    (receipt,) = till.events("pos.receipt")
    assert receipt["payments"] == [{"method": "other", "amount_cents": 180}]
