"""The office's money pages: the price list, issuing documents (errors beside the
fields, the typed values kept), numbering per kind and premise, a credit note, the
document page, sending a cash invoice to the till as the POS ``print`` command and
reading the device's answers (command result, later ``pos.fiscalised`` event) back onto
the document, and the export download. The real till is in test_journey_school.py."""

from __future__ import annotations

import csv
import io
import json
import re
import time

from sqlalchemy import insert, select, update

from agent.pos.job import parse_job
from cloud_bridge.db_schema import commands, events, write_tx
from cloud_bridge.driving_school.schema import documents
from tests.driving_school.conftest import School

BASE = "/driving-school"


def _post(client, path: str, csrf: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(BASE + path, data={"csrf_token": csrf, **data},
                       follow_redirects=False)


def test_price_list_and_documents_with_errors_beside_the_fields(school: School) -> None:
    client, csrf = school.client("recepcija")
    bad = _post(client, "/prices", csrf, name="Učna ura vožnje", price="štirideset",
                vat="8")
    assert bad.status_code == 422
    assert "Vnesite znesek v evrih" in bad.text and 'value="Učna ura vožnje"' in bad.text
    assert bad.text.count('class="field-error"') >= 2 or bad.text.count("field-error") >= 2
    assert _post(client, "/prices", csrf, name="Učna ura vožnje", price="42,00",
                 vat="22").status_code == 303
    assert _post(client, "/prices", csrf, name="Knjiga CPP", price="21,90",
                 vat="9.5").status_code == 303
    listing = client.get(BASE + "/prices")
    assert "42,00" in listing.text and "9,5 %" in listing.text
    ids = [int(i) for i in re.findall(r'data-price-id="(\d+)"', listing.text)]
    book, lesson = ids  # ordered by name

    # an item taken off the price list is not offered for a new document
    assert _post(client, f"/prices/{book}/active", csrf).status_code == 303
    assert "Knjiga CPP" not in client.get(BASE + "/documents").text
    assert _post(client, f"/prices/{book}/active", csrf).status_code == 303  # again
    assert "Knjiga CPP" in client.get(BASE + "/documents").text
    assert _post(client, "/prices/999999/active", csrf).status_code == 404

    c = school.candidate_ids[0]
    missing = _post(client, "/documents", csrf, kind="credit_note", premise="P 1",
                    candidate_id=str(c), price_1=str(lesson), quantity_1="0")
    assert missing.status_code == 422
    page = missing.text
    for text in ("Dobropis popravlja račun", "Ta oblika ni sprejeta",
                 "Vnesite celo število od 1 do 1000"):
        assert text in page, text
    assert 'value="P 1"' in page  # what was typed is kept

    numbers = []
    for premise in ("P1", "P1", "P2"):
        r = _post(client, "/documents", csrf, kind="invoice", premise=premise,
                  candidate_id=str(c), payment="cash", price_1=str(lesson), quantity_1="10",
                  price_2=str(book), quantity_2="1")
        assert r.status_code == 303, r.text[-600:]
        numbers.append(int(r.headers["location"].rsplit("/", 1)[1]))
    doc = client.get(f"{BASE}/documents/{numbers[0]}")
    assert "2026-P1-R-00001" in doc.text or re.search(r"\d{4}-P1-R-00001", doc.text)
    assert "441,90" in doc.text  # 10 × 42,00 + 21,90
    assert re.search(r"\d{4}-P2-R-00001", client.get(f"{BASE}/documents/{numbers[2]}").text)
    credit = _post(client, "/documents", csrf, kind="credit_note", premise="P1",
                   candidate_id=str(c), refers_to=str(numbers[0]), price_1=str(book),
                   quantity_1="1")
    assert credit.status_code == 303
    shown = client.get(BASE + credit.headers["location"][len(BASE):])
    assert re.search(r"\d{4}-P1-D-00001", shown.text) and "−21,90" in shown.text.replace(
        "-21,90", "−21,90")

    order = _post(client, "/documents", csrf, kind="order", premise="P1",
                  candidate_id=str(c), payment="cash", price_1=str(book), quantity_1="1")
    assert order.status_code == 422 and "Naročilo ali predračun se ne plača" in order.text


def test_invoice_to_the_till_and_its_eor_back(school: School) -> None:
    client, csrf = school.client("recepcija")
    _post(client, "/prices", csrf, name="Učna ura vožnje", price="42,00", vat="22")
    price = re.search(r'data-price-id="(\d+)"', client.get(BASE + "/prices").text)
    assert price
    r = _post(client, "/documents", csrf, kind="invoice", premise="P1",
              candidate_id=str(school.candidate_ids[0]), payment="card",
              price_1=price.group(1), quantity_1="2")
    doc_id = int(r.headers["location"].rsplit("/", 1)[1])
    bad = _post(client, f"/documents/{doc_id}/till", csrf, device="blagajna 1",
                operator_tax_number="1234")
    assert bad.status_code == 422 and 'value="blagajna 1"' in bad.text
    sent = _post(client, f"/documents/{doc_id}/till", csrf, device="till-1",
                 operator_tax_number="87654321")
    assert sent.status_code == 303
    topic, payload = school.publisher.messages[-1]
    assert topic.endswith(f"/{school.tenant}/till-1/cmd/print")
    message = json.loads(payload)
    job = parse_job(message["args"])  # the agent's own parser of the print command
    assert str(job.totals.total) == "84.00" and job.payments[0].method == "card"
    assert "Poslano blagajni" in client.get(f"{BASE}/documents/{doc_id}").text

    # the device answers: numbered, FURS away (no EOR yet) ...
    with write_tx(school.engine) as conn:
        conn.execute(update(commands).where(
            commands.c.request_id == message["request_id"]).values(
            answered_at=int(time.time() * 1000), ok=True, result={
                "invoice_id": "P1-BLAG1-7", "zoi": "a" * 32, "eor": None,
                "fiscal_state": "pending_subsequent"}))
    page = client.get(f"{BASE}/documents/{doc_id}").text
    assert "P1-BLAG1-7" in page and "naknadno" in page.lower()
    # ... and later the subsequent submission's event with the EOR
    with write_tx(school.engine) as conn:
        conn.execute(insert(events).values(
            tenant=school.tenant, device="till-1", seq=5, type="pos.fiscalised",
            id="5d0c1a52-0000-4000-8000-000000000005", received_at=0,
            ts="2026-12-03T10:00:00.000Z",
            data={"invoice_id": "P1-BLAG1-7", "eor": "eor-1234", "subsequent": True}))
    page = client.get(f"{BASE}/documents/{doc_id}").text
    assert "eor-1234" in page
    with school.engine.connect() as conn:
        row = conn.execute(select(documents).where(documents.c.id == doc_id)).one()
    assert (row.fiscal_invoice_id, row.eor, row.fiscal_state) == (
        "P1-BLAG1-7", "eor-1234", "fiscalised")
    again = _post(client, f"/documents/{doc_id}/till", csrf, device="till-1",
                  operator_tax_number="87654321")
    assert again.status_code in (409, 200) and "ni mogoče poslati" in again.text

    export = client.get(f"{BASE}/export/csv-journal?year={row.year}")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8").lstrip("\ufeff")),
                               delimiter=";"))
    assert [(r["skupaj"], r["racun_blagajne"], r["eor"]) for r in rows] == [
        ("84,00", "P1-BLAG1-7", "eor-1234")]
    assert client.get(f"{BASE}/export/vod?year=2026").status_code == 404


def test_money_pages_need_the_right_role(school: School) -> None:
    teacher, csrf = school.client("ucitelj")
    assert teacher.get(BASE + "/documents").status_code == 403
    assert _post(teacher, "/prices", csrf, name="x", price="1", vat="22").status_code == 403


def test_another_schools_documents_are_out_of_reach(school: School) -> None:
    from tests.driving_school.conftest import make_school

    client, csrf = school.client("recepcija")
    _post(client, "/prices", csrf, name="Učna ura vožnje", price="42,00", vat="22")
    price = re.search(r'data-price-id="(\d+)"', client.get(BASE + "/prices").text)
    assert price
    r = _post(client, "/documents", csrf, kind="invoice", premise="P1",
              candidate_id=str(school.candidate_ids[0]), payment="cash",
              price_1=price.group(1), quantity_1="1")
    doc_id = int(r.headers["location"].rsplit("/", 1)[1])

    other = make_school(school.engine)
    theirs, their_csrf = other.client("recepcija")
    assert theirs.get(f"{BASE}/documents/{doc_id}").status_code == 404
    assert doc_id and str(doc_id) not in re.findall(
        r'data-doc-id="(\d+)"', theirs.get(BASE + "/documents").text)
    assert "Učna ura" not in theirs.get(BASE + "/prices").text
    # neither our price, our candidate nor our invoice can be used by the other school
    _post(theirs, "/prices", their_csrf, name="Tečaj CPP", price="120", vat="22")
    their_price = re.search(r'data-price-id="(\d+)"', theirs.get(BASE + "/prices").text)
    assert their_price
    refused = _post(theirs, "/documents", their_csrf, kind="credit_note", premise="P1",
                    candidate_id=str(other.candidate_ids[0]), refers_to=str(doc_id),
                    price_1=price.group(1), quantity_1="1")
    assert refused.status_code == 422
    refused = _post(theirs, "/documents", their_csrf, kind="credit_note", premise="P1",
                    candidate_id=str(other.candidate_ids[0]), refers_to=str(doc_id),
                    price_1=their_price.group(1), quantity_1="1")
    assert refused.status_code == 422 and "Dobropis popravlja račun te šole" in refused.text
    refused = _post(theirs, "/documents", their_csrf, kind="invoice", premise="P1",
                    candidate_id=str(school.candidate_ids[0]),
                    price_1=their_price.group(1), quantity_1="1")
    assert refused.status_code == 422
    assert _post(theirs, f"/documents/{doc_id}/till", their_csrf, device="till-1",
                 operator_tax_number="87654321").status_code == 404
    with school.engine.connect() as conn:
        count = conn.execute(select(documents.c.id).where(
            documents.c.tenant == other.tenant)).all()
    assert count == []
