"""Applications to the school: a candidate applies for a category through the public API
(with consent to the processing of their data), the office accepts the application into
the register of candidates (register kandidatov za voznike) and the candidate is told by
e-mail and SMS through the bridge's notification outbox.

Accepting is one transaction: the candidate's register row, their course, the
application's new status and the notices (``Notifier.enqueue`` writes the outbox row in
the same transaction), so a failure leaves the application pending and nothing sent."""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, Engine, insert, select, update

from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.apply_limits import ApplyLimits, admit
from cloud_bridge.driving_school.forms import CATEGORIES, RequiredDay
from cloud_bridge.driving_school.schema import applications, candidates, courses
from cloud_bridge.errors import Invalid
from cloud_bridge.notifications import Notice, Notifier
from contracts.i18n import N_
from contracts.i18n import gettext as _

# the version of the consent text the public form shows; stored with each application
# (a change of CONSENT_TEXT needs a new version)
CONSENT_VERSION = "2026-12"
CONSENT_TEXT = N_("I agree that the driving school processes the personal data I give here "
                  "to handle my application and, once it is accepted, keeps them in the "
                  "register of candidates as the regulation on training candidates for "
                  "drivers requires.")


class ApplicationIn(BaseModel):
    """What the public API accepts (JSON); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: Annotated[str, Field(min_length=1, max_length=80)]
    last_name: Annotated[str, Field(min_length=1, max_length=80)]
    birth_date: RequiredDay
    birth_place: Annotated[str, Field(max_length=80)] = ""
    emso: Annotated[str, Field(pattern=r"^(\d{13})?$")] = ""
    address: Annotated[str, Field(max_length=200)] = ""
    email: Annotated[str, Field(max_length=200, pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$")] = ""
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9 +/()-]*$")] = ""
    category: str
    consent: bool

    @field_validator("category")
    @classmethod
    def _known_category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(_("Choose one of the offered options."))
        return v

    @field_validator("consent")
    @classmethod
    def _consented(cls, v: bool) -> bool:
        if not v:
            raise ValueError(_("The school can accept the application only with consent."))
        return v


def submit(engine: Engine, tenant: str, app: ApplicationIn,
           limits: ApplyLimits | None = None, client: str = "") -> int:
    """Stores a new application; with ``limits``, only if ``client`` (the sender's
    address) and the school are under them (``TooManyApplications`` otherwise, nothing
    stored)."""
    now = int(time.time() * 1000)
    values = app.model_dump(exclude={"consent"})
    with write_tx(engine) as conn:
        if limits is not None:
            admit(conn, limits, tenant, client)
        return int(conn.execute(insert(applications).values(
            tenant=tenant, **values, consent_version=CONSENT_VERSION, consent_ms=now,
            status="pending", created_ms=now).returning(applications.c.id)).scalar_one())


def next_register_no(conn: Connection, tenant: str, year: int) -> str:
    """The next number in the school's register for ``year``: one above the highest
    ``YYYY/NNN`` so far (numbers typed by hand in another shape are skipped)."""
    prefix = f"{year}/"
    taken = conn.execute(select(candidates.c.register_no).where(
        candidates.c.tenant == tenant, candidates.c.register_no.like(f"{prefix}%"))
    ).scalars()
    highest = max((int(n[len(prefix):]) for n in taken if n[len(prefix):].isdigit()),
                  default=0)
    return f"{prefix}{highest + 1:03d}"


def accept(engine: Engine, notifier: Notifier | None, tenant: str, application_id: int,
           decided_by: str, school_name: str, today: str) -> int:
    """The candidate's id in the register; a second accept of the same application
    (a double click) returns the same candidate and sends nothing again."""
    now = int(time.time() * 1000)
    with write_tx(engine) as conn:
        row = conn.execute(select(applications).where(
            applications.c.tenant == tenant, applications.c.id == application_id)
        ).mappings().first()
        if row is None:
            raise Invalid("no such application")
        if row["status"] == "accepted":
            return int(row["candidate_id"])
        register_no = next_register_no(conn, tenant, int(today[:4]))
        candidate_id = int(conn.execute(insert(candidates).values(
            tenant=tenant, register_no=register_no, first_name=row["first_name"],
            last_name=row["last_name"], birth_date=row["birth_date"],
            birth_place=row["birth_place"], emso=row["emso"], address=row["address"],
            phone=row["phone"], active=True, created_ms=now
        ).returning(candidates.c.id)).scalar_one())
        conn.execute(insert(courses).values(
            tenant=tenant, candidate_id=candidate_id, category=row["category"],
            started_on=today, required_lessons=20))
        conn.execute(update(applications).where(
            applications.c.tenant == tenant, applications.c.id == application_id
        ).values(status="accepted", candidate_id=candidate_id, decided_by=decided_by,
                 decided_ms=now))
        if notifier is not None:
            for notice in acceptance_notices(tenant, dict(row), register_no, school_name):
                notifier.enqueue(conn, notice)
    return candidate_id


def acceptance_notices(tenant: str, row: dict[str, Any], register_no: str,
                       school_name: str) -> list[Notice]:
    """An e-mail and an SMS, to whichever of the two the applicant gave."""
    text = _("%(school)s has accepted your application for category %(category)s. "
             "Your number in the register of candidates is %(no)s.") % {
        "school": school_name, "category": row["category"], "no": register_no}
    key = f"ds-application-{row['id']}-accepted"
    out = []
    if row["email"]:
        out.append(Notice(tenant, "ds_application_accepted", "email", row["email"],
                          _("Application accepted"), text, f"{key}-email"))
    if row["phone"]:
        out.append(Notice(tenant, "ds_application_accepted", "sms", row["phone"], "",
                          text, f"{key}-sms"))
    return out
