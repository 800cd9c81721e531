"""The forms of the phone page for staff (phone_admin_page.py): a phone enrolment for an
employee, and a site's geofence with its location policy and retention. Pydantic
models, so that the server judges every value and the messages land beside the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from cloud_bridge.attendance.geofence import Fence, Policy, parse_polygon
from contracts.i18n import gettext as _

SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
RADIUS_MIN, RADIUS_MAX = 10.0, 5000.0
RETENTION_MIN, RETENTION_MAX = 1, 3650
POLYGON_MAX = 2000
Site = Annotated[str, StringConstraints(strip_whitespace=True, pattern=SITE_PATTERN)]


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _decimal(value: Any) -> Any:
    """46,0569 as typed in Slovenian, or 46.0569."""
    return value.strip().replace(",", ".") if isinstance(value, str) else value


class EnrolForm(_Form):
    employee: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    site: Site | None = None
    policy: Literal["record", "flag", "refuse"] | None = None


class SiteForm(_Form):
    site: Site
    shape: Literal["circle", "polygon"]
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    radius_m: Annotated[float, Field(ge=RADIUS_MIN, le=RADIUS_MAX)] | None = None
    polygon: Annotated[str, StringConstraints(max_length=POLYGON_MAX)] | None = None
    policy: Literal["record", "flag", "refuse"]
    retention_days: Annotated[int, Field(ge=RETENTION_MIN, le=RETENTION_MAX)]

    _decimals = field_validator("lat", "lon", "radius_m", mode="before")(_decimal)

    @model_validator(mode="after")
    def _shape_complete(self) -> SiteForm:
        if self.shape == "circle":
            if self.lat is None or self.lon is None or self.radius_m is None:
                raise ValueError(_("A circle needs its centre (latitude and longitude) "
                                   "and a radius."))
        elif not self.polygon:
            raise ValueError(_("Type the corners of the polygon."))
        return self

    def fence(self) -> Fence:
        """The fence, or ValueError with the polygon's problem."""
        if self.shape == "polygon":
            return Fence(self.site, Policy(self.policy), self.retention_days,
                         polygon=parse_polygon(self.polygon or ""))
        return Fence(self.site, Policy(self.policy), self.retention_days, self.lat, self.lon,
                     self.radius_m)
