"""The tablet app's texts: every label of its page (``data-t``, the English msgid) has a
Slovenian translation, the catalogs are served per language and the service worker
caches them with the shell, so the app speaks Slovenian offline too."""

from __future__ import annotations

import re

from cloud_bridge.driving_school.tablet_shell import STATIC
from contracts.i18n import script_catalog
from tests.driving_school.conftest import School

APP = "/driving-school/app/"


def test_every_label_of_the_app_page_has_a_slovenian_text() -> None:
    page = (STATIC / "index.html").read_text("utf-8")
    labels = set(re.findall(r'data-t(?:-aria-label)?="([^"]+)"', page))
    assert len(labels) > 30
    slovenian = script_catalog("sl")
    missing = sorted(label for label in labels if not slovenian.get(label))
    assert not missing, missing


def test_catalogs_are_served_and_cached_by_the_service_worker(school: School) -> None:
    client, _ = school.client()
    sl = client.get(APP + "i18n/sl.json")
    assert sl.status_code == 200 and sl.headers["content-type"] == "application/json"
    body = sl.json()
    assert body["lang"] == "sl" and body["messages"]["Lesson log"] == "Dnevnik vožnje"
    assert body["messages"]["Correct and send again"] == "Popravi in pošlji znova"
    assert client.get(APP + "i18n/en.json").json()["lang"] == "en"
    assert client.get(APP + "i18n/xx.json").status_code == 404
    worker = client.get(APP + "sw.js").text
    assert '"i18n/sl.json", "i18n/en.json"' in worker and "__CATALOGS__" not in worker
