"""Journeys through the driving school in headless Chromium, as the people who use it.

The instructor, on a phone (390 px) and on a tablet: signs in to the lesson log, records
a lesson, loses the network, records two more (one with 9 lesson hours), gets the
network back; the server stores one and refuses the other with the reason in Slovenian;
the instructor corrects it and sends it again, and the red message goes. Every screen is
checked with axe; the phone never scrolls sideways. Screenshots:
``journey-instructor-<n>-<step>-<size>``.

The school's manager, in the office: fills in the school's name, opens the candidates,
a candidate and the record card, which is headed by that name; a wrong candidate id
answers a page, not JSON. Screenshots: ``journey-school-manager-<n>-<step>``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from cloud_bridge.driving_school.schema import lessons
from tests.a11y import assert_accessible, assert_no_horizontal_scroll, screenshot
from tests.browser import chromium
from tests.driving_school.conftest import PASSWORDS, School
from tests.driving_school.test_tablet_offline import draw_signature

APP = "/driving-school/app/"
SIZES = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 1024, "height": 768}}


def check(page: Page, size: str, n: int, step: str) -> None:
    """Every screen: axe, no sideways scrolling on a phone, a screenshot."""
    assert_accessible(page, f"{step} ({size})")
    if size == "phone":
        assert_no_horizontal_scroll(page)
    screenshot(page, f"journey-instructor-{n}-{step}-{size}")


def record(page: Page, hours: int, km: int, remarks: str) -> None:
    page.select_option("#candidate", index=0)
    page.select_option("#vehicle", index=0)
    page.fill("#lesson-count", str(hours))
    page.fill("#km-start", str(km))
    page.click("#start")
    page.wait_for_selector("#running:not([hidden])")
    page.fill("#km-end", str(km + 25))
    page.fill("#remarks", remarks)
    page.locator("#signature").scroll_into_view_if_needed()
    draw_signature(page, hours)
    page.click("#end")


def stored(school: School) -> dict[str, int]:
    with school.engine.connect() as conn:
        return {r.remarks: r.lesson_count for r in conn.execute(
            select(lessons.c.remarks, lessons.c.lesson_count).where(
                lessons.c.tenant == school.tenant))}


@pytest.mark.parametrize("size", list(SIZES))
def test_journey_instructor(school: School, served: str, size: str) -> None:
    if school.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once; test_tablet_offline covers PostgreSQL")
    with chromium() as browser:
        ctx = browser.new_context(viewport=SIZES[size], service_workers="allow")
        page = ctx.new_page()
        page.goto(served + APP)
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("h1").inner_text() == "Dnevnik vožnje"  # Slovenian by default
        check(page, size, 1, "sign-in")

        page.fill("#username", school.users["ucitelj"])
        page.fill("#password", PASSWORDS["ucitelj"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#candidates li")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
        check(page, size, 2, "signed-in")

        record(page, 2, 10_000, "Ura 1: krožišča")
        page.wait_for_selector("#lessons tr[data-status='synced']")
        page.wait_for_selector("#pending[data-count='0']")
        check(page, size, 3, "lesson-sent")

        ctx.set_offline(True)
        page.wait_for_selector("#net.offline")
        record(page, 2, 10_025, "Ura 2: brez povezave")
        page.wait_for_selector("#pending[data-count='1']")
        record(page, 9, 10_050, "Ura 3: preveč ur")
        page.wait_for_selector("#pending[data-count='2']")
        assert "Ura je shranjena na tablici." in page.locator("#message").inner_text()
        check(page, size, 4, "offline-two-lessons-queued")

        ctx.set_offline(False)
        refused = page.locator("#lessons tr[data-status='rejected']")
        refused.wait_for()
        page.wait_for_selector("#pending[data-count='0']")
        assert "Ena vožnja ima največ 4 učne ure" in refused.locator(".state").inner_text()
        assert refused.locator("[data-refusal='too_many_hours']").count() == 1
        message = page.locator("#message")
        assert "Zavrnjene ure: 1" in message.inner_text()
        assert message.get_attribute("class") == "error"
        assert stored(school) == {"Ura 1: krožišča": 2, "Ura 2: brez povezave": 2}
        check(page, size, 5, "lesson-refused")

        refused.locator("button[data-fix='resend']").click()
        page.wait_for_selector("#edit-view:not([hidden])")
        assert "Ena vožnja ima največ 4 učne ure" in page.locator("#edit-reason").inner_text()
        assert page.evaluate("document.activeElement.id") == "edit-lesson-count"
        check(page, size, 6, "correcting")
        page.fill("#edit-lesson-count", "4")
        page.click("#edit-save")
        page.wait_for_selector("#lessons tr[data-status='rejected']", state="detached")
        page.wait_for_selector("#pending[data-count='0']")
        page.wait_for_function("document.querySelectorAll(\"#lessons tr[data-status='synced']\")"
                               ".length === 3")
        assert stored(school) == {"Ura 1: krožišča": 2, "Ura 2: brez povezave": 2,
                                  "Ura 3: preveč ur": 4}
        # the old red message is gone once sending works again
        assert message.get_attribute("class") != "error"
        assert "Zavrnjene" not in message.inner_text()
        check(page, size, 7, "resent")

        page.click(".lang-btn[data-lang='en']")  # the same cookie as the office pages
        page.wait_for_selector("h1:text('Lesson log')")
        assert "lang=en" in page.evaluate("document.cookie")
        # the data (lesson types, the rule) come again in English, then the list is drawn
        page.wait_for_selector("#conflict-rule:has-text('The first edit to reach the server')")
        assert page.locator("#lessons tr").first.locator(".state").inner_text().startswith(
            "saved")
        assert "Driving off public roads" in page.locator("#lessons tr").first.inner_text()
        check(page, size, 8, "in-english")
        ctx.close()


def test_journey_school_manager(school: School, served: str) -> None:
    if school.engine.dialect.name != "sqlite":
        pytest.skip("the browser journey runs once")
    person = school.candidate_ids[0]
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{served}/driving-school/candidates")  # to the sign-in and back
        page.fill("input[name=username]", school.users["admin"])
        page.fill("input[name=password]", PASSWORDS["admin"])
        page.click("form.inline button[type=submit]")
        page.wait_for_selector("h1:text('Kandidati')")
        assert_accessible(page, "candidates")
        screenshot(page, "journey-school-manager-1-candidates")

        page.goto(f"{served}/driving-school/school")
        assert_accessible(page, "school settings")
        page.fill("#f-name", "")
        page.click("#school-form button[type=submit]")
        assert page.locator("#e-name").inner_text() == "Izpolnite to polje."
        page.fill("#f-name", "Avtošola Žarek d.o.o.")
        page.fill("#f-address", "Trubarjeva 3, 1000 Ljubljana")
        page.click("#school-form button[type=submit]")
        page.wait_for_selector("#saved")
        assert_accessible(page, "school settings saved")
        screenshot(page, "journey-school-manager-2-school-data")

        page.goto(f"{served}/driving-school/candidates")
        page.click(f"a[href='/driving-school/candidates/{person}']")
        page.wait_for_selector("h1:has-text('Šuštar Živa')")
        assert_accessible(page, "candidate")
        screenshot(page, "journey-school-manager-3-candidate")

        page.click(f"a[href='/driving-school/candidates/{person}/card']")
        page.wait_for_selector("h1:text('EVIDENČNI KARTON VOŽNJE')")
        assert page.locator(".school-name").inner_text().startswith("Avtošola Žarek d.o.o.")
        assert "2. 4. 2008" in page.locator(".card dl").inner_text()
        assert_accessible(page, "record card")
        screenshot(page, "journey-school-manager-4-record-card")

        response = page.goto(f"{served}/driving-school/candidates/abc")
        assert response is not None and response.status == 422
        assert response.headers["content-type"].startswith("text/html")
        assert_accessible(page, "error page")
        screenshot(page, "journey-school-manager-5-bad-address")
        ctx.close()
