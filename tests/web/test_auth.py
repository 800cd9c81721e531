"""Staff auth: Argon2 passwords, DB sessions, CSRF, throttling, roles, tenant scoping."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cloud_bridge.web.auth import COOKIE, LoginRefused, WebAuth
from cloud_bridge.web.auth_schema import users, web_metadata


@pytest.fixture
def auth(tmp_path: Path) -> WebAuth:
    engine = create_engine(f"sqlite:///{tmp_path / 'web.db'}")
    web_metadata.create_all(engine)
    a = WebAuth(engine, secure_cookies=False, max_user_failures=3, max_client_failures=6)
    a.create_user("gym-a", "ana@gym-a.si", "correct horse battery", "administrator")
    a.create_user("gym-a", "recepcija@gym-a.si", "reception password", "reception")
    a.create_user("gym-b", "boss@gym-b.si", "another long one", "administrator")
    return a


def test_password_is_hashed_with_argon2(auth: WebAuth) -> None:
    with auth.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") for h in stored)
    assert not any("correct horse" in h for h in stored)
    with pytest.raises(ValueError, match="at least 10"):
        auth.create_user("gym-a", "x@y.si", "short", "reception")
    with pytest.raises(ValueError):
        auth.create_user("gym-a", "x@y.si", "long enough pw", "superuser")


def test_login_session_logout(auth: WebAuth) -> None:
    cookie, staff = auth.login(" Ana@Gym-A.si ", "correct horse battery", "10.0.0.1")
    assert staff.tenant == "gym-a" and staff.role == "administrator"
    assert auth.session(cookie) == staff
    auth.logout(cookie)
    assert auth.session(cookie) is None
    assert auth.session("forged") is None and auth.session("x" * 1000) is None


def test_throttling_per_account_and_per_client(auth: WebAuth) -> None:
    for _ in range(3):
        with pytest.raises(LoginRefused, match="wrong username or password"):
            auth.login("ana@gym-a.si", "guess", "10.0.0.1")
    with pytest.raises(LoginRefused, match="too many") as refused:
        auth.login("ana@gym-a.si", "correct horse battery", "10.0.0.2")  # even the right one
    assert refused.value.retry_after_s > 0
    # one client sweeping many accounts is stopped too
    for i in range(6):
        with pytest.raises(LoginRefused):
            auth.login(f"nobody{i}@x.si", "guess", "10.9.9.9")
    with pytest.raises(LoginRefused, match="too many"):
        auth.login("recepcija@gym-a.si", "reception password", "10.9.9.9")
    # other accounts from other clients are unaffected
    auth.login("recepcija@gym-a.si", "reception password", "10.0.0.3")


def test_the_window_slides(tmp_path: Path) -> None:
    now = [1_000_000_000]
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    web_metadata.create_all(engine)
    a = WebAuth(engine, max_user_failures=2, window_minutes=15, clock_ms=lambda: now[0])
    a.create_user("t", "u@t.si", "long password 1", "reception")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            a.login("u@t.si", "nope", "c")
    with pytest.raises(LoginRefused, match="too many"):
        a.login("u@t.si", "long password 1", "c")
    now[0] += 15 * 60_000 + 1
    a.login("u@t.si", "long password 1", "c")


def app_for(auth: WebAuth) -> TestClient:
    app = FastAPI()

    async def members_view(request: Request, tenant: str):  # type: ignore[no-untyped-def]
        return await auth.guard(request, "members.view", tenant)

    async def members_erase(request: Request, tenant: str):  # type: ignore[no-untyped-def]
        return await auth.guard(request, "members.erase", tenant)

    @app.get("/t/{tenant}/members")
    def view(staff=Depends(members_view)) -> dict:  # type: ignore[no-untyped-def]
        return {"user": staff.username}

    @app.post("/t/{tenant}/members/erase")
    def erase(staff=Depends(members_erase)) -> dict:  # type: ignore[no-untyped-def]
        return {"erased": True}

    return TestClient(app)


def test_guard_roles_tenants_and_csrf(auth: WebAuth) -> None:
    client = app_for(auth)
    assert client.get("/t/gym-a/members").status_code == 401
    page = client.get("/t/gym-a/members", headers={"accept": "text/html"},
                      follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    cookie, staff = auth.login("recepcija@gym-a.si", "reception password", "c")
    client.cookies.set(COOKIE, cookie)
    assert client.get("/t/gym-a/members").json() == {"user": "recepcija@gym-a.si"}
    assert client.get("/t/gym-b/members").status_code == 404  # other tenant: not even 403
    assert client.post("/t/gym-a/members/erase",
                       headers={"x-csrf-token": staff.csrf}).status_code == 403  # role
    cookie, admin = auth.login("ana@gym-a.si", "correct horse battery", "c")
    client.cookies.set(COOKIE, cookie)
    no_csrf = client.post("/t/gym-a/members/erase")
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    assert client.post("/t/gym-a/members/erase",
                       headers={"x-csrf-token": "0" * 64}).status_code == 403
    assert client.post("/t/gym-a/members/erase", headers={"x-csrf-token": admin.csrf}).json() \
        == {"erased": True}
    form = client.post("/t/gym-a/members/erase", data={"csrf_token": admin.csrf})
    assert form.status_code == 200


def test_concurrent_logins_on_one_sqlite_file(tmp_path: Path) -> None:
    """Found by the web benchmark's wrk login: logins that read the throttle counts in a
    deferred transaction and then write failed with "database is locked" when another
    login committed in between."""
    from concurrent.futures import ThreadPoolExecutor

    from cloud_bridge.db_schema import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    web_metadata.create_all(engine)
    auth = WebAuth(engine, secure_cookies=False)
    auth.create_user("gym-a", "ana@gym-a.si", "correct horse battery", "reception")
    with ThreadPoolExecutor(8) as pool:
        logins = list(pool.map(lambda i: auth.login("ana@gym-a.si", "correct horse battery",
                                                    f"10.0.0.{i}"), range(16)))
    assert len({cookie for cookie, _ in logins}) == 16
    assert all(auth.session(cookie) is not None for cookie, _ in logins)
    engine.dispose()
