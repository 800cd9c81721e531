"""One APIRouter for the whole driving-school module, to mount in the bridge's app."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import Engine

from cloud_bridge.driving_school.access import SchoolAccess
from cloud_bridge.driving_school.card_command import Publisher
from cloud_bridge.driving_school.office_pages import office_router
from cloud_bridge.driving_school.schema import create_driving_school_schema
from cloud_bridge.driving_school.tablet_api import tablet_router
from cloud_bridge.web.auth import WebAuth
from contracts.command_expiry import CommandLifetimes
from contracts.topics import DEFAULT_PREFIX


def driving_school_router(engine: Engine, auth: WebAuth, *, publisher: Publisher | None = None,
                          prefix: str = DEFAULT_PREFIX, school_name: str | None = None,
                          create_schema: bool = True,
                          command_lifetimes: CommandLifetimes | None = None) -> APIRouter:
    """Pages under /driving-school/ and the tablet app under /driving-school/app/.

    ``publisher`` (the bridge's MQTT link) is needed only for "print record card";
    without it that button is hidden. The bridge's own schema (``commands``) and the web
    schema (users, sessions) must exist; this module's tables are created here."""
    if create_schema:
        create_driving_school_schema(engine)
    access = SchoolAccess(engine, auth)
    router = APIRouter()
    router.include_router(tablet_router(engine, auth, access))
    router.include_router(office_router(engine, auth, access, publisher=publisher,
                                        prefix=prefix, school_name=school_name,
                                        command_lifetimes=command_lifetimes))
    return router
