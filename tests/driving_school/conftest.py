"""Fixtures for the driving-school tests: a fresh database (a SQLite file per test, one
PostgreSQL database per session), a school with staff, candidates and vehicles in a
tenant of its own, and an app with only this module's router."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from cloud_bridge.db_schema import make_engine, write_tx
from cloud_bridge.driving_school import driving_school_router
from cloud_bridge.driving_school.schema import candidates, courses, instructors, vehicles
from cloud_bridge.notifications import Notifier
from cloud_bridge.web import language
from cloud_bridge.web.auth import COOKIE, WebAuth
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.error_pages import install_error_pages
from cloud_bridge.web.language import LanguageMiddleware
from tests.bridge.conftest import db_url, pg_url  # noqa: F401 - fixtures

SCHOOL = "Šola vožnje Čuk d.o.o."
PASSWORDS = {"admin": "admin password 1", "ucitelj": "instructor password 1",
             "ucitelj2": "instructor password 2", "recepcija": "reception password 1"}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)  # the bridge schema: the record-card command uses `commands`
    web_metadata.create_all(eng)
    yield eng
    eng.dispose()


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))


@dataclass
class School:
    engine: Engine
    auth: WebAuth
    tenant: str
    users: dict[str, str]  # role key -> username
    instructor_id: int
    other_instructor_id: int
    candidate_ids: list[int]
    vehicle_ids: list[int]
    publisher: FakePublisher = field(default_factory=FakePublisher)
    notifier: Notifier | None = None

    def app(self) -> FastAPI:
        return school_app(driving_school_router(self.engine, self.auth,
                                                publisher=self.publisher,
                                                school_name=SCHOOL,
                                                notifier=self.notifier))

    def client(self, who: str | None = None) -> tuple[TestClient, str]:
        """A test client signed in as ``who`` and its CSRF token."""
        client = TestClient(self.app())
        if who is None:
            return client, ""
        cookie, staff = self.auth.login(self.users[who], PASSWORDS[who], "testclient")
        client.cookies.set(COOKIE, cookie)
        return client, staff.csrf


def school_app(router: APIRouter) -> FastAPI:
    """An app as the bridge mounts the module: the language switch (``lang`` cookie,
    /lang/{code}) and HTML error pages for human routes, as ``mount_web`` installs them."""
    app = FastAPI()
    app.add_middleware(LanguageMiddleware)
    install_error_pages(app)
    app.include_router(language.router)
    app.include_router(router)
    return app


def make_school(engine: Engine, *, throttle: int = 50) -> School:
    auth = WebAuth(engine, secure_cookies=False, max_user_failures=throttle,
                   max_client_failures=throttle * 4)
    tenant = f"as{uuid.uuid4().hex[:8]}"
    users = {k: f"{k}@{tenant}.si" for k in PASSWORDS}
    ids = {k: auth.create_user(tenant, users[k], PASSWORDS[k], role) for k, role in (
        ("admin", "administrator"), ("ucitelj", "instructor"), ("ucitelj2", "instructor"),
        ("recepcija", "reception"))}
    with write_tx(engine) as conn:
        teacher = conn.execute(insert(instructors).values(
            tenant=tenant, user_id=ids["ucitelj"], name="Tomaž Žagar", licence_no="UV-1234",
            categories="B", active=True)).inserted_primary_key[0]  # type: ignore[index]
        teacher2 = conn.execute(insert(instructors).values(
            tenant=tenant, user_id=ids["ucitelj2"], name="Mojca Čebulj", licence_no="UV-5678",
            categories="B", active=True)).inserted_primary_key[0]  # type: ignore[index]
        people = []
        for reg, first, last, born in (("2026/001", "Živa", "Šuštar", "2008-04-02"),
                                       ("2026/002", "Čedomir", "Kovačič", "2007-11-30")):
            people.append(conn.execute(insert(candidates).values(
                tenant=tenant, register_no=reg, first_name=first, last_name=last,
                birth_date=born, birth_place="Škofja Loka", emso="0204008505123",
                address="Cankarjeva ulica 5, 4220 Škofja Loka", phone="041 123 456",
                instructor_id=teacher, active=True, created_ms=int(time.time() * 1000))
            ).inserted_primary_key[0])  # type: ignore[index]
        conn.execute(insert(courses).values(
            tenant=tenant, candidate_id=people[0], category="B", started_on="2026-10-01",
            theory_done_on="2026-10-08", theory_exam_on="2026-10-20",
            first_aid_on="2026-09-15", medical_valid_until="2029-09-01",
            required_lessons=20, finished_on=""))
        cars = [conn.execute(insert(vehicles).values(
            tenant=tenant, registration=reg, make_model=model, category="B", active=True)
        ).inserted_primary_key[0] for reg, model in (  # type: ignore[index]
            ("KR ŠV-101", "Škoda Fabia"), ("KR ŽČ-202", "VW Polo"))]
    return School(engine, auth, tenant, users, int(teacher), int(teacher2),
                  [int(p) for p in people], [int(c) for c in cars])


@pytest.fixture
def school(engine: Engine) -> School:
    from cloud_bridge.driving_school.schema import create_driving_school_schema

    create_driving_school_schema(engine)
    return make_school(engine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(school: School) -> Iterator[str]:
    """The app on a real port (Chromium needs one); http://127.0.0.1 is a secure context,
    so service workers and crypto.randomUUID work."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(school.app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
