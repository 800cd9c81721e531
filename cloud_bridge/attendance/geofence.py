"""Whether a phone's reported position lies within a site's geofence (a circle or a
polygon typed on the staff page), and the location policy that follows from it.

Written by hand rather than with a GIS library: a site is at most a few hundred metres
across, so a haversine distance and an even-odd ray test on latitude/longitude (planar
at that scale) are exact enough, and shapely/pyproj would be a large dependency for
two formulas.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8
# a position reported less precisely than this says nothing about the fence
MAX_ACCURACY_M = 250.0
# the reading's own uncertainty counted in the employee's favour, up to this much
ACCURACY_GRACE_M = 50.0


class Policy(enum.StrEnum):
    RECORD = "record"  # keep the location with the punch, never judge it
    FLAG = "flag"  # accept a punch outside the fence, marked for the manager
    REFUSE = "refuse"  # refuse a punch outside the fence


@dataclass(frozen=True, slots=True)
class Fence:
    site: str
    policy: Policy
    retention_days: int
    lat: float | None = None  # circle
    lon: float | None = None
    radius_m: float | None = None
    polygon: tuple[tuple[float, float], ...] = ()  # (lat, lon) corners

    @property
    def shape(self) -> str:
        return "polygon" if self.polygon else "circle"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def _in_polygon(lat: float, lon: float, corners: tuple[tuple[float, float], ...]) -> bool:
    inside = False
    j = len(corners) - 1
    for i, (yi, xi) in enumerate(corners):
        yj, xj = corners[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def inside(fence: Fence, lat: float, lon: float, accuracy_m: float) -> bool:
    """Inside the fence, giving the reading's uncertainty (up to ACCURACY_GRACE_M) to the
    employee for a circle; a polygon counts the reported point only. A reading less
    precise than MAX_ACCURACY_M is never inside."""
    if accuracy_m > MAX_ACCURACY_M:
        return False
    if fence.polygon:
        return _in_polygon(lat, lon, fence.polygon)
    assert fence.lat is not None and fence.lon is not None and fence.radius_m is not None
    grace = min(accuracy_m, ACCURACY_GRACE_M)
    return distance_m(fence.lat, fence.lon, lat, lon) - grace <= fence.radius_m


def parse_polygon(text: str) -> tuple[tuple[float, float], ...]:
    """"lat, lon; lat, lon; ..." (at least three corners) as typed on the staff page."""
    corners: list[tuple[float, float]] = []
    for part in text.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        bits = part.replace(" ", "").split(",")
        if len(bits) != 2:
            raise ValueError(f"{part.strip()!r} is not 'latitude, longitude'")
        lat, lon = float(bits[0]), float(bits[1])
        check_position(lat, lon)
        corners.append((lat, lon))
    if len(corners) < 3:
        raise ValueError("a polygon needs at least three corners")
    return tuple(corners)


def check_position(lat: float, lon: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"{lat}, {lon} is not a position on Earth")
