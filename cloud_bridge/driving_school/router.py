"""One APIRouter for the whole driving-school module, to mount in the bridge's app."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import Engine

from cloud_bridge.driving_school import (
    office_applications,
    office_candidates,
    office_courses,
    office_instructors,
    office_leaving,
    office_lessons,
    office_money,
    office_record_card,
    office_school,
    office_session,
    office_theory,
    office_vehicles,
    public_applications,
    public_apply_page,
    tablet_api,
    tablet_shell,
)
from cloud_bridge.driving_school.access import SchoolAccess
from cloud_bridge.driving_school.apply_limits import ApplyLimits
from cloud_bridge.driving_school.card_command import Publisher
from cloud_bridge.driving_school.deps import SchoolSettings, SettingsProvider
from cloud_bridge.driving_school.schema import create_driving_school_schema
from cloud_bridge.notifications import Notifier
from cloud_bridge.web.auth import WebAuth
from contracts.command_expiry import CommandLifetimes
from contracts.topics import DEFAULT_PREFIX

# the tablet's shell first: its /app/{name} must not shadow anything, nor be shadowed
RESOURCES = (tablet_shell.router, tablet_api.router, office_session.router,
             office_lessons.router, office_candidates.router, office_record_card.router,
             office_instructors.router, office_vehicles.router, office_courses.router,
             office_school.router, office_applications.router, office_leaving.router,
             office_theory.router, office_money.router, public_applications.router,
             public_apply_page.router)


def driving_school_router(engine: Engine, auth: WebAuth, *, publisher: Publisher | None = None,
                          prefix: str = DEFAULT_PREFIX, school_name: str | None = None,
                          create_schema: bool = True,
                          command_lifetimes: CommandLifetimes | None = None,
                          notifier: Notifier | None = None,
                          apply_limits: ApplyLimits | None = None) -> APIRouter:
    """Pages under /driving-school/ and the tablet app under /driving-school/app/.

    ``publisher`` (the bridge's MQTT link) is needed only for "print record card";
    without it that button is hidden. ``apply_limits`` bound public applications
    (``ApplyLimits.for_server_key``); without them, the defaults with a key of this
    process only (right only for a bridge of one process). The bridge's own schema
    (``commands``) and the web schema (users, sessions) must exist; this module's
    tables are created here."""
    if create_schema:
        create_driving_school_schema(engine)
    tablet_shell.load_shell()
    settings = SchoolSettings(engine, auth, SchoolAccess(engine, auth), publisher=publisher,
                              prefix=prefix, school_name=school_name,
                              command_lifetimes=command_lifetimes, notifier=notifier,
                              apply_limits=apply_limits or ApplyLimits.for_server_key(None))
    router = APIRouter(dependencies=[Depends(SettingsProvider(settings))])
    for resource in RESOURCES:
        router.include_router(resource)
    return router
