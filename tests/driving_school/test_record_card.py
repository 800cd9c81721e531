"""The record card: "print" on the office page sends a print-record-card command; the
agent's handler renders it in CP852 and prints it through the escpos-net back-end on
the virtual network printer, which shows Slovenian letters and every field."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.record_card import handle_print_record_card
from cloud_bridge.db_schema import commands
from drivers.escpos_printer import EscposPrinter
from simulators.virtual_printer import VirtualPrinter
from sync.commands import CommandRouter
from tests.command_helpers import expires_soon
from tests.driving_school.conftest import SCHOOL, School
from tests.driving_school.lesson_payloads import edit, lesson


def test_print_record_card_from_the_office_page_to_the_virtual_printer(
        school: School, artifacts_dir: Path) -> None:
    teacher, csrf = school.client("ucitelj")
    person = school.candidate_ids[0]
    r = teacher.post("/driving-school/app/api/sync", headers={"x-csrf-token": csrf}, json={
        "device": "tablet-a", "edits": [edit(lesson(person, school.vehicle_ids[0]))]})
    assert r.json()["results"][0]["outcome"] == "applied"

    office, ocsrf = school.client("recepcija")
    sent = office.post(f"/driving-school/candidates/{person}/print-card",
                       data={"csrf_token": ocsrf, "device": "office-1", "printer": "office"},
                       follow_redirects=False)
    assert sent.status_code == 303 and "sent=" in sent.headers["location"]
    [(topic, payload)] = school.publisher.messages
    assert topic == f"es/v1/{school.tenant}/office-1/cmd/print-record-card"
    message = json.loads(payload)
    with school.engine.connect() as conn:
        row = conn.execute(select(commands).where(
            commands.c.request_id == message["request_id"])).mappings().one()
    assert row["tenant"] == school.tenant and row["name"] == "print-record-card"
    assert row["args"] == message["args"] and message["args"]["printer"] == "office"

    out = artifacts_dir / "driving_school" / f"record-card-{school.engine.dialect.name}"
    vp = VirtualPrinter("127.0.0.1", 0, out)
    port = vp.start()
    printer = EscposPrinter("office", f"escpos-net:127.0.0.1:{port}", {"timeout_s": 3})
    printer.start()
    try:
        router = CommandRouter()  # the agent's router, as the daemon will register it
        router.register("print-record-card", lambda rid, args: handle_print_record_card(
            args, {"office": printer}, request_id=rid))
        result = router.handle("print-record-card", payload)
        assert result["ok"], result
        assert result["request_id"] == message["request_id"]
        assert result["result"]["printer"] == "office" and result["result"]["lessons"] == 1
        assert vp.wait_for(1)
        [card] = vp.receipts
    finally:
        printer.stop()
        vp.stop()
    assert "cp852" in card.code_pages and card.cut
    text = " ".join(" ".join(card.lines).split())
    for expected in (
            "EVIDENČNI KARTON VOŽNJE", f"Šola vožnje: {SCHOOL}",
            "Evidenčna št. kandidata: 2026/001", "Priimek in ime: Šuštar Živa",
            "Datum rojstva: 2. 4. 2008", "Kraj rojstva: Škofja Loka",
            "EMŠO: 0204008505123", "Naslov: Cankarjeva ulica 5, 4220 Škofja Loka",
            "Telefon: 041 123 456", "Kategorija: B",
            "Začetek usposabljanja: 1. 10. 2026", "Teoretični del usposabljanja: 8. 10. 2026",
            "Teoretični del izpita opravljen: 20. 10. 2026",
            "Izpit iz prve pomoči: 15. 9. 2026",
            "Zdravniško spričevalo velja do: 1. 9. 2029",
            "Učitelj vožnje: Tomaž Žagar (dovoljenje UV-1234)",
            "Opravljene učne ure vožnje: 2 od 20", "Prevoženi kilometri: 42",
            "Zadnja učna ura: 2. 12. 2026", "Praktični del usposabljanja zaključen: -",
            "02.12.26 08:00-09:30 2 promet KR ŠV-101 42",
            "Podpis kandidata:", "Žig in podpis šole:"):
        assert expected in text, f"{expected!r} not on the printed card:\n{card.text}"
    assert "?" not in text  # every letter was in the code page


def test_handler_refuses_bad_arguments_and_unknown_printers() -> None:
    class Paper:
        id = "p"

        def __init__(self) -> None:
            self.jobs: list[bytes] = []

        def print_job(self, job) -> None:  # type: ignore[no-untyped-def]
            self.jobs.append(job.payload)

    card = {"register_no": "1", "first_name": "Ana", "last_name": "Žnidaršič",
            "birth_date": "2008-01-01"}
    one, two = Paper(), Paper()
    with pytest.raises(ValueError, match="no printer 'x'"):
        handle_print_record_card({"card": card, "printer": "x"}, {"p": one})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="say which printer"):
        handle_print_record_card({"card": card}, {"p": one, "q": two})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        handle_print_record_card({"card": {"first_name": "Ana"}}, {"p": one})  # type: ignore[dict-item]
    assert handle_print_record_card({"card": card}, {"p": one})["printer"] == "p"  # type: ignore[dict-item]
    [job] = one.jobs
    assert job.startswith(b"\x1b@\x1bt\x12")  # initialise, then code page 18 = CP852
    assert "Žnidaršič".encode("cp852") in job


def test_through_the_print_queue_a_redelivered_command_prints_once(tmp_path: Path) -> None:
    from agent.print_queue import PrintQueue
    from agent.store.local_store import LocalStore

    card = {"register_no": "2026/007", "first_name": "Jože", "last_name": "Čop",
            "birth_date": "2007-05-05", "issued_at": "2026-12-02T09:00:00Z"}
    payload = json.dumps({"v": 1, "request_id": "req-1",
                          "expires_at": expires_soon(), "args": {"card": card}}).encode()
    vp = VirtualPrinter("127.0.0.1", 0, tmp_path / "out")
    port = vp.start()
    printer = EscposPrinter("office", f"escpos-net:127.0.0.1:{port}", {"timeout_s": 3})
    printer.start()
    store = LocalStore(tmp_path / "agent.db")
    try:
        queue = PrintQueue(store, {"office": printer})
        router = CommandRouter()
        router.register("print-record-card", lambda rid, args: handle_print_record_card(
            args, queue.printers, request_id=rid, queue=queue))
        first = router.handle("print-record-card", payload)
        again = router.handle("print-record-card", payload)  # QoS 1 redelivery
        assert first["ok"] and again["ok"], (first, again)
        assert first["result"]["state"] == again["result"]["state"] == "printed"
        assert first["result"]["job_id"] == "record-card-req-1"
        assert vp.wait_for(1)
        time.sleep(0.3)  # a second card would have arrived by now
        assert len(vp.receipts) == 1
        assert "Izdano: 02. 12. 2026 10:00" in vp.receipts[0].text  # local time of issue
    finally:
        store.close()
        printer.stop()
        vp.stop()


def test_the_school_name_from_its_settings_page_is_printed_on_the_card(school: School) -> None:
    """Before the school fills in its data, the mount's name (or the tenant's id) stands
    in; once saved on the school's page, that name heads the page and the printed card."""

    class Paper:
        id = "office"

        def __init__(self) -> None:
            self.jobs: list[bytes] = []

        def print_job(self, job) -> None:  # type: ignore[no-untyped-def]
            self.jobs.append(job.payload)

    admin, csrf = school.client("admin")
    person = school.candidate_ids[0]
    page = admin.get("/driving-school/school")
    assert page.status_code == 200 and f'value="{SCHOOL}"' in page.text
    assert "Ime šole še ni vpisano" in page.text
    refused = admin.post("/driving-school/school", data={"csrf_token": csrf, "name": "",
                                                         "address": "Trubarjeva 3"})
    assert refused.status_code == 422 and 'id="e-name"' in refused.text
    assert 'value="Trubarjeva 3"' in refused.text
    name = "Avtošola Žarek d.o.o."
    saved = admin.post("/driving-school/school", data={
        "csrf_token": csrf, "name": name, "address": "Trubarjeva 3, 1000 Ljubljana",
        "registration_no": "1234567000"}, follow_redirects=False)
    assert saved.status_code == 303
    assert name in admin.get(f"/driving-school/candidates/{person}/card").text
    # only the administrator manages the school's data
    reception, rcsrf = school.client("recepcija")
    assert reception.post("/driving-school/school", data={"csrf_token": rcsrf, "name": "X"}
                          ).status_code == 403

    sent = reception.post(f"/driving-school/candidates/{person}/print-card",
                          data={"csrf_token": rcsrf, "device": "office-1"},
                          follow_redirects=False)
    assert sent.status_code == 303
    [(_topic, payload)] = school.publisher.messages
    message = json.loads(payload)
    assert message["args"]["card"]["school"] == name
    paper = Paper()
    handle_print_record_card(message["args"], {"office": paper})  # type: ignore[dict-item]
    [job] = paper.jobs
    assert f"Šola vožnje: {name}".encode("cp852") in job
    # a wrong device name comes back beside the field, in Slovenian
    bad = reception.post(f"/driving-school/candidates/{person}/print-card",
                         data={"csrf_token": rcsrf, "device": "office 1!"})
    assert bad.status_code == 422 and 'id="e-device"' in bad.text
    assert 'value="office 1!"' in bad.text and "Vpiši ime, kot je office-1" in bad.text
