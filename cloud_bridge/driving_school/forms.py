"""The office forms (candidates, instructors, vehicles, courses, the school's own data),
validated on the server with messages for a clerk (``cloud_bridge.web.form_errors``).

Each limit is one constant here: the model enforces it and the template shows it (the
``LIMITS`` dict is handed to the pages). Dates are typed the Slovenian way
("3. 12. 2026", ``contracts.i18n.parse_day``) and stored as ISO strings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from cloud_bridge.param_bounds import RowIdField
from contracts.i18n import gettext as _
from contracts.i18n import parse_day

CATEGORIES = ("AM", "A1", "A2", "A", "B1", "B", "BE", "C1", "C1E", "C", "CE", "D1", "D1E",
              "D", "DE", "F", "G")
_REG = r"^[A-ZČŠŽ0-9][A-ZČŠŽ0-9 -]{2,18}$"

# one number per limit: the models below and the forms' maxlength/min/max
LIMITS: dict[str, int] = {
    "register_no": 30, "first_name": 80, "last_name": 80, "birth_place": 80,
    "address": 200, "phone": 40, "name": 120, "username_min": 3, "username": 120,
    "password_min": 10, "password": 200, "licence_no": 40, "categories": 60,
    "registration": 20, "make_model": 80, "required_lessons_max": 200,
    "school_name": 120, "school_address": 200, "school_reg": 40,
    "topic": 200, "lecturer": 120, "theory_hours_max": 4,
}


def iso_day(value: Any) -> str:
    """A typed date ("3. 12. 2026" or ISO) as ISO; "" stays "" (an empty optional day)."""
    text = str(value or "").strip()
    return parse_day(text).isoformat() if text else ""


def _required_day(value: Any) -> str:
    day = iso_day(value)
    if not day:
        raise ValueError(_("Fill this in."))
    return day


def _blank_none(value: Any) -> Any:
    return None if value in ("", None) else value


Day = Annotated[str, BeforeValidator(iso_day)]
RequiredDay = Annotated[str, BeforeValidator(_required_day)]
OptionalRowId = Annotated[RowIdField | None, BeforeValidator(_blank_none)]
ReqRegisterNo = Annotated[str, Field(min_length=1, max_length=LIMITS["register_no"])]
ReqFirstName = Annotated[str, Field(min_length=1, max_length=LIMITS["first_name"])]
ReqLastName = Annotated[str, Field(min_length=1, max_length=LIMITS["last_name"])]
OptBirthPlace = Annotated[str, Field(min_length=0, max_length=LIMITS["birth_place"])]
OptAddress = Annotated[str, Field(min_length=0, max_length=LIMITS["address"])]
OptPhone = Annotated[str, Field(min_length=0, max_length=LIMITS["phone"])]
ReqName = Annotated[str, Field(min_length=1, max_length=LIMITS["name"])]
ReqLicenceNo = Annotated[str, Field(min_length=1, max_length=LIMITS["licence_no"])]
ReqCategories = Annotated[str, Field(min_length=1, max_length=LIMITS["categories"])]
OptMakeModel = Annotated[str, Field(min_length=0, max_length=LIMITS["make_model"])]
ReqSchoolName = Annotated[str, Field(min_length=1, max_length=LIMITS["school_name"])]
OptSchoolAddress = Annotated[str, Field(min_length=0, max_length=LIMITS["school_address"])]
OptSchoolReg = Annotated[str, Field(min_length=0, max_length=LIMITS["school_reg"])]




def _category(value: str) -> str:
    if value not in CATEGORIES:
        raise ValueError(_("Choose one of the offered options."))
    return value


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CandidateForm(_Form):
    register_no: ReqRegisterNo
    first_name: ReqFirstName
    last_name: ReqLastName
    birth_date: RequiredDay
    birth_place: OptBirthPlace = ""
    emso: Annotated[str, Field(pattern=r"^(\d{13})?$")] = ""
    address: OptAddress = ""
    phone: OptPhone = ""
    instructor_id: OptionalRowId = None
    active: bool = True


class InstructorEdit(_Form):
    """An instructor's data; the sign-in (username, password) is made once, at creation."""

    name: ReqName
    licence_no: ReqLicenceNo
    categories: ReqCategories = "B"

    @field_validator("categories")
    @classmethod
    def _known(cls, v: str) -> str:
        parts = [p for p in v.replace(",", " ").upper().split() if p]
        for p in parts:
            _category(p)
        return " ".join(parts)


class InstructorForm(InstructorEdit):
    username: Annotated[str, Field(min_length=LIMITS["username_min"],
                                   max_length=LIMITS["username"])]
    password: Annotated[str, Field(min_length=LIMITS["password_min"],
                                   max_length=LIMITS["password"])]


class VehicleForm(_Form):
    registration: Annotated[str, Field(pattern=_REG)]
    make_model: OptMakeModel = ""
    category: str = "B"

    @field_validator("registration", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return " ".join(v.upper().split()) if isinstance(v, str) else v

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str) -> str:
        return _category(v)


class CourseForm(_Form):
    candidate_id: RowIdField
    category: str
    started_on: RequiredDay
    theory_done_on: Day = ""
    theory_exam_on: Day = ""
    first_aid_on: Day = ""
    medical_valid_until: Day = ""
    required_lessons: Annotated[int, Field(ge=0, le=LIMITS["required_lessons_max"])] = 20
    finished_on: Day = ""

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str) -> str:
        return _category(v)


class TheorySessionForm(_Form):
    """A theory session: at most 4 school hours a day (brezstrahuzavolanom.si; the
    Pravilnik's own article is not read, see docs/driving_school.md)."""

    category: str
    day: RequiredDay
    start_hm: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    hours: Annotated[int, Field(ge=1, le=LIMITS["theory_hours_max"])] = 2
    topic: Annotated[str, Field(min_length=1, max_length=LIMITS["topic"])]
    lecturer: Annotated[str, Field(min_length=1, max_length=LIMITS["lecturer"])]
    lecturer_licence: Annotated[str, Field(max_length=LIMITS["licence_no"])] = ""

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str) -> str:
        return _category(v)


class LeavingForm(_Form):
    """A candidate leaving for another school (izpisni list)."""

    left_on: RequiredDay
    to_school: Annotated[str, Field(max_length=LIMITS["school_name"])] = ""


class SchoolForm(_Form):
    """The school's own data: its name heads the record card and the office pages."""

    name: ReqSchoolName
    address: OptSchoolAddress = ""
    registration_no: OptSchoolReg = ""


DAY_FIELDS = ("left_on", "birth_date", "started_on", "theory_done_on", "theory_exam_on",
              "first_aid_on", "medical_valid_until", "finished_on")
