"""The records' fields are listed once (cloud_bridge/driving_school/record_fields.py): the
docs table is exactly that list, and every field the list says is held is held where it
says: a schema column, a key of the record-card data (office side and the agent's
RecordCard), a key of a daily-log row."""

from __future__ import annotations

import re
from pathlib import Path

from agent.record_card import RecordCard
from cloud_bridge.driving_school import record_fields
from cloud_bridge.driving_school.lesson_log import log_rows, record_card
from cloud_bridge.driving_school.schema import ds_metadata
from tests.driving_school.conftest import SCHOOL, School
from tests.driving_school.lesson_payloads import edit, lesson

DOCS = Path(__file__).resolve().parents[2] / "docs" / "driving_school.md"


def docs_table() -> list[tuple[str, ...]]:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- record-fields.*?-->\n(.*?)<!-- /record-fields -->", text, re.S)
    assert block, "the record-fields table is missing from docs/driving_school.md"
    rows = [line for line in block.group(1).splitlines() if line.startswith("| ")]
    cells = [tuple(c.strip().strip("`") for c in line.strip("|").split("|")) for line in rows]
    return cells[1:]  # without the header row


def held(prefix: str) -> list[tuple[str, str]]:
    return [(r.key, f.held_in.removeprefix(prefix)) for r in record_fields.RECORDS
            for f in r.fields if f.held_in.startswith(prefix)]


def test_the_docs_table_is_the_field_list() -> None:
    assert docs_table() == record_fields.table_rows()


def test_every_record_of_article_1_is_listed_and_fields_are_unique() -> None:
    names = {r.name for r in record_fields.RECORDS}
    assert names == {"register kandidatov za voznike", "evidenčni karton vožnje",
                     "dnevni razvid vožnje", "dnevnik usposabljanja", "izpisni list"}
    for r in record_fields.RECORDS:
        keys = [f.key for f in r.fields]
        assert len(keys) == len(set(keys)), r.key
        assert all(f.status in ("secondary", "assumed") for f in r.fields)


def test_held_columns_exist_in_the_schema() -> None:
    columns = [(r.key, f.held_in) for r in record_fields.RECORDS for f in r.fields
               if f.held_in.startswith("ds_")]
    assert columns
    for record, where in columns:
        table, column = where.split(".")
        assert column in ds_metadata.tables[table].c, (record, where)


def test_card_and_log_keys_are_in_the_data_the_office_sends(school: School) -> None:
    teacher, csrf = school.client("ucitelj")
    c, v = school.candidate_ids[0], school.vehicle_ids[0]
    r = teacher.post("/driving-school/app/api/sync", headers={"x-csrf-token": csrf},
                     json={"device": "tablet-a", "edits": [edit(lesson(c, v))]})
    assert r.json()["results"][0]["outcome"] == "applied"
    with school.engine.connect() as conn:
        card = record_card(conn, school.tenant, c, SCHOOL)
        rows = log_rows(conn, school.tenant, candidate_id=c)
    assert card is not None and len(rows) == 1
    agent_fields = set(RecordCard.model_fields)
    for record, key in held("card."):
        assert key in card, (record, key)
        assert key in agent_fields, (record, key)  # the printed card reads it
    for record, key in held("log."):
        assert key in rows[0], (record, key)


def test_the_export_columns_in_the_docs_are_the_exporters_columns() -> None:
    """The accounting export is our own documented CSV journal: its docs table names
    exactly the columns the exporter writes, in that order."""
    from cloud_bridge.driving_school.accounting_export import JOURNAL_COLUMNS

    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- journal-columns -->\n(.*?)<!-- /journal-columns -->", text,
                      re.S)
    assert block, "the journal-columns table is missing from docs/driving_school.md"
    named = [c.strip().strip("`") for line in block.group(1).splitlines()[2:]
             for c in line.strip("|").split("|")[0].split(",")]
    assert tuple(named) == JOURNAL_COLUMNS
