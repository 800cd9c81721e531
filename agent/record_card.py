"""The driving-school candidate's record card (evidenčni karton vožnje) on the office's
ESC/POS printer, and the agent's handler of the bridge's ``print-record-card`` command.

The bridge sends the card's data (cloud_bridge/driving_school/card_command.py); the agent
renders it as ESC/POS bytes in code page CP852 (drivers/escpos_render.py, python-escpos'
Dummy printer), so č š ž Č Š Ž print, and hands it to the named printer. The field list
and its sources are in docs/driving_school.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from agent.print_queue import PrintQueue
from drivers.escpos_render import Document, render_document
from drivers.protocols import Printer, PrintJob

WIDTH = 48  # 80 mm paper, font A
LOCAL_TZ = ZoneInfo("Europe/Ljubljana")  # the school's dates and times
TITLE = "EVIDENČNI KARTON VOŽNJE"
LESSON_TYPES = {"poligon": "poligon", "promet": "promet", "avtocesta": "avtocesta",
                "nocna": "nočna", "preizkus": "preizkus"}

_Text = Annotated[str, Field(max_length=200)]


class CardLesson(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    day: _Text
    start: _Text = ""
    end: _Text = ""
    count: int = 1
    type: _Text = ""
    vehicle: _Text = ""
    km: int = 0


class RecordCard(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    school: _Text = ""
    register_no: Annotated[str, Field(min_length=1, max_length=30)]
    first_name: Annotated[str, Field(min_length=1, max_length=80)]
    last_name: Annotated[str, Field(min_length=1, max_length=80)]
    birth_date: _Text
    birth_place: _Text = ""
    emso: _Text = ""
    address: _Text = ""
    phone: _Text = ""
    category: _Text = ""
    started_on: _Text = ""
    theory_done_on: _Text = ""
    theory_exam_on: _Text = ""
    first_aid_on: _Text = ""
    medical_valid_until: _Text = ""
    instructor: _Text = ""
    instructor_licence: _Text = ""
    required_lessons: int = 0
    lessons_done: int = 0
    km_total: int = 0
    last_lesson_day: _Text = ""
    finished_on: _Text = ""
    # when the office pressed "print" (UTC ISO); printed as the card's date, so that a
    # redelivered command renders the very same bytes (the print queue's idempotency)
    issued_at: _Text = ""
    lessons: Annotated[list[CardLesson], Field(max_length=200)] = []


class PrintCardArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card: RecordCard
    printer: Annotated[str | None, Field(max_length=64)] = None


def _day(value: str) -> str:
    """2026-03-05 -> 5. 3. 2026 (the Slovenian way); anything else as given, "-" if empty."""
    if not value:
        return "-"
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{d.day}. {d.month}. {d.year}"


def _field(label: str, value: str) -> str:
    return f"{label}: {value or '-'}"


def card_lines(card: RecordCard, printed_at: datetime) -> list[str]:
    rule = "-" * WIDTH
    lines = [
        _field("Šola vožnje", card.school),
        _field("Evidenčna št. kandidata", card.register_no),
        rule,
        _field("Priimek in ime", f"{card.last_name} {card.first_name}"),
        _field("Datum rojstva", _day(card.birth_date)),
        _field("Kraj rojstva", card.birth_place),
        _field("EMŠO", card.emso),
        _field("Naslov", card.address),
        _field("Telefon", card.phone),
        _field("Kategorija", card.category),
        rule,
        _field("Začetek usposabljanja", _day(card.started_on)),
        _field("Teoretični del usposabljanja", _day(card.theory_done_on)),
        _field("Teoretični del izpita opravljen", _day(card.theory_exam_on)),
        _field("Izpit iz prve pomoči", _day(card.first_aid_on)),
        _field("Zdravniško spričevalo velja do", _day(card.medical_valid_until)),
        _field("Učitelj vožnje", f"{card.instructor}"
               + (f" (dovoljenje {card.instructor_licence})" if card.instructor_licence
                  else "")),
        rule,
        _field("Opravljene učne ure vožnje",
               f"{card.lessons_done}" + (f" od {card.required_lessons}"
                                         if card.required_lessons else "")),
        _field("Prevoženi kilometri", str(card.km_total)),
        _field("Zadnja učna ura", _day(card.last_lesson_day)),
        _field("Praktični del usposabljanja zaključen", _day(card.finished_on)),
    ]
    if card.lessons:
        # 47 columns: date 9, time 12, lessons 3, type 9, vehicle 10, km 4
        lines += [rule, f"{'Datum':<9}{'Čas':<12}{'Ur':>2} {'Vrsta':<9}{'Vozilo':<10}"
                        f"{'km':>4}"]
        for le in card.lessons:
            d = date.fromisoformat(le.day).strftime("%d.%m.%y") if len(le.day) == 10 \
                else le.day[:8]
            kind = LESSON_TYPES.get(le.type, le.type)[:9]
            lines.append(f"{d:<9}{le.start[:5]}-{le.end[:5]:<6}{le.count:>2} {kind:<9}"
                         f"{le.vehicle[:9]:<10}{le.km:>4}"[:WIDTH])
    lines += [rule, f"Izdano: {printed_at.strftime('%d. %m. %Y %H:%M')}", "",
              "Podpis kandidata: ______________________", "",
              "Žig in podpis šole: ____________________", ""]
    return lines


def render_record_card(candidate: Mapping[str, Any] | RecordCard, *,
                       printed_at: datetime | None = None) -> bytes:
    """The record card as ESC/POS bytes (CP852, 48 columns, cut at the end)."""
    card = candidate if isinstance(candidate, RecordCard) \
        else RecordCard.model_validate(dict(candidate))
    when = printed_at or _issued(card.issued_at) or datetime.now(LOCAL_TZ)
    return render_document(Document(TITLE, card_lines(card, when), width=WIDTH))


def _issued(value: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.astimezone(LOCAL_TZ) if at.tzinfo else at


def handle_print_record_card(args: dict[str, Any], printers: Mapping[str, Printer], *,
                             request_id: str | None = None,
                             queue: PrintQueue | None = None) -> dict[str, Any]:
    """Handler of the ``print-record-card`` command: ``args`` is ``{"card": {...},
    "printer": "office"}`` (printer optional when the agent has exactly one).

    With ``queue`` (agent/print_queue.py) the card goes through the durable queue under
    the job id ``record-card-<request_id>``: a printer that is off prints it later, and
    a redelivered command prints nothing twice. Without it the card is printed at once.
    Raises ValueError (bad args, unknown printer) or drivers.errors.PrinterError; the
    command router turns either into an error result."""
    parsed = PrintCardArgs.model_validate(args)
    if parsed.printer is not None:
        if parsed.printer not in printers:
            raise ValueError(f"no printer '{parsed.printer}' (known: "
                             f"{', '.join(sorted(printers)) or 'none'})")
        printer_id = parsed.printer
    elif len(printers) == 1:
        printer_id = next(iter(printers))
    else:
        raise ValueError("say which printer: this agent has "
                         f"{', '.join(sorted(printers)) or 'no printers'}")
    payload = render_record_card(parsed.card)
    job_id = f"record-card-{request_id or int(time.time() * 1000)}"[:64]
    meta = {"kind": "record-card", "register_no": parsed.card.register_no}
    if queue is not None:
        state = str(queue.submit(printer_id, job_id, payload, meta))
    else:
        printers[printer_id].print_job(PrintJob(job_id, payload, meta))
        state = "printed"
    return {"printer": printer_id, "job_id": job_id, "state": state, "bytes": len(payload),
            "register_no": parsed.card.register_no, "lessons": len(parsed.card.lessons)}
