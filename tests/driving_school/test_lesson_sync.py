"""The sync endpoint: idempotent upsert by client UUIDs, the conflict rule, validation,
sessions, CSRF, roles and tenant scoping (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from cloud_bridge.driving_school.schema import lesson_edits, lessons
from tests.driving_school.conftest import School, make_school
from tests.driving_school.lesson_payloads import edit, lesson, signature_png

SYNC = "/driving-school/app/api/sync"


def post(client, csrf: str, device: str, *edits):  # type: ignore[no-untyped-def]
    r = client.post(SYNC, json={"device": device, "edits": list(edits)},
                    headers={"x-csrf-token": csrf})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def counts(school: School) -> tuple[int, int]:
    with school.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(lessons).where(
                    lessons.c.tenant == school.tenant)).scalar_one(),
                conn.execute(select(func.count()).select_from(lesson_edits).where(
                    lesson_edits.c.tenant == school.tenant)).scalar_one())


def test_a_resent_edit_is_stored_once(school: School) -> None:
    client, csrf = school.client("ucitelj")
    first = edit(lesson(school.candidate_ids[0], school.vehicle_ids[0]))
    [r1] = post(client, csrf, "tablet-a", first)
    assert r1["outcome"] == "applied" and not r1["duplicate"]
    assert r1["lesson"]["version"] == 1 and r1["lesson"]["day"] == "2026-12-02"
    # the tablet was closed before the answer arrived: it sends the very same edit again
    [r2] = post(client, csrf, "tablet-a", first)
    assert r2["outcome"] == "applied" and r2["duplicate"] and r2["lesson"]["version"] == 1
    assert counts(school) == (1, 1)
    # a batch with two new lessons and the old one again
    more = [edit(lesson(school.candidate_ids[1], school.vehicle_ids[1])) for _ in range(2)]
    results = post(client, csrf, "tablet-a", first, *more)
    assert [r["duplicate"] for r in results] == [True, False, False]
    assert counts(school) == (3, 3)


def test_one_tablet_never_conflicts_with_itself(school: School) -> None:
    client, csrf = school.client("ucitelj")
    body = lesson(school.candidate_ids[0], school.vehicle_ids[0])
    # two corrections queued offline on one tablet, both based on what it last saw (v0)
    results = post(client, csrf, "tablet-a", edit(body), edit(body, remarks="popravek 1"),
                   edit(body, 1, remarks="popravek 2", km_end=10_050))
    assert [r["outcome"] for r in results] == ["applied"] * 3
    assert results[-1]["lesson"]["version"] == 3
    assert results[-1]["lesson"]["remarks"] == "popravek 2"
    assert results[-1]["lesson"]["km_end"] == 10_050


def test_first_edit_to_arrive_wins_and_the_other_is_kept_as_a_note(school: School) -> None:
    client, csrf = school.client("ucitelj")
    body = lesson(school.candidate_ids[0], school.vehicle_ids[0])
    post(client, csrf, "tablet-a", edit(body))
    # both tablets saw version 1, then corrected the lesson offline
    a = edit(body, 1, remarks="Tablica A: parkiranje", km_end=10_045)
    b = edit(body, 1, remarks="Tablica B: vzvratna vožnja", signature=signature_png(9))
    [ra] = post(client, csrf, "tablet-a", a)
    [rb] = post(client, csrf, "tablet-b", b)
    assert ra["outcome"] == "applied" and ra["lesson"]["version"] == 2
    assert rb["outcome"] == "conflict"
    assert rb["lesson"]["remarks"] == "Tablica A: parkiranje" and rb["lesson"]["version"] == 2
    [note] = rb["conflicts"]
    assert note["device"] == "tablet-b" and note["edit_id"] == b["edit_id"]
    assert note["data"]["remarks"] == "Tablica B: vzvratna vožnja"
    assert note["data"]["signature_differs"] is True
    # resending the losing edit does not add a second note
    [again] = post(client, csrf, "tablet-b", b)
    assert again["outcome"] == "conflict" and again["duplicate"] and len(again["conflicts"]) == 1
    # tablet B, now on version 2, may correct it again
    [rc] = post(client, csrf, "tablet-b", edit(body, 2, remarks="Skupaj: oboje"))
    assert rc["outcome"] == "applied" and rc["lesson"]["version"] == 3
    # the office sees the note in the candidate's log
    office, _ = school.client("admin")
    page = office.get(f"/driving-school/candidates/{school.candidate_ids[0]}")
    assert page.status_code == 200
    assert "Tablica B: vzvratna vožnja" in page.text and "conflict-note" in page.text


def test_bad_edits_are_rejected_one_by_one(school: School) -> None:
    client, csrf = school.client("ucitelj")
    c, v = school.candidate_ids[0], school.vehicle_ids[0]
    good = edit(lesson(c, v))
    results = post(client, csrf, "tablet-a",
                   edit(lesson(c, v, signature="data:image/png;base64,AAAA")),
                   edit(lesson(c, v, km_end=9_000)),
                   edit(lesson(c, v, lesson_type="drift")),
                   edit(lesson(c, 999_999)),
                   edit(lesson(c, v, ended_at="2026-12-02T06:00:00.000Z")),
                   edit(lesson(c, v, started_at="2026-12-02T07:00:00")),
                   good)
    assert [r["outcome"] for r in results] == ["rejected"] * 6 + ["applied"]
    # a stable code for the tablet and the reason in Slovenian (the default language)
    assert [r["code"] for r in results[:6]] == [
        "signature", "km_order", "lesson_type", "unknown_candidate_or_vehicle", "time_order",
        "invalid"]
    assert results[1]["error"] == "Km ob koncu so manjši od km ob začetku."
    assert results[1]["field"] == "km_end"
    [nine] = post(client, csrf, "tablet-a", edit(lesson(c, v, lesson_count=9)))
    assert (nine["outcome"], nine["code"], nine["field"]) == (
        "rejected", "too_many_hours", "lesson_count")
    assert nine["error"].startswith("Ena vožnja ima največ 4 učne ure")
    client.cookies.set("lang", "en")  # the reason follows the instructor's language
    [nine] = post(client, csrf, "tablet-a", edit(lesson(c, v, lesson_count=9)))
    assert nine["error"].startswith("A lesson has at most 4 lesson hours")
    client.cookies.delete("lang")
    assert counts(school) == (1, 1)
    # another instructor may not change this instructor's lesson
    other, csrf2 = school.client("ucitelj2")
    [r] = post(other, csrf2, "tablet-x", edit(good["lesson"], 1, remarks="tuje"))
    assert r["outcome"] == "rejected" and r["code"] == "other_instructor"
    assert r["error"] == "Ta ura pripada drugemu učitelju."


def test_sessions_csrf_roles_and_tenants(school: School) -> None:
    anonymous, _ = school.client()
    body = {"device": "tablet-a", "edits": []}
    assert anonymous.post(SYNC, json=body).status_code == 401
    assert anonymous.get("/driving-school/app/api/bootstrap").status_code == 401
    client, csrf = school.client("ucitelj")
    no_csrf = client.post(SYNC, json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    reception, rcsrf = school.client("recepcija")
    assert reception.post(SYNC, json=body, headers={"x-csrf-token": rcsrf}).status_code == 403
    admin, acsrf = school.client("admin")  # may record, but is no instructor
    assert admin.post(SYNC, json=body, headers={"x-csrf-token": acsrf}).status_code == 403
    # another school's candidate and vehicle are unknown here
    other = make_school(school.engine)
    [r] = post(client, csrf, "tablet-a",
               edit(lesson(other.candidate_ids[0], other.vehicle_ids[0])))
    assert r["outcome"] == "rejected"
    boot = client.get("/driving-school/app/api/bootstrap").json()
    assert {c["id"] for c in boot["candidates"]} == set(school.candidate_ids)
    assert {v["id"] for v in boot["vehicles"]} == set(school.vehicle_ids)
    # another school's staff do not see this school's candidate page
    foreign, _ = other.client("admin")
    assert foreign.get(f"/driving-school/candidates/{school.candidate_ids[0]}").status_code \
        == 404


def test_concurrent_resends_store_one_lesson_and_one_edit(school: School) -> None:
    """Several bridge workers receiving the same edit at once (a tablet retrying while the
    first request is still running): one lesson, one edit, every answer 'applied'."""
    import threading

    from cloud_bridge.db_schema import write_tx
    from cloud_bridge.driving_school.lesson_sync import Editor, apply_edit

    editor = Editor(school.tenant, school.instructor_id, "ucitelj", "tablet-a")
    body = lesson(school.candidate_ids[0], school.vehicle_ids[0])
    first, correction = edit(body), edit(body, 1, remarks="popravek")
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def send(raw: dict) -> None:  # type: ignore[type-arg]
        barrier.wait()
        with write_tx(school.engine) as conn:
            outcomes.append(apply_edit(conn, editor, raw, 1)["outcome"])

    for raw in (first, correction):
        threads = [threading.Thread(target=send, args=(raw,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert outcomes == ["applied"] * 12
    assert counts(school) == (1, 2)
    with school.engine.connect() as conn:
        version = conn.execute(select(lessons.c.version).where(
            lessons.c.id == body["id"])).scalar_one()
    assert version == 2
