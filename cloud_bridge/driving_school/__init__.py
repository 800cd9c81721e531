"""E-SV driving school: offline lesson log for instructors' tablets, office pages, record
cards (docs/driving_school.md)."""

from cloud_bridge.driving_school.router import driving_school_router

__all__ = ["driving_school_router"]
