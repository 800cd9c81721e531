"""JSON and HTML endpoints of the attendance module, mounted by cloud_bridge/api.py
under /api/v1/tenants/{tenant}/attendance with the bridge's own bearer-token check and
tenant scoping (the checks are passed in by ``mount_attendance`` and kept on
``app.state``, so the rules stay in one place).

The bearer token identifies a deployment, not a person, so writes carry an ``author``
(the staff web pages will fill it from the logged-in user).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, Engine

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.attendance import absences as absence_ops
from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.chain_audit import audit_chain, chain_devices, set_device_key
from cloud_bridge.attendance.corrections import (
    CorrectionError,
    CorrectionIn,
    NotFound,
    create_correction,
    list_corrections,
)
from cloud_bridge.attendance.employer_rules import rules_json, set_tenant_rules, tenant_rules
from cloud_bridge.attendance.group_writer import GroupWriter
from cloud_bridge.attendance.phone_routes import router as phone_router
from cloud_bridge.attendance.phone_self_routes import router as phone_self_router
from cloud_bridge.attendance.reports import (
    MonthReport,
    company_csv,
    employee_csv,
    minutes,
    month_report,
    parse_month,
    report_html,
)
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.attendance.staff_forms import REASON_MAX, REASON_MIN
from cloud_bridge.attendance.timesheet import FIGURES, AbsenceKind, Day, Rules, Totals
from cloud_bridge.attendance.timesheet_marks import month_marks
from cloud_bridge.db_schema import is_sqlite, read_tx, write_tx
from cloud_bridge.param_bounds import MAX_BIGINT, RowIdField, RowIdPath
from cloud_bridge.partitions import PartitionKeeper
from contracts.punch_types import PunchType

EntityId = Annotated[str, Path(pattern=ID_PATTERN)]
TenantId = Annotated[str, Path(pattern=ID_PATTERN, description="tenant id")]
Month = Annotated[str, Query(pattern=r"^\d{4}-\d\d$", description="YYYY-MM")]
Author = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
Reason = Annotated[str, StringConstraints(min_length=REASON_MIN, max_length=REASON_MAX,
                                          strip_whitespace=True)]  # as on the staff pages
_Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
_STATE_KEY = "attendance_context"
T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorrectionBody(_In):
    action: Annotated[str, Field(pattern="^(add|amend|void)$")]
    author: Author
    reason: Reason
    employee: _Id | None = None
    ref_device: _Id | None = None
    ref_seq: Annotated[int, Field(ge=1, le=MAX_BIGINT)] | None = None
    ref_correction: RowIdField | None = None
    at: datetime | None = Field(None, description="corrected time, ISO 8601 with offset")
    punch_type: PunchType | None = None


class AbsenceBody(_In):
    employee: _Id
    kind: Annotated[str, Field(pattern="^(annual_leave|sick_leave|other)$")]
    first_day: date
    last_day: date
    author: Author
    hours_per_day: Annotated[float, Field(gt=0, le=24)] | None = None
    note: Annotated[str, Field(max_length=2000)] = ""


class AbsenceReplaceBody(AbsenceBody):
    reason: Reason


class WithdrawBody(_In):
    author: Author
    reason: Reason


class RulesBody(_In):
    overtime_basis: Annotated[str, Field(pattern="^(week|day)$")]
    daily_hours: Annotated[float, Field(gt=0, le=24)] = 8.0
    weekly_hours: Annotated[float, Field(gt=0, le=40)] = 40.0
    # working time unevenly distributed or temporarily redistributed: 11 h of daily rest
    # are due instead of 12 (ZDR-1 art. 155(2))
    uneven_schedule: bool = False
    author: Author


class DeviceKeyBody(_In):
    public_key: Annotated[str, Field(max_length=80, description="base64 raw Ed25519 key")]
    author: Author


# every figure is whole minutes (integers), the unit the CSV and HTML print as H:MM, so
# day rows add up exactly to the totals (docs/attendance.md, "Rounding")
_m = minutes


def _figures(x: Day | Totals) -> dict[str, int]:
    return {f"{f.name}_min": _m(getattr(x, f.attr)) for f in FIGURES}


def totals_json(t: Totals) -> dict[str, Any]:
    return {"days_worked": t.days_worked, **_figures(t),
            "absences_min": {k: _m(v) for k, v in sorted(t.absences.items())},
            "alerts": t.alerts}


def day_json(d: Day) -> dict[str, Any]:
    return {"date": d.day.isoformat(), "work_free_day": d.holiday,
            "arrival": d.start.isoformat() if d.start else None,
            "departure": d.end.isoformat() if d.end else None, **_figures(d),
            "absences_min": {k.value: _m(s) for k, s in d.absences},
            "week_to_date_min": _m(d.week_worked_s),
            "month_to_date_min": _m(d.month_worked_s), "alerts": list(d.alerts),
            "punches": list(d.sources)}


def report_json(r: MonthReport, days: bool) -> dict[str, Any]:
    return {"tenant": r.tenant, "month": r.label, "rules": rules_json(r.rules),
            "totals": totals_json(r.totals),
            "employees": [{"employee": e.employee, "name": e.name,
                           "totals": totals_json(e.sheet.totals),
                           **({"days": [day_json(d) for d in e.sheet.days]} if days else {})}
                          for e in r.employees]}


@dataclass(frozen=True, slots=True)
class AttendanceContext:
    """What the routes need, kept on ``app.state`` by ``mount_attendance``."""
    engine: Engine
    authorise: Callable[[Request, str], None]  # the bridge's token check
    known_tenant: Callable[[str], str]  # the tenant, or HTTPException 404
    rules: Rules | None = None  # overrides every tenant's own (employer_rules); normally None
    # the key that signs a tenant's phone chain heads (phone_punch.phone_head_key); None:
    # phone punches are chained unsigned
    phone_head_key: Callable[[str], Ed25519PrivateKey] | None = None
    # the group commit of phone punches on SQLite (group_writer.py); None on PostgreSQL
    punch_writer: GroupWriter | None = None
    # PostgreSQL: the month partitions the phone punches have made sure of; None on SQLite
    partition_keeper: PartitionKeeper | None = None


def mount_attendance(app: FastAPI, engine: Engine, authorise: Callable[[Request, str], None],
                     known_tenant: Callable[[str], str], rules: Rules | None = None,
                     phone_head_key: Callable[[str], Ed25519PrivateKey] | None = None
                     ) -> None:
    """Mount the routes; creates the attendance tables when they are missing."""
    create_attendance_schema(engine)
    setattr(app.state, _STATE_KEY, AttendanceContext(
        engine, authorise, known_tenant, rules, phone_head_key,
        GroupWriter(engine) if is_sqlite(engine) else None,
        None if is_sqlite(engine) else PartitionKeeper(engine)))
    app.include_router(router)
    app.include_router(phone_router)  # the phone punch (phone_routes.py)
    app.include_router(phone_self_router)  # the employee's own records


def attendance_context(request: Request) -> AttendanceContext:
    return cast(AttendanceContext, getattr(request.app.state, _STATE_KEY))


Ctx = Annotated[AttendanceContext, Depends(attendance_context)]


def authorised(request: Request, tenant: str) -> None:
    attendance_context(request).authorise(request, tenant)


def known_tenant(request: Request, tenant: TenantId) -> str:
    return attendance_context(request).known_tenant(tenant)


Tenant = Annotated[str, Depends(known_tenant)]


router = APIRouter(prefix="/api/v1/tenants/{tenant}/attendance",
                   dependencies=[Depends(authorised)], tags=["attendance"])


def read(ctx: AttendanceContext, work: Callable[[Connection], T]) -> T:
    with read_tx(ctx.engine) as conn:
        return work(conn)


def write(ctx: AttendanceContext, work: Callable[[Connection], T]) -> T:
    try:
        with write_tx(ctx.engine) as conn:
            return work(conn)
    except (NotFound, absence_ops.AbsenceNotFound) as exc:
        raise HTTPException(404, str(exc)) from None
    except (CorrectionError, absence_ops.AbsenceError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None


def report(ctx: AttendanceContext, tenant: str, month: str, employee: str | None = None
           ) -> MonthReport:
    try:
        year, mon = parse_month(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return read(ctx, lambda c: month_report(c, tenant, year, mon, ctx.rules, employee=employee))


# -- timesheets and reports ------------------------------------------------------


@router.get("/timesheets/{employee}")
def employee_timesheet(tenant: Tenant, ctx: Ctx, employee: EntityId, month: Month
                       ) -> dict[str, Any]:
    r = report(ctx, tenant, month, employee)
    e = r.employees[0]
    return {"tenant": tenant, "month": r.label, "employee": employee, "name": e.name,
            "totals": totals_json(e.sheet.totals),
            "days": [day_json(d) for d in e.sheet.days]}


@router.get("/timesheets/{employee}/html", response_class=HTMLResponse)
def employee_timesheet_html(tenant: Tenant, ctx: Ctx, employee: EntityId, month: Month) -> str:
    r = report(ctx, tenant, month, employee)
    return report_html(r, marks=read(ctx, lambda c: month_marks(c, r)))


@router.get("/report")
def company_report(tenant: Tenant, ctx: Ctx, month: Month,
                   fmt: Annotated[str, Query(alias="format",
                                             pattern="^(json|csv|csv-days|html)$")
                                  ] = "json") -> Any:
    r = report(ctx, tenant, month)
    if fmt == "csv":
        return PlainTextResponse(company_csv(r), media_type="text/csv; charset=utf-8")
    if fmt == "csv-days":
        return PlainTextResponse(employee_csv(r), media_type="text/csv; charset=utf-8")
    if fmt == "html":
        return HTMLResponse(report_html(r, marks=read(ctx, lambda c: month_marks(c, r))))
    return report_json(r, days=False)


@router.get("/alerts")
def alerts(tenant: Tenant, ctx: Ctx, month: Month) -> list[dict[str, Any]]:
    """Missing departures and other records to check, per employee and day."""
    r = report(ctx, tenant, month)
    return [{"employee": e.employee, "name": e.name, "date": day.isoformat(),
             "alert": text, "missing_departure": text.startswith("missing departure")}
            for e in r.employees for day, text in e.sheet.alerts]


@router.get("/rules")
def get_rules(tenant: Tenant, ctx: Ctx) -> dict[str, Any]:
    return rules_json(read(ctx, lambda c: ctx.rules or tenant_rules(c, tenant)))


@router.put("/rules")
def put_rules(tenant: Tenant, ctx: Ctx, body: RulesBody) -> dict[str, Any]:
    """The employer's overtime basis and hours (audited; the newest counts)."""
    write(ctx, lambda c: set_tenant_rules(c, tenant, body.overtime_basis, body.daily_hours,
                                     body.weekly_hours, body.author, body.uneven_schedule))
    return get_rules(tenant, ctx)


# -- absences ------------------------------------------------------------------------


def absence_in(body: AbsenceBody) -> absence_ops.AbsenceIn:
    return absence_ops.AbsenceIn(body.employee, AbsenceKind(body.kind), body.first_day,
                                 body.last_day, body.author, body.hours_per_day,
                                 body.note)


@router.get("/absences")
def get_absences(tenant: Tenant, ctx: Ctx,
                 employee: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                 include_withdrawn: bool = False) -> list[dict[str, Any]]:
    return read(ctx, lambda c: absence_ops.list_absences(
        c, tenant, employee, include_withdrawn=include_withdrawn))


@router.post("/absences", status_code=201)
def post_absence(tenant: Tenant, ctx: Ctx, body: AbsenceBody) -> dict[str, Any]:
    return {"id": write(ctx, lambda c: absence_ops.create_absence(c, tenant, absence_in(body)))}


@router.put("/absences/{absence_id}")
def put_absence(tenant: Tenant, ctx: Ctx, absence_id: RowIdPath, body: AbsenceReplaceBody
                ) -> dict[str, Any]:
    """Replace an absence: the old row is withdrawn (kept), a new one names it."""
    new_id = write(ctx, lambda c: absence_ops.replace_absence(
        c, tenant, absence_id, absence_in(body), body.reason))
    return {"id": new_id, "replaces": absence_id}


@router.delete("/absences/{absence_id}")
def delete_absence(tenant: Tenant, ctx: Ctx, absence_id: RowIdPath, body: WithdrawBody
                   ) -> dict[str, Any]:
    write(ctx, lambda c: absence_ops.withdraw_absence(c, tenant, absence_id, body.author,
                                                 body.reason))
    return {"withdrawn": absence_id}


# -- corrections ---------------------------------------------------------------------


@router.get("/corrections")
def get_corrections(tenant: Tenant, ctx: Ctx,
                    employee: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
                    ) -> list[dict[str, Any]]:
    return read(ctx, lambda c: list_corrections(c, tenant, employee))


@router.post("/corrections", status_code=201)
def post_correction(tenant: Tenant, ctx: Ctx, body: CorrectionBody) -> dict[str, Any]:
    c_in = CorrectionIn(body.action, body.author, body.reason, body.employee,
                        body.ref_device, body.ref_seq, body.ref_correction, body.at,
                        body.punch_type)
    return {"id": write(ctx, lambda c: create_correction(c, tenant, c_in))}


@router.get("/audit")
def get_audit(tenant: Tenant, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=5000)] = 500
              ) -> list[dict[str, Any]]:
    return read(ctx, lambda c: audit_trail.trail(c, tenant, limit))


# -- chain verification ------------------------------------------------------------


def _chain_key(ctx: AttendanceContext, tenant: str, device: str) -> Ed25519PublicKey | None:
    """A phone chain's heads are checked with the bridge's own key (from its key files,
    not from the database a forger could rewrite); a terminal's with its registered key."""
    if device.startswith("phone.") and ctx.phone_head_key is not None:
        return ctx.phone_head_key(tenant).public_key()
    return None


@router.get("/chain")
def verify_all(tenant: Tenant, ctx: Ctx) -> list[dict[str, Any]]:
    return read(ctx, lambda c: [audit_chain(c, tenant, d, _chain_key(ctx, tenant, d)).as_dict()
                           for d in chain_devices(c, tenant)])


@router.get("/chain/{device}")
def verify_device(tenant: Tenant, ctx: Ctx, device: EntityId) -> dict[str, Any]:
    return read(ctx, lambda c: audit_chain(c, tenant, device,
                                           _chain_key(ctx, tenant, device)).as_dict())


@router.put("/devices/{device}/key")
def put_device_key(tenant: Tenant, ctx: Ctx, device: EntityId, body: DeviceKeyBody
                   ) -> dict[str, Any]:
    write(ctx, lambda c: set_device_key(c, tenant, device, body.public_key, body.author))
    return {"device": device, "registered_at": datetime.now(UTC).isoformat()}

