"""Money documents: numbering per kind, business premise and year; credit notes; and
the POS job for a cash payment, accepted by the agent's POS job parser (the contract of
the ``print`` command) and sent as a ``print`` command to the school's POS device."""

from __future__ import annotations

import json

import pytest

from agent.pos.job import parse_job
from agent.pos.refund import parse_refund
from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.billing import (
    DocLine,
    doc_number,
    issue,
    pos_job,
    refund_job,
)
from cloud_bridge.driving_school.card_command import send_command
from cloud_bridge.errors import Invalid
from tests.driving_school.conftest import School

LESSONS = [DocLine("Učna ura vožnje", 10, 4200, "22"), DocLine("Tečaj CPP", 1, 12000, "22")]


def test_numbers_per_kind_premise_and_year_and_the_pos_job(school: School) -> None:
    c = school.candidate_ids[0]
    with write_tx(school.engine) as conn:
        docs = [issue(conn, school.tenant, kind, premise, c, LESSONS, "recepcija", 2026,
                      payment="cash" if kind == "invoice" else "")
                for kind, premise in (("invoice", "P1"), ("invoice", "P1"),
                                      ("invoice", "P2"), ("proforma", "P1"))]
        credit = issue(conn, school.tenant, "credit_note", "P1", c, LESSONS[:1],
                       "recepcija", 2026, refers_to=docs[0]["id"])
        with pytest.raises(Invalid):
            issue(conn, school.tenant, "credit_note", "P1", c, LESSONS, "x", 2026)
    assert [doc_number(d) for d in docs] == ["2026-P1-R-00001", "2026-P1-R-00002",
                                             "2026-P2-R-00001", "2026-P1-PR-00001"]
    assert docs[0]["total_cents"] == 54_000 and credit["total_cents"] == -42_000
    assert doc_number(credit) == "2026-P1-D-00001"
    with pytest.raises(Invalid):
        DocLine("x", 1, 100, "8")

    job = pos_job(docs[0], "Recepcija Čuk", 87654321)
    parsed = parse_job(job)  # the agent's own validation of the `print` command's args
    assert parsed.totals.total == parsed.payments[0].amount
    assert str(parsed.totals.total) == "540.00"
    with pytest.raises(Invalid):
        pos_job(docs[3], "x", 87654321)  # a pro-forma is not a receipt
    # the shortest tenant id and the first document still make a key the POS accepts
    assert parse_job(pos_job({**docs[0], "tenant": "t1", "id": 1}, "x", 87654321))
    request_id = send_command(school.engine, school.publisher, "es/v1", school.tenant,
                              "till-1", "print", job)
    topic, payload = school.publisher.messages[-1]
    assert topic == f"es/v1/{school.tenant}/till-1/cmd/print"
    sent = json.loads(payload)
    assert sent["request_id"] == request_id and sent["args"] == job


def test_csv_journal_export(school: School) -> None:
    import csv
    import io

    from cloud_bridge.driving_school.accounting_export import EXPORTERS

    c = school.candidate_ids[0]
    with write_tx(school.engine) as conn:
        inv = issue(conn, school.tenant, "invoice", "P1", c,
                    [*LESSONS, DocLine("Knjiga CPP", 1, 2190, "9.5")], "r", 2026,
                    payment="card")
        credit = issue(conn, school.tenant, "credit_note", "P1", c, LESSONS[:1], "r",
                       2026, refers_to=inv["id"])
    data = EXPORTERS["csv-journal"].export([inv, credit]).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(data.lstrip("\ufeff")), delimiter=";"))
    assert [(r["stevilka"], r["stopnja_ddv"], r["osnova"], r["ddv"], r["skupaj"])
            for r in rows] == [
        ("2026-P1-R-00001", "22", "442,62", "97,38", "540,00"),
        ("2026-P1-R-00001", "9.5", "20,00", "1,90", "21,90"),
        ("2026-P1-D-00001", "22", "-344,26", "-75,74", "-420,00")]
    assert rows[2]["popravlja"] == str(inv["id"]) and rows[0]["placilo"] == "card"


def test_refund_job_of_a_credit_note(school: School) -> None:
    c = school.candidate_ids[0]
    with write_tx(school.engine) as conn:
        inv = issue(conn, school.tenant, "invoice", "P1", c, LESSONS, "r", 2026,
                    payment="cash")
        credit = issue(conn, school.tenant, "credit_note", "P1", c,
                       [DocLine("Tečaj CPP", 1, 12000, "22")], "r", 2026,
                       payment="cash", refers_to=inv["id"])
        stranger = issue(conn, school.tenant, "credit_note", "P1", c,
                         [DocLine("Knjiga", 1, 100, "22")], "r", 2026, payment="cash",
                         refers_to=inv["id"])
    with pytest.raises(Invalid):  # the invoice has no receipt at the till yet
        refund_job(credit, inv, "x", 87654321)
    inv = {**inv, "fiscal_invoice_id": "P1-BLAG1-3"}
    job = parse_refund(refund_job(credit, inv, "Recepcija", 87654321))
    assert job.original == "P1-BLAG1-3" and [(p.line, str(p.quantity))
                                            for p in job.lines] == [(1, "1")]
    with pytest.raises(Invalid):  # a line that is not on the invoice
        refund_job(stranger, inv, "x", 87654321)
