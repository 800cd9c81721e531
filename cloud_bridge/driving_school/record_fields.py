"""The fields of the driving school's official records, in one place.

The *Pravilnik o usposabljanju kandidatov za voznike motornih vozil* (Ur. l. RS 95/2021,
item 2065) names five records in its article 1: the register of candidates (register
kandidatov za voznike), the evidenčni karton vožnje, the dnevni razvid vožnje, the
dnevnik usposabljanja and the izpisni list. The articles and annexed forms that list
each record's fields could not be read (see docs/driving_school.md, "Sources"), so every
field says how sure we are of it:

- ``secondary``: a public page by a school, the exam centre's agency or a training
  provider says this entry is on the record; the Pravilnik's own article is not read;
- ``assumed``: follows from the record's purpose; not confirmed by any source.

``held_in`` names where the code keeps the field: ``table.column`` of the schema,
``card.key`` (the record-card data sent to the printer, ``lesson_log.record_card``),
``log.key`` (a row of ``lesson_log.log_rows``: the daily log and the card's lessons), or
``""`` when nothing holds it yet. docs/driving_school.md carries the same table, and
tests/driving_school/test_record_fields.py checks that the docs, the schema and the
record-card data agree with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["secondary", "assumed"]

# public pages that confirm an entry (the Pravilnik's own text is cited by record)
PRAVILNIK = "Pravilnik, čl. 1 (names the record)"
SRC_EXAM_CENTRE = "avtosola-ipsilon.si/kandidati: the exam centre enters the passed theory exam"
SRC_THEORY_DONE = "avp-rs.si: the karton proves the theory part of training is done"
SRC_PRACTICE_DONE = ("solavoznjeilke.si/kako-do-izpita, vozniski-izpit.com: "
                     "the school confirms the end of the practical part on the karton")
SRC_COMPANION = ("zsam-celje.si/voznja-s-spremljevalcem (quoting ZVoz-1): the upravna "
                 "enota enters the accompanying driver in the karton")
SRC_MIN_HOURS = "solavoznjeilke.si, varnostljubljana.si: at least 20 driving hours for B"
SRC_LECTURER = "Pravilnik, čl. 2: theory is taught by učitelji predpisov"
SRC_THEORY_HOURS = "brezstrahuzavolanom.si: theory (CPP) in school hours, at most 4 a day"


@dataclass(frozen=True)
class RecordField:
    key: str
    label: str  # the record's own (Slovenian) term for the entry
    held_in: str
    status: Status
    source: str = PRAVILNIK


@dataclass(frozen=True)
class Record:
    key: str
    name: str
    fields: tuple[RecordField, ...]


def _f(key: str, label: str, held_in: str, status: Status = "assumed",
       source: str = PRAVILNIK) -> RecordField:
    return RecordField(key, label, held_in, status, source)


REGISTER = Record("register", "register kandidatov za voznike", (
    _f("register_no", "zaporedna (evidenčna) številka", "ds_candidates.register_no"),
    _f("last_name", "priimek", "ds_candidates.last_name"),
    _f("first_name", "ime", "ds_candidates.first_name"),
    _f("birth_date", "datum rojstva", "ds_candidates.birth_date"),
    _f("birth_place", "kraj rojstva", "ds_candidates.birth_place"),
    _f("emso", "EMŠO", "ds_candidates.emso"),
    _f("address", "naslov prebivališča", "ds_candidates.address"),
    _f("category", "kategorija", "ds_courses.category"),
    _f("started_on", "datum začetka usposabljanja", "ds_courses.started_on"),
    _f("finished_on", "datum zaključka usposabljanja", "ds_courses.finished_on"),
    _f("left_on", "datum izpisa (prestop v drugo šolo)", "ds_leavings.left_on"),
))

RECORD_CARD = Record("record_card", "evidenčni karton vožnje", (
    _f("school", "šola vožnje", "card.school"),
    _f("register_no", "evidenčna številka kandidata", "card.register_no"),
    _f("name", "priimek in ime", "card.last_name"),
    _f("birth", "datum in kraj rojstva", "card.birth_date"),
    _f("emso", "EMŠO", "card.emso"),
    _f("address", "naslov", "card.address"),
    _f("category", "kategorija", "card.category"),
    _f("started_on", "začetek usposabljanja", "card.started_on"),
    _f("theory_done_on", "opravljen teoretični del usposabljanja", "card.theory_done_on",
       "secondary", SRC_THEORY_DONE),
    _f("theory_exam_on", "opravljen teoretični del vozniškega izpita",
       "card.theory_exam_on", "secondary", SRC_EXAM_CENTRE),
    _f("first_aid_on", "izpit iz prve pomoči", "card.first_aid_on"),
    _f("medical_valid_until", "zdravniško spričevalo velja do",
       "card.medical_valid_until"),
    _f("companion", "spremljevalec (vpis upravne enote)", "", "secondary", SRC_COMPANION),
    _f("instructor", "učitelj vožnje in številka dovoljenja", "card.instructor_licence"),
    _f("lessons_done", "opravljene učne ure vožnje in predpisane",
       "card.required_lessons", "secondary", SRC_MIN_HOURS),
    _f("lessons", "učne ure: datum, čas, število, vrsta, vozilo, km", "card.lessons"),
    _f("finished_on", "zaključen praktični del usposabljanja (potrditev šole)",
       "card.finished_on", "secondary", SRC_PRACTICE_DONE),
))

DAILY_LOG = Record("daily_log", "dnevni razvid vožnje", (
    _f("day", "datum", "log.day"),
    _f("instructor", "učitelj vožnje", "log.instructor"),
    _f("candidate", "kandidat", "log.candidate"),
    _f("register_no", "evidenčna številka kandidata", "log.register_no"),
    _f("time", "čas začetka in konca", "log.start_hm"),
    _f("lesson_count", "število učnih ur", "log.lesson_count"),
    _f("lesson_type", "vrsta (vsebina) učne ure", "log.type_label"),
    _f("vehicle", "vozilo (registrska številka)", "log.registration"),
    _f("km", "kilometri (začetek, konec)", "log.km_start"),
    _f("signature", "podpis kandidata", "log.signature"),
))

TRAINING_LOG = Record("training_log", "dnevnik usposabljanja", (
    _f("day", "datum in čas", "ds_theory_sessions.day"),
    _f("hours", "število šolskih ur", "ds_theory_sessions.hours", "secondary",
       SRC_THEORY_HOURS),
    _f("topic", "vsebina (tema)", "ds_theory_sessions.topic"),
    _f("lecturer", "učitelj predpisov", "ds_theory_sessions.lecturer", "secondary",
       SRC_LECTURER),
    _f("attendance", "navzočnost kandidatov", "ds_theory_attendance.candidate_id"),
))

LEAVING_SHEET = Record("leaving_sheet", "izpisni list", (
    _f("school", "šola vožnje, ki izdaja list", "card.school"),
    _f("candidate", "kandidat (ime, priimek, EMŠO)", "card.emso"),
    _f("category", "kategorija", "card.category"),
    _f("theory", "opravljeni teoretični del", "card.theory_done_on"),
    _f("lessons_done", "opravljene učne ure vožnje", "card.lessons_done"),
    _f("left_on", "datum izpisa", "ds_leavings.left_on"),
    _f("to_school", "šola vožnje, v katero kandidat prestopa", "ds_leavings.to_school"),
))

RECORDS: tuple[Record, ...] = (REGISTER, RECORD_CARD, DAILY_LOG, TRAINING_LOG,
                               LEAVING_SHEET)


def table_rows() -> list[tuple[str, str, str, str, str, str]]:
    """The rows of the docs table: record, key, label, held in, status, source."""
    return [(r.name, f.key, f.label, f.held_in or "not held", f.status, f.source)
            for r in RECORDS for f in r.fields]
