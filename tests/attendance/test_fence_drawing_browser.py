"""A site's geofence drawn on the staff page's plan (no map tiles) in headless Chromium
against a real bridge: the manager types the centre, clicks four corners of a square on
the plan and saves; the stored polygon is the square counted by hand from the plan's
scale (and a circle drawn, its fields checked); then an employee's phone (geolocation
emulated) punches inside it (accepted, "inside") and outside it (refused under the
site's "refuse" policy)."""

from __future__ import annotations

import math
import time

from playwright.sync_api import Geolocation, Page
from sqlalchemy import insert, select

from cloud_bridge.attendance.phone_enrolment import create_enrolment
from cloud_bridge.attendance.schema import geofences
from cloud_bridge.db_schema import events, members, read_tx, write_tx
from contracts.pin_hash import hash_pin
from contracts.punch_chain import PUNCH_EVENT
from tests.a11y import assert_accessible, screenshot
from tests.browser import chromium
from tests.web.test_journeys_edc import Site, login, site  # noqa: F401 - the fixture, by name

LAT, LON = 46.0569, 14.5058
R = 6371008.8  # the Earth's mean radius, as geofence.py and the pad use


def _draw_square(page: Page, site: Site) -> None:  # noqa: F811
    login(page, site, site.employer)
    page.goto(f"{site.base}/t/{site.tenant}/phones")
    page.fill("#site-form #f-site", "risba")
    page.select_option("#f-shape", "polygon")
    page.fill("#f-lat", "46,0569")
    page.fill("#f-lon", "14,5058")
    plan = page.locator("[data-testid=fence-pad]")
    plan.wait_for(state="visible")
    page.select_option("#pad-span", "500")  # 500 m across the plan
    box = plan.bounding_box()
    assert box is not None
    # a quarter of the plan from its centre each way: 125 m north/south, east/west
    for fx, fy in ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)):
        plan.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    assert page.text_content("#pad-status") == "Doslej oglišč: 4."
    assert page.locator("#fence-pad polygon.drawn").count() == 1
    page.select_option("#site-form #f-policy", "refuse")
    page.fill("#f-retention_days", "30")
    assert_accessible(page, "fence-drawn")
    screenshot(page, "fence-drawn")
    page.click("#site-form button[type=submit]")
    page.wait_for_selector("text=Delovišče je shranjeno.")


def _draw_circle(page: Page) -> None:
    """A circle on the same plan: its centre clicked at the middle (the typed centre),
    a point of its edge a quarter of the plan (125 m) to the east: the fields say so."""
    page.select_option("#f-shape", "circle")
    page.fill("#f-radius_m", "")
    plan = page.locator("[data-testid=fence-pad]")
    box = plan.bounding_box()
    assert box is not None
    plan.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
    assert page.text_content("#pad-status") == \
        "Središče je določeno; kliknite točko na robu kroga."
    plan.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.5})
    assert abs(int(page.input_value("#f-radius_m")) - 125) <= 2
    assert abs(float(page.input_value("#f-lat")) - LAT) < math.degrees(2 / R)
    page.click("#pad-clear")
    assert page.input_value("#f-radius_m") == "" and page.input_value("#f-lat") == ""


def _stored_square(site: Site) -> None:  # noqa: F811
    with read_tx(site.engine) as conn:
        row = conn.execute(select(geofences).where(geofences.c.tenant == site.tenant,
                                                   geofences.c.site == "risba")).mappings().one()
    assert row["shape"] == "polygon" and row["policy"] == "refuse"
    dlat = math.degrees(125 / R)
    dlon = math.degrees(125 / (R * math.cos(math.radians(LAT))))
    want = [(LAT + dlat, LON - dlon), (LAT + dlat, LON + dlon), (LAT - dlat, LON + dlon),
            (LAT - dlat, LON - dlon)]
    got = [tuple(c) for c in row["polygon"]]
    assert len(got) == 4
    for (glat, glon), (wlat, wlon) in zip(got, want, strict=True):
        # a pixel of the plan is 500 m / its width (about 1.25 m): within 2 m
        assert abs(glat - wlat) < math.degrees(2 / R), (got, want)
        assert abs(glon - wlon) < math.degrees(2 / R) / math.cos(math.radians(LAT)), (got, want)


def _phone_punches(page: Page, site: Site, token: str) -> None:  # noqa: F811
    page.goto(f"{site.base}/phone/{site.tenant}#t={token}")
    page.fill("#pin", "7315")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#punch:not([hidden])")
    page.click("[data-punch=arrival]")
    page.wait_for_function(
        "t => document.querySelector('[data-testid=status]').textContent === t",
        arg="Zabeleženo.")


def test_a_drawn_polygon_fences_the_phone_punch(site: Site) -> None:  # noqa: F811
    now = int(time.time())
    with write_tx(site.engine) as conn:
        conn.execute(insert(members).values(tenant=site.tenant, id="e8", first_name="Tine",
                                            last_name="Zupan", blocked=False,
                                            pin_hash=hash_pin("7315"), created_at=now,
                                            updated_at=now))
        token = create_enrolment(conn, site.tenant, "e8", site.employer, site="risba")
    with chromium() as browser:
        manager = browser.new_context(locale="sl-SI").new_page()
        _draw_square(manager, site)
        _stored_square(site)
        manager.goto(f"{site.base}/t/{site.tenant}/phones")
        manager.fill("#f-lat", "46,0569")
        manager.fill("#f-lon", "14,5058")
        _draw_circle(manager)
        # 80 m north and 80 m east of the centre: inside the 250 m square
        inside: Geolocation = {"latitude": LAT + math.degrees(80 / R),
                  "longitude": LON + math.degrees(80 / (R * math.cos(math.radians(LAT)))),
                  "accuracy": 10}
        phone = browser.new_context(geolocation=inside, permissions=["geolocation"],
                                    locale="sl-SI", viewport={"width": 390, "height": 844})
        page = phone.new_page()
        _phone_punches(page, site, token)
        # 200 m east: outside the square (its edge is 125 m east), refused
        phone.set_geolocation({"latitude": LAT, "accuracy": 10, "longitude":
                               LON + math.degrees(200 / (R * math.cos(math.radians(LAT))))})
        page.click("[data-punch=departure]")
        page.wait_for_function(
            "t => document.querySelector('[data-testid=status]').textContent === t",
            arg="Zavrnjeno: niste na delovnem mestu.")
        phone.close()
    with read_tx(site.engine) as conn:
        stored = [dict(r.data) for r in conn.execute(select(events.c.data).where(
            events.c.tenant == site.tenant, events.c.type == PUNCH_EVENT))]
    assert [(p["type"], p["location"], p["site"]) for p in stored] == [
        ("arrival", "inside", "risba")]
