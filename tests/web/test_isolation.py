"""Every route of the served app (enumerated from app.routes, so a route added later
without a guard fails here): no access for anonymous callers or another tenant's staff,
each role gets exactly its permissions, every POST needs the CSRF token; login CSRF and
throttling."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from cloud_bridge.db_schema import change_log, members
from cloud_bridge.web.auth_schema import audit_log
from cloud_bridge.web.guards import PERMISSION_KEY
from cloud_bridge.web.roles import Role, allowed
from tests.web.conftest import PASSWORD, WebSite, login_token
from tests.web.seed import Seeded, seed

# routes anyone may call: the login itself, health checks, the API's own docs
PUBLIC = {("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
          ("GET", "/lang/{code}"),  # the language switch: sets a cookie, nothing else
          # the page scripts' translations (the same for everybody)
          ("GET", "/i18n/{lang}.json"),
          ("GET", "/healthz"), ("GET", "/api/v1/health"), ("GET", "/openapi.json"),
          ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
          # the member's phone QR page: authenticated by the secret link token instead
          # (tests/web/test_member_phone_link.py)
          ("GET", "/member-qr/{tenant}/{member_id}"),
          # a voucher buyer's PDF: the secret link token instead (tests/tickets)
          ("GET", "/ticket-pdf/{tenant}/{ticket_id}/{token}"),
          ("POST", "/member-qr/{tenant}/{member_id}/token"),
          # the member signs the waiver with the same link token (tests/web/test_waivers.py)
          ("POST", "/member-qr/{tenant}/{member_id}/waiver"),
          # ... and enrols the phone as a key (tests/web/test_phone_key_page.py)
          ("POST", "/member-qr/{tenant}/{member_id}/phone-key"),
          # the member's notice page: its own secret link token (notice_optout_page.py,
          # tests/web/test_member_notices.py)
          ("GET", "/member-notices/{tenant}/{member_id}"),
          ("GET", "/member-notices/{tenant}/{member_id}/state"),
          ("PUT", "/member-notices/{tenant}/{member_id}/state"),
          ("POST", "/member-notices/{tenant}/{member_id}/one-click"),  # RFC 8058
          # the employee's phone punch: the enrolment link's token and PIN make a phone
          # session, the punch takes that session (tests/attendance/test_phone_punch.py,
          # tests/web/test_journeys_edc_phone.py)
          ("GET", "/phone/{tenant}"), ("GET", "/phone/{tenant}/sw.js"),
          ("GET", "/phone-app/phone.js"), ("POST", "/api/v1/phone/{tenant}/session"),
          # the geofence drawing pad's script (static, used by the admin page)
          ("GET", "/phone-app/fence_pad.js"),
          ("POST", "/api/v1/phone/punch"),
          # the employee's own records: the phone session's cookie (same tests)
          ("GET", "/phone/{tenant}/me"), ("POST", "/phone/{tenant}/me/absence-requests"),
          # a device redeems its one-time enrolment code: the code is the credential
          # (tests/device/test_enrolment.py, tests/device/test_enrolment_served.py)
          ("POST", "/api/enrolment/redeem"),
          # Prometheus scrape: behind the operator's API token, not a session
          # (tests/device/test_bridge_metrics.py)
          ("GET", "/metrics")}
WEB_PREFIX = "/t/{tenant}"
# the E-SV driving school takes its tenant from the session, not the URL; its own tests
# (tests/driving_school/test_lesson_sync.py, test_office_pages.py) check tenants, roles
# and CSRF; here: nothing of it answers without a session but the sign-in and the app shell
SCHOOL_PREFIX = "/driving-school"
SCHOOL_PUBLIC = {("GET", "/driving-school/login"), ("POST", "/driving-school/login"),
                 ("POST", "/driving-school/logout"), ("GET", "/driving-school/app/"),
                 ("GET", "/driving-school/app/sw.js"), ("GET", "/driving-school/app/{name}"),
                 ("POST", "/driving-school/app/api/login"),
                 ("POST", "/driving-school/app/api/logout"),
                 # the tablet's text catalog (public texts, cached for offline use)
                 ("GET", "/driving-school/app/i18n/{lang}.json"),
                 # applications from the school's web site (a tenant with saved school
                 # data only; tests/driving_school/test_applications.py)
                 ("POST", "/driving-school/api/{tenant}/applications"),
                 # and the same as a form (tests/driving_school/test_apply_form.py)
                 ("GET", "/driving-school/apply/{tenant}"),
                 ("POST", "/driving-school/apply/{tenant}")}
API_PREFIX = "/api/v1/tenants/{tenant}"


def routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, route) of every endpoint, including those of included routers
    (FastAPI >= 0.16x keeps them behind lazy _IncludedRouter entries)."""
    try:
        from fastapi.routing import iter_route_contexts
        found = [(c.path, c.methods, c.original_route) for c in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI: app.routes is already flat
        found = [(r.path, getattr(r, "methods", None), r) for r in app.routes]
    out = []
    for path, methods, route in found:
        if methods is None:
            assert path == "/static", f"unexpected mount {path}"
            continue
        out += [(m, path, route) for m in sorted(set(methods) - {"HEAD"})]
    return out


def fill(path: str, tenant: str, s: Seeded) -> str:
    values = {"tenant": tenant, "member_id": s.member_id, "ent_id": s.ent_id,
              "cred_id": s.cred_id, "plan_id": s.plan_id, "device": s.device,
              "seq": str(s.receipt_seq), "user_id": str(s.user_id), "request_id": "x",
              "invoice_id": "P1-BLAG1-1", "product_id": s.product_id,
              "ticket_id": s.ticket_id}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def counts(site: WebSite, tenant: str) -> tuple[int, int, int]:
    with site.engine.connect() as conn:
        # downloading the export (an allowed GET) is audited too; changes are what count
        return (conn.execute(select(func.count()).select_from(audit_log)
                             .where(audit_log.c.tenant == tenant,
                                    audit_log.c.action != "tenant.export")).scalar_one(),
                conn.execute(select(func.count()).select_from(change_log)
                             .where(change_log.c.tenant == tenant)).scalar_one(),
                conn.execute(select(func.count()).select_from(members)
                             .where(members.c.tenant == tenant)).scalar_one())


def test_every_route_is_guarded_by_session_tenant_role_and_csrf(
        site: WebSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cloud_bridge.web.live.STREAM_MAX_S", 0.2)  # the SSE route ends
    a, b = site.tenants
    admin_a, csrf_a = site.login(site.user(a, "administrator"))
    seeded = seed(admin_a, csrf_a, site.engine, a)
    admin_b, csrf_b = site.login(site.user(b, "administrator"))
    by_role = {role: site.login(site.user(a, role.value)) for role in Role}
    anonymous = site.client()
    before = counts(site, a)
    checked = school_checked = 0
    for method, path, route in routes(site.app):
        if (method, path) in PUBLIC:
            continue
        url = fill(path, a, seeded)
        if path.startswith(SCHOOL_PREFIX):
            if (method, path) not in SCHOOL_PUBLIC:
                # its ids are integers
                r = anonymous.request(method, re.sub(r"\{\w+_id\}", "1", path),
                                      follow_redirects=False)
                assert r.status_code in (303, 401, 403), (method, path, r.status_code)
            school_checked += 1
            continue
        if path.startswith(API_PREFIX) or path == "/api/enrolment/codes":
            # the JSON API takes its bearer token, never a staff session
            for client in (anonymous, admin_a, admin_b):
                r = client.request(method, url, headers={"x-csrf-token": csrf_a})
                assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
            continue
        assert path.startswith(WEB_PREFIX), f"{method} {path}: not under /t/{{tenant}}"
        permission = (getattr(route, "openapi_extra", None) or {}).get(PERMISSION_KEY)
        assert permission, f"{method} {path} declares no permission (use guards.route_meta)"

        r = anonymous.request(method, url, follow_redirects=False)
        assert r.status_code == 401, (method, path, r.status_code)
        page = anonymous.request(method, url, headers={"accept": "text/html"},
                                 follow_redirects=False)
        assert page.status_code in (303, 401), (method, path)

        # another tenant's administrator, with a valid token of their own session
        r = admin_b.request(method, url, headers={"x-csrf-token": csrf_b},
                            follow_redirects=False)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
        # and the same path on their own tenant is theirs (not a blanket 404)
        own = admin_b.request("GET", fill(path, b, seeded), follow_redirects=False)
        if method == "GET":
            assert own.status_code != 403, (path, own.status_code)

        for role, (client, csrf) in by_role.items():
            may = allowed(role.value, permission)
            if method == "GET":
                r = client.get(url, follow_redirects=False)
                if may:
                    assert r.status_code == 200, (role, path, r.status_code, r.text[:300])
                else:
                    assert r.status_code == 403, (role, path, r.status_code)
            else:
                # without the token: an allowed role meets the CSRF check, others the role
                r = client.request(method, url, follow_redirects=False,
                                   headers={"accept": "application/json"})
                assert r.status_code == 403, (role, method, path, r.status_code)
                expected = "CSRF" if may else "role"
                assert expected in r.json()["detail"], (role, path, r.json())
                if not may:
                    r = client.request(method, url, headers={"x-csrf-token": csrf},
                                       follow_redirects=False)
                    assert r.status_code == 403, (role, method, path)
        checked += 1
    assert checked >= 25  # the enumeration really found the modules' routes
    assert school_checked >= 20  # the driving school is served by the same app
    assert counts(site, a) == before, "a refused request changed tenant A"


def test_the_served_app_is_the_bridge_app_with_web_routes(site: WebSite) -> None:
    paths = {p for _, p, _ in routes(site.app)}
    for wanted in ("/t/{tenant}/fleet", "/t/{tenant}/members", "/t/{tenant}/live/stream",
                   "/t/{tenant}/receipts", "/t/{tenant}/users", "/t/{tenant}/data/export.zip",
                   "/api/v1/tenants/{tenant}/members", "/login"):
        assert wanted in paths


def test_login_csrf_and_throttling(site: WebSite) -> None:
    a, _ = site.tenants
    name = site.user(a, "reception")
    c = site.client()
    r = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": "x"})
    assert r.status_code == 403  # the form's token must match its cookie
    for _ in range(site.auth.max_user_failures):
        r = c.post("/login", data={"username": name, "password": "wrong password!",
                                   "csrf_token": login_token(c)})
        assert r.status_code == 401 and "Napačno uporabniško ime ali geslo" in r.text
    r = c.post("/login", data={"username": name, "password": PASSWORD,
                               "csrf_token": login_token(c)}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Preveč neuspešnih prijav" in r.text
    assert "es_session" not in c.cookies


def test_logout_needs_the_token_and_ends_the_session(site: WebSite) -> None:
    a, _ = site.tenants
    client, csrf = site.login(site.user(a, "accountant"))
    assert client.post("/logout").status_code == 403
    assert client.get(f"/t/{a}/receipts").status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/t/{a}/receipts", follow_redirects=False).status_code == 401


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_disabling_a_user_ends_their_sessions(site: WebSite) -> None:
    a, _ = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    victim_name = site.user(a, "reception")
    victim, _ = site.login(victim_name)
    page = admin.get(f"/t/{a}/users").text
    ids = re.findall(rf"/t/{a}/users/(\d+)/active", page)  # everybody but the admin
    assert ids
    for user_id in ids:
        admin.post(f"/t/{a}/users/{user_id}/active", data={"csrf_token": csrf,
                                                          "active": "no"})
    assert victim.get(f"/t/{a}/members", follow_redirects=False).status_code == 401
