"""A candidate applies through the public form in Chromium, in Slovenian: one mistake
(a date that does not exist) is shown beside its field with everything typed kept, the
fixed form is sent and confirmed, the office sees the application in its list and
accepts it, and the candidate's e-mail reaches a real SMTP server (the same path as an
application through the JSON API, tests/driving_school/test_applications.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from cloud_bridge.driving_school.school_profile import save_profile
from cloud_bridge.notifications import Notifier, mailer_from_url, sms_from_url
from tests.a11y import axe_violations
from tests.browser import chromium
from tests.driving_school.conftest import PASSWORDS, SCHOOL, School
from tests.smtp_server import SmtpServer, body_text

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

DS = "/driving-school"
TYPED = {"first_name": "Neža", "last_name": "Žnidaršič", "birth_date": "31. 2. 2009",
         "birth_place": "Kranj", "address": "Prešernova 1, 4000 Kranj",
         "email": "neza@example.si", "phone": "041 222 333"}


def fill_form(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#apply-form [name='{name}']", value)


@pytest.fixture
def notifying(school: School, smtp_server: SmtpServer, tmp_path: Path) -> School:
    """The school with its data saved and the outbox sending to the SMTP fixture (set
    before ``served`` builds the app)."""
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "Kranj",
                                                "registration_no": ""})
    school.notifier = Notifier(school.engine, mailer_from_url(smtp_server.url()),
                               sms_from_url(f"file://{tmp_path / 'sms.jsonl'}"))
    return school


def test_candidate_applies_through_the_form(notifying: School, served: str,
                                            smtp_server: SmtpServer, tmp_path: Path) -> None:
    school = notifying
    with chromium() as browser:
        page = browser.new_page()
        console: list[str] = []  # a blocked style or anything else refused by the CSP
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{served}{DS}/apply/{school.tenant}")
        assert page.evaluate(
            "getComputedStyle(document.querySelector('header.top')).display") == "flex"
        assert page.locator("html").get_attribute("lang") == "sl"
        assert "Prijava na usposabljanje za voznika" in page.inner_text("h1")
        page.select_option("#f-category", "B")
        fill_form(page, TYPED)
        page.check("#f-consent")
        page.click("#apply-form button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#e-birth_date") == "Ta datum ne obstaja."
        assert page.get_attribute("#f-birth_date", "aria-invalid") == "true"
        kept = {name: page.input_value(f"#f-{name}") for name in TYPED}
        assert kept == TYPED  # everything typed is still there, the mistake too
        assert page.input_value("#f-category") == "B" and page.is_checked("#f-consent")
        assert page.locator(".field-error").count() == 1

        page.fill("#f-birth_date", "28. 2. 2009")
        page.click("#apply-form button[type=submit]")
        page.wait_for_load_state()
        done = page.inner_text("#apply-done")
        assert SCHOOL in done and "kategorijo B" in done
        assert not [m for m in console if "Content Security Policy" in m], console

        # axe-core, injected past the page's script policy, on the form with an error
        # shown (Slovenian) and on the empty form in English
        checker = browser.new_context(bypass_csp=True).new_page()
        url = f"{served}{DS}/apply/{school.tenant}"
        checker.goto(url)
        checker.click("#apply-form button[type=submit]")
        checker.wait_for_load_state()
        assert checker.locator(".field-error").count() >= 4
        serious = [v["id"] for v in axe_violations(checker)
                   if v["impact"] in ("serious", "critical")]
        checker.goto(f"{served}/lang/en?next={DS}/apply/{school.tenant}")
        assert "Application for driver training" in checker.inner_text("h1")
        serious += [v["id"] for v in axe_violations(checker)
                    if v["impact"] in ("serious", "critical")]
        assert not serious, serious

        office = browser.new_page()
        office.goto(f"{served}{DS}/login")
        office.fill("[name=username]", school.users["recepcija"])
        office.fill("[name=password]", PASSWORDS["recepcija"])
        office.click("main form button[type=submit]")
        office.wait_for_load_state()
        office.goto(f"{served}{DS}/applications")
        row = office.locator("#applications tbody tr").first
        assert "Žnidaršič Neža" in row.inner_text() and "28. 2. 2009" in row.inner_text()
        row.locator("button[type=submit]").click()
        office.wait_for_url(f"**{DS}/candidates/*")

    assert school.notifier is not None and school.notifier.deliver_due() == 2
    mail = smtp_server.wait_for(1)[0]
    assert mail["To"] == "neza@example.si" and SCHOOL in body_text(mail)
    sms = [json.loads(line) for line in
           (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [s["to"] for s in sms] == ["041 222 333"]
