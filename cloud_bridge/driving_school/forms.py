"""The office forms (candidates, instructors, vehicles, courses), validated."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloud_bridge.param_bounds import RowIdField

_Day = Annotated[str, Field(max_length=10)]
_REG = r"^[A-ZČŠŽ0-9][A-ZČŠŽ0-9 -]{2,18}$"
CATEGORIES = ("AM", "A1", "A2", "A", "B1", "B", "BE", "C1", "C1E", "C", "CE", "D1", "D1E",
              "D", "DE", "F", "G")


def _day(v: str, *, required: bool = False) -> str:
    v = v.strip()
    if not v:
        if required:
            raise ValueError("a date is required")
        return ""
    date.fromisoformat(v)  # ValueError for a wrong date
    return v


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CandidateForm(_Form):
    register_no: Annotated[str, Field(min_length=1, max_length=30)]
    first_name: Annotated[str, Field(min_length=1, max_length=80)]
    last_name: Annotated[str, Field(min_length=1, max_length=80)]
    birth_date: _Day
    birth_place: Annotated[str, Field(max_length=80)] = ""
    emso: Annotated[str, Field(pattern=r"^(\d{13})?$")] = ""
    address: Annotated[str, Field(max_length=200)] = ""
    phone: Annotated[str, Field(max_length=40)] = ""
    instructor_id: RowIdField | None = None
    active: bool = True

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: str) -> str:
        return _day(v, required=True)

    @field_validator("instructor_id", mode="before")
    @classmethod
    def _none(cls, v: Any) -> Any:
        return None if v in ("", None) else v


class InstructorForm(_Form):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    username: Annotated[str, Field(min_length=3, max_length=120)]
    password: Annotated[str, Field(min_length=10, max_length=200)]
    licence_no: Annotated[str, Field(min_length=1, max_length=40)]
    categories: Annotated[str, Field(min_length=1, max_length=60)] = "B"


class VehicleForm(_Form):
    registration: Annotated[str, Field(pattern=_REG)]
    make_model: Annotated[str, Field(max_length=80)] = ""
    category: str = "B"

    @field_validator("registration", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError("unknown category")
        return v


class CourseForm(_Form):
    candidate_id: RowIdField
    category: str
    started_on: _Day
    theory_done_on: _Day = ""
    theory_exam_on: _Day = ""
    first_aid_on: _Day = ""
    medical_valid_until: _Day = ""
    required_lessons: Annotated[int, Field(ge=0, le=200)] = 20
    finished_on: _Day = ""

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError("unknown category")
        return v

    @field_validator("started_on")
    @classmethod
    def _start(cls, v: str) -> str:
        return _day(v, required=True)

    @field_validator("theory_done_on", "theory_exam_on", "first_aid_on",
                     "medical_valid_until", "finished_on")
    @classmethod
    def _optional(cls, v: str) -> str:
        return _day(v)


def form_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
