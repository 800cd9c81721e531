"""The lesson log on a tablet, in headless Chromium: sign in, lose the network, record
three lessons with drawn signatures, reload while offline (the service worker serves the
shell, IndexedDB keeps the lessons), get the network back and find each lesson in the
bridge's database exactly once; then two tablets edit one lesson offline and the
conflict rule decides, visibly on the losing tablet and in the office."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route
from sqlalchemy import func, insert, select

from cloud_bridge.driving_school.schema import candidates, lesson_edits, lessons
from tests.browser import chromium
from tests.driving_school.conftest import PASSWORDS, School

APP = "/driving-school/app/"


def sign_in(ctx: BrowserContext, base: str, who: str, school: School) -> Page:
    page = ctx.new_page()
    page.goto(base + APP)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#username", school.users[who])
    page.fill("#password", PASSWORDS[who])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#main-view:not([hidden])")
    page.wait_for_selector("#candidates li")
    # offline start needs the service worker in control of this page
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    return page


def draw_signature(page: Page, wiggle: int) -> None:
    box = page.locator("#signature").bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 20, y + h * 0.7)
    page.mouse.down()
    for k in range(1, 14):
        page.mouse.move(x + 20 + k * (w - 40) / 13, y + h * (0.25 + 0.5 * ((k + wiggle) % 2)),
                        steps=4)
    page.mouse.up()


def record_lesson(page: Page, n: int) -> None:
    page.select_option("#candidate", index=n % 2)
    page.select_option("#vehicle", index=0)
    page.select_option("#lesson-type", index=n % 3)
    page.fill("#lesson-count", str(1 + n % 2))
    page.fill("#km-start", str(20_000 + 50 * n))
    page.click("#start")
    page.wait_for_selector("#running:not([hidden])")
    page.fill("#km-end", str(20_000 + 50 * n + 31))
    page.fill("#remarks", f"Ura {n + 1}: križišča, vzvratno parkiranje, žerjavica")
    draw_signature(page, n)
    page.click("#end")
    page.wait_for_selector(f"#pending[data-count='{n + 1}']")


def stored(school: School) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    with school.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(lessons).where(
            lessons.c.tenant == school.tenant)).mappings()]
        edits = conn.execute(select(func.count()).select_from(lesson_edits).where(
            lesson_edits.c.tenant == school.tenant)).scalar_one()
    return rows, edits


def ink(data_url: str) -> int:
    raw = base64.b64decode(data_url.removeprefix("data:image/png;base64,"))
    img = Image.open(io.BytesIO(raw)).convert("L")
    return sum(img.histogram()[:128])  # dark pixels


def test_offline_lessons_reach_the_bridge_once_and_conflicts_show(
        school: School, served: str, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "driving_school"
    shots.mkdir(parents=True, exist_ok=True)
    db = school.engine.dialect.name
    with chromium() as browser:
        tablet_a = browser.new_context(service_workers="allow",
                                       viewport={"width": 1100, "height": 1500})
        a = sign_in(tablet_a, served, "ucitelj", school)
        assert a.locator("#candidates li").count() == 2
        assert "Šuštar Živa" in a.locator("#candidates").inner_text()

        tablet_a.set_offline(True)
        a.wait_for_selector("#net.offline")
        for n in range(3):
            record_lesson(a, n)
        assert a.locator("#lessons tr[data-status='pending']").count() == 3
        assert stored(school) == ([], 0)  # nothing left the tablet
        a.screenshot(path=shots / f"{db}-1-three-lessons-offline.png", full_page=True)

        response = a.reload()  # still offline: the shell comes from the service worker
        assert response is not None and response.from_service_worker
        a.wait_for_selector("body[data-ready='1']")
        assert a.locator("#lessons tr[data-status='pending']").count() == 3
        assert a.locator("#pending").get_attribute("data-count") == "3"
        assert stored(school) == ([], 0)
        a.screenshot(path=shots / f"{db}-2-reloaded-offline.png", full_page=True)

        # the first sync reaches the server, but its answer is lost (the tablet is closed
        # mid-sync): the outbox must keep the lessons and the resend must add nothing
        answers: list[int] = []

        def lose_first_answer(route: Route) -> None:
            if answers:
                route.continue_()
                return
            answers.append(route.fetch().status)  # the server commits the three lessons
            route.abort()

        tablet_a.route("**/api/sync", lose_first_answer)
        tablet_a.set_offline(False)  # the 'online' event starts the sync
        a.wait_for_selector("#message.error")
        assert answers == [200]
        assert a.locator("#pending").get_attribute("data-count") == "3"
        assert len(stored(school)[0]) == 3
        a.click("#sync-now")
        a.wait_for_selector("#pending[data-count='0']", timeout=20_000)
        tablet_a.unroute("**/api/sync")
        a.wait_for_function(
            "document.querySelectorAll(\"#lessons tr[data-status='synced']\").length === 3")
        rows, edits = stored(school)
        assert len(rows) == 3 and edits == 3 and len({r["id"] for r in rows}) == 3
        local_ids = set(a.eval_on_selector_all("#lessons tr",
                                               "rs => rs.map(r => r.dataset.lessonId)"))
        assert local_ids == {r["id"] for r in rows}
        assert sorted(r["km_end"] - r["km_start"] for r in rows) == [31, 31, 31]
        assert all(r["version"] == 1 and "žerjavica" in r["remarks"] for r in rows)
        assert all(ink(r["signature"]) > 200 for r in rows), "signatures are not drawn"
        a.click("#sync-now")  # another sync sends nothing twice
        a.wait_for_timeout(300)
        assert stored(school)[1] == 3
        a.screenshot(path=shots / f"{db}-3-synced.png", full_page=True)

        # -- two tablets correct the same lesson offline --------------------------------
        tablet_b = browser.new_context(service_workers="allow",
                                       viewport={"width": 1100, "height": 1500})
        b = sign_in(tablet_b, served, "ucitelj", school)
        b.wait_for_function(
            "document.querySelectorAll(\"#lessons tr[data-status='synced']\").length === 3")
        target = sorted(rows, key=lambda r: r["started_at"])[0]["id"]
        tablet_a.set_offline(True)
        tablet_b.set_offline(True)
        for page, text in ((a, "Tablica A: popravek km"), (b, "Tablica B: druga opomba")):
            page.click(f"#lessons tr[data-lesson-id='{target}'] button.edit")
            page.fill("#edit-remarks", text)
            page.click("#edit-save")
            page.wait_for_selector("#pending[data-count='1']")
        tablet_a.set_offline(False)
        a.wait_for_selector("#pending[data-count='0']", timeout=20_000)
        tablet_b.set_offline(False)
        b.wait_for_selector("#pending[data-count='0']", timeout=20_000)
        row = b.locator(f"#lessons tr[data-lesson-id='{target}']")
        row.locator(".conflict-note").wait_for()
        assert row.get_attribute("data-status") == "conflict"
        assert "Tablica A: popravek km" in row.locator(".remarks").inner_text()
        assert "Tablica B: druga opomba" in row.locator(".conflict-note").inner_text()
        assert "Prva sprememba" in b.locator("#conflict-rule").inner_text()
        b.screenshot(path=shots / f"{db}-4-conflict-on-tablet-b.png", full_page=True)

        rows, edits = stored(school)
        winner = next(r for r in rows if r["id"] == target)
        assert winner["remarks"] == "Tablica A: popravek km" and winner["version"] == 2
        assert len(rows) == 3 and edits == 5

        # -- the office sees the note ------------------------------------------------------
        office = browser.new_context(viewport={"width": 1300, "height": 1000})
        o = office.new_page()
        candidate = winner["candidate_id"]
        o.goto(f"{served}/driving-school/candidates/{candidate}")
        o.fill("input[name=username]", school.users["admin"])
        o.fill("input[name=password]", PASSWORDS["admin"])
        o.click("form button[type=submit]")
        o.wait_for_url(f"**/driving-school/candidates/{candidate}")
        note = o.locator(f"tr[data-lesson-id='{target}'] .conflict-note")
        assert "Tablica B: druga opomba" in note.inner_text()
        o.screenshot(path=shots / f"{db}-5-office-candidate-log.png", full_page=True)


def test_the_app_is_installable_and_its_worker_caches_the_whole_shell(school: School) -> None:
    client, _ = school.client()
    manifest = client.get(APP + "manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    m = manifest.json()
    assert m["start_url"] == APP and m["scope"] == APP and m["display"] == "standalone"
    for icon in m["icons"]:
        png = client.get(APP + icon["src"])
        assert png.headers["content-type"] == "image/png"
        size = int(icon["sizes"].split("x")[0])
        assert Image.open(io.BytesIO(png.content)).size == (size, size)
    assert 'rel="manifest"' in client.get(APP).text
    worker = client.get(APP + "sw.js").text
    assert "__SHELL_VERSION__" not in worker and "lesson-log-" in worker
    for name in ("app.js", "app.css", "manifest.webmanifest", "icon-192.png", "icon-512.png"):
        assert f'"{name}"' in worker
    assert client.get(APP + "nothing.js").status_code == 404


def test_a_running_lesson_survives_a_reload_and_an_expired_session_keeps_the_outbox(
        school: School, served: str, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "driving_school"
    shots.mkdir(parents=True, exist_ok=True)
    db = school.engine.dialect.name
    with school.engine.begin() as conn:  # a candidate of another instructor
        conn.execute(insert(candidates).values(
            tenant=school.tenant, register_no="2026/099", first_name="Nejc", last_name="Ožbolt",
            birth_date="2008-01-01", instructor_id=school.other_instructor_id, active=True,
            created_ms=0))
    with chromium() as browser:
        ctx = browser.new_context(service_workers="allow",
                                  viewport={"width": 1100, "height": 1300})
        page = sign_in(ctx, served, "ucitelj", school)
        # own candidates are "today's"; the other one is offered for a substitute lesson
        assert "Ožbolt" not in page.locator("#candidates").inner_text()
        assert "(nadomeščanje) Ožbolt Nejc" in page.locator("#candidate").inner_text()
        ctx.set_offline(True)
        page.select_option("#candidate", label="(nadomeščanje) Ožbolt Nejc (2026/099)")
        page.fill("#km-start", "30000")
        page.click("#start")
        page.wait_for_selector("#running:not([hidden])")
        started = page.locator("#started-at").inner_text()
        assert started
        page.reload()  # offline, mid-lesson
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#running").is_visible()
        assert page.locator("#started-at").inner_text() == started
        page.fill("#km-end", "30012")
        draw_signature(page, 0)
        page.click("#end")
        page.wait_for_selector("#pending[data-count='1']")

        # the session ends while the tablet is offline
        [cookie] = [c["value"] for c in ctx.cookies() if c["name"] == "es_session"]
        school.auth.logout(cookie)
        ctx.set_offline(False)
        page.wait_for_selector("#login-view:not([hidden])")
        assert "Prijava je potekla" in page.locator("#message").inner_text()
        assert page.locator("#pending").get_attribute("data-count") == "1"
        assert stored(school) == ([], 0)
        # nobody else signs in over unsent lessons
        page.fill("#username", school.users["ucitelj2"])
        page.fill("#password", PASSWORDS["ucitelj2"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#login-error:has-text('Neposlane ure')")
        page.screenshot(path=shots / f"{db}-6-session-expired.png", full_page=True)
        page.fill("#username", school.users["ucitelj"])
        page.fill("#password", PASSWORDS["ucitelj"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#pending[data-count='0']", timeout=20_000)
        [row], edits = stored(school)
        assert edits == 1 and row["km_end"] == 30_012 and row["instructor_id"] == \
            school.instructor_id
        assert page.locator(f"#lessons tr[data-lesson-id='{row['id']}']").get_attribute(
            "data-status") == "synced"
