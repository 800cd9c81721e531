"""What the law lets an employee see, on their phone (``/phone/{tenant}/me``): their
month as the working-time record lists it (the same tables as the employer's printout:
arrival and departure, breaks, hours by kind, running totals), opened on the previous
month by default — the monthly notice, which ZEPDSV lets the employer give as direct
electronic access — and their absence requests with the manager's decisions, with the
form to ask for one (a sick-leave document may be uploaded). Signed in by the phone
session's cookie (set with the session, ``phone_routes.py``); a form carries a token
derived from the session so that another site cannot post it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from cloud_bridge.attendance import absence_requests as requests_ops
from cloud_bridge.attendance.labels import ABSENCE_NAMES
from cloud_bridge.attendance.phone_enrolment import PhoneUser, phone_user
from cloud_bridge.attendance.phone_routes import PHONE_COOKIE
from cloud_bridge.attendance.reports import month_report, parse_month, templates
from cloud_bridge.attendance.timesheet import LJUBLJANA, AbsenceKind
from cloud_bridge.attendance.timesheet_marks import month_marks
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.errors import Invalid, Unauthorized
from contracts.i18n import N_, ngettext
from contracts.i18n import gettext as _

router = APIRouter()
MonthParam = Annotated[str | None, Query(pattern=r"^\d{4}-\d\d$")]
NOTICES = {"sent": N_("Your request was sent to your manager.")}


def _engine(request: Request) -> Any:
    return request.app.state.attendance_context.engine


def _user(request: Request, tenant: str) -> tuple[PhoneUser, str]:
    session = request.cookies.get(PHONE_COOKIE, "")
    if not session:
        raise Unauthorized("this phone is not signed in")
    with read_tx(_engine(request)) as conn:
        user = phone_user(conn, session)
    if user.tenant != tenant:
        raise Unauthorized("this phone is not signed in here")
    return user, session


def form_token(session: str) -> str:
    return hmac.new(session.encode(), b"phone-form", hashlib.sha256).hexdigest()[:32]


def previous_month(now: datetime) -> tuple[int, int]:
    local = now.astimezone(LJUBLJANA)
    return (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)


def _shift(year: int, month: int, by: int) -> str:
    n = year * 12 + month - 1 + by
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _page(request: Request, tenant: str, user: PhoneUser, session: str, month: str | None,
          status: int = 200, **context: Any) -> HTMLResponse:
    year, mon = parse_month(month) if month else previous_month(datetime.now(UTC))
    with read_tx(_engine(request)) as conn:
        report = month_report(conn, tenant, year, mon, employee=user.employee)
        marks = month_marks(conn, report)
        mine = requests_ops.list_requests(conn, tenant, user.employee)
    base: dict[str, Any] = {"values": {}, "errors": {}, "notice": ""}
    return templates.TemplateResponse(request, "phone_me.html", {
        "tenant": tenant, "r": report, "detail": True, "rules": report.rules,
        "marks": marks, "month_label": None, "employee": user.employee,
        "is_notice": month is None, "prev": _shift(year, mon, -1),
        "next": _shift(year, mon, 1), "requests": mine, "absence_names": ABSENCE_NAMES,
        "kinds": [(k.value, _(ABSENCE_NAMES[k])) for k in requests_ops.REQUESTED_KINDS],
        "csrf": form_token(session), **{**base, **context}}, status_code=status)


@router.get("/phone/{tenant}/me", response_class=HTMLResponse)
def my_records(request: Request, tenant: str, month: MonthParam = None, sent: str = ""
               ) -> Response:
    user, session = _user(request, tenant)
    notice = _(NOTICES[sent]) if sent in NOTICES else ""
    return _page(request, tenant, user, session, month, notice=notice)


def _field_errors(typed: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in ("first_day", "last_day"):
        try:
            date.fromisoformat(typed.get(name, ""))
        except ValueError:
            errors[name] = _("Choose a day.")
    if typed.get("kind") not in {k.value for k in requests_ops.REQUESTED_KINDS}:
        errors["kind"] = _("Fill this in.")
    if not errors and typed["last_day"] < typed["first_day"]:
        errors["last_day"] = _("The last day is before the first day.")
    if len(typed.get("note", "")) > 2000:
        errors["note"] = ngettext("Enter at most %(n)d character.",
                                  "Enter at most %(n)d characters.", 2000) % {"n": 2000}
    return errors


@router.post("/phone/{tenant}/me/absence-requests", response_class=HTMLResponse)
async def ask_for_absence(request: Request, tenant: str) -> Response:
    user, session = _user(request, tenant)
    form = await request.form()
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    if not hmac.compare_digest(typed.get("csrf_token", ""), form_token(session)):
        raise Unauthorized("the form is not from this phone")
    errors = _field_errors(typed)
    upload = form.get("document")
    document = None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(requests_ops.DOCUMENT_MAX_BYTES + 1)
        document = requests_ops.Document(upload.filename, upload.content_type or "", data)
    if not errors:
        entry = requests_ops.RequestIn(user.employee, AbsenceKind(typed["kind"]),
                                       date.fromisoformat(typed["first_day"]),
                                       date.fromisoformat(typed["last_day"]),
                                       typed.get("note", "").strip(), document)
        try:
            with write_tx(_engine(request)) as conn:
                requests_ops.submit_request(conn, tenant, entry)
        except Invalid as exc:
            errors = {"document": _document_error(str(exc))}
    if errors:
        return _page(request, tenant, user, session, typed.get("month") or None, 422,
                     values=typed, errors=errors)
    return RedirectResponse(f"/phone/{tenant}/me?sent=sent", 303)


def _document_error(text: str) -> str:
    if "larger" in text:
        return _("The document is larger than 5 MB.")
    return _("The document must be a PDF, JPEG or PNG file.")
