"""The public application form: ``GET/POST /driving-school/apply/{tenant}``, the HTML
twin of the JSON API in ``public_applications`` for candidates without a school web site
that posts JSON. The same model (``applications.ApplicationIn``) validates it and the same
``applications.submit`` stores it, so a form application is indistinguishable from an
API one: the same consent version, the same office list, the same e-mail and SMS when
the office accepts it (nothing is sent on applying, as with the API).

Only a school that has saved its data takes applications (404 otherwise, as the API).
No sign-in, so no session CSRF token: the form carries a random token that must match a
``SameSite=Strict`` cookie set with the page (double submit, as the office's sign-in), so
another site cannot post it in the visitor's name; the cookie is dropped after a
successful application, so reloading the confirmation does not apply twice. The pages
load nothing from anywhere (no script at all) and send a strict Content-Security-Policy.
New applications are limited per sender and per school as the API's (``apply_limits``):
over a limit, 429 with the reason above the form and everything typed kept."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from cloud_bridge.driving_school import applications
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.apply_limits import TooManyApplications
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import CATEGORIES, LIMITS
from cloud_bridge.driving_school.office_pages import form_of, templates
from cloud_bridge.driving_school.public_applications import TenantPath, client_address
from cloud_bridge.driving_school.school_profile import load_profile
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import gettext as _
from contracts.i18n import ngettext

APPLY_CSRF_COOKIE = "es_ds_apply_csrf"
FIELDS = tuple(name for name in applications.ApplicationIn.model_fields if name != "consent")

router = APIRouter(prefix=BASE, include_in_schema=False)


def _security_headers(nonce: str) -> dict[str, str]:
    # as the member's QR page (member_qr.py): nothing third-party, no script at all
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp}


def _school(settings: SchoolSettings, tenant: str) -> dict[str, Any]:
    profile = load_profile(settings.engine, tenant)
    if not profile["saved"]:
        raise HTTPException(404, _("This driving school does not take applications here."))
    return profile


def _render(request: Request, tenant: str, school: dict[str, Any], *, values: dict[str, Any],
            errors: FieldErrors, token: str, sent: bool = False, status: int = 200,
            secure: bool = False, headers: dict[str, str] | None = None) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    response = templates.TemplateResponse(request, "apply.html", {
        "school": school, "tenant": tenant, "values": values, "errors": errors,
        "limits": LIMITS, "categories": CATEGORIES, "token": token, "sent": sent,
        "consent_text": _(applications.CONSENT_TEXT), "nonce": nonce,
        "staff": None, "base": BASE}, status_code=status,
        headers={**_security_headers(nonce), **(headers or {})})
    path = f"{BASE}/apply/{tenant}"
    if sent:
        response.delete_cookie(APPLY_CSRF_COOKIE, path=path)
    else:
        response.set_cookie(APPLY_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure, path=path)
    return response


@router.get("/apply/{tenant}")
def apply_form(request: Request, tenant: TenantPath, school: School) -> HTMLResponse:
    profile = _school(school, tenant)
    return _render(request, tenant, profile, values={}, errors={},
                   token=secrets.token_urlsafe(24), secure=school.auth.secure_cookies)


@router.post("/apply/{tenant}")
async def apply_post(request: Request, tenant: TenantPath, school: School) -> HTMLResponse:
    profile = _school(school, tenant)
    form = await form_of(request)
    values = {name: form.get(name, "") for name in FIELDS}
    values["consent"] = form.get("consent") in ("1", "on")
    token = request.cookies.get(APPLY_CSRF_COOKIE, "")
    sent = form.get("form_token", "")
    if not token or not sent or not hmac.compare_digest(sent, token):
        return _render(request, tenant, profile, values=values, status=403,
                       errors={"__all__": _("The form expired; please send it again.")},
                       token=secrets.token_urlsafe(24), secure=school.auth.secure_cookies)
    app, errors = validate_form(applications.ApplicationIn, values)
    if app is None:
        return _render(request, tenant, profile, values=values, errors=errors, token=token,
                       status=422, secure=school.auth.secure_cookies)
    try:
        applications.submit(school.engine, tenant, app, school.apply_limits,
                            client_address(request))
    except TooManyApplications as exc:
        # the same token stays valid: the visitor sends the kept values again later
        return _render(request, tenant, profile, values=values, errors={"__all__": ngettext(
            "Too many applications from this network or to this school. "
            "Please try again in %(n)d minute.",
            "Too many applications from this network or to this school. "
            "Please try again in %(n)d minutes.", exc.minutes) % {"n": exc.minutes}},
            token=token, status=429, secure=school.auth.secure_cookies,
            headers={"Retry-After": str(exc.retry_after_s)})
    return _render(request, tenant, profile, values={"email": app.email, "phone": app.phone,
                                                     "category": app.category},
                   errors={}, token="", sent=True, secure=school.auth.secure_cookies)
