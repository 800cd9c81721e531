"""What the driving school's routes need from the bridge they are mounted in (database,
staff sign-in, the device link for commands, topic prefix, command lifetimes), as one
settings object and a FastAPI dependency that hands it to a route.

The routes are module-level functions on module-level routers; ``driving_school_router``
builds one ``SchoolSettings`` where the module is mounted and puts ``provide_settings``
on that mount as a router dependency. FastAPI runs a router's dependencies before the
route's own, so ``school_settings`` finds the settings on the request. An included router
is shared, not copied, so two apps (tests build many) each get their own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from cloud_bridge.driving_school.access import SchoolAccess
from cloud_bridge.driving_school.apply_limits import ApplyLimits
from cloud_bridge.driving_school.card_command import Publisher
from cloud_bridge.notifications import Notifier
from cloud_bridge.web.auth import WebAuth
from contracts.command_expiry import CommandLifetimes
from contracts.topics import DEFAULT_PREFIX

_STATE_ATTR = "driving_school"


@dataclass(frozen=True, slots=True)
class SchoolSettings:
    engine: Engine
    auth: WebAuth
    access: SchoolAccess
    # the bridge's MQTT link: needed only for "print record card" (hidden without it)
    publisher: Publisher | None = None
    prefix: str = DEFAULT_PREFIX
    school_name: str | None = None  # on the record card; the tenant's id when not set
    command_lifetimes: CommandLifetimes | None = None
    # e-mail and SMS to candidates (the bridge's outbox); None: nobody is notified
    notifier: Notifier | None = None
    # limits on new public applications (apply_limits.py); the default's key is random
    # for this process, so the bridge passes one derived from its member-link key
    apply_limits: ApplyLimits = field(default_factory=lambda: ApplyLimits.for_server_key(None))


class SettingsProvider:
    """The router dependency of one mount: puts its settings on each request it serves."""

    def __init__(self, settings: SchoolSettings) -> None:
        self.settings = settings

    def __call__(self, request: Request) -> None:
        setattr(request.state, _STATE_ATTR, self.settings)


def school_settings(request: Request) -> SchoolSettings:
    settings: SchoolSettings = getattr(request.state, _STATE_ATTR)
    return settings


School = Annotated[SchoolSettings, Depends(school_settings)]
