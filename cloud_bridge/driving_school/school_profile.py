"""The school's own data (name, address, registration number), one row per tenant.

Its name heads the office pages and the record card, printed or on paper; before the
school has filled it in, the name given where the module is mounted stands in, and
without that the tenant's id."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select

from cloud_bridge.db_schema import read_tx, upsert, write_tx
from cloud_bridge.driving_school.schema import school_profile


def load_profile(engine: Engine, tenant: str, fallback_name: str | None = None
                 ) -> dict[str, Any]:
    """The school's data; ``saved`` says whether the school has filled it in."""
    with read_tx(engine) as conn:
        row = conn.execute(select(school_profile).where(
            school_profile.c.tenant == tenant)).mappings().first()
    if row is None:
        return {"name": fallback_name or tenant, "address": "", "registration_no": "",
                "saved": False}
    return {"name": row["name"], "address": row["address"],
            "registration_no": row["registration_no"], "saved": True}


def save_profile(engine: Engine, tenant: str, values: dict[str, Any]) -> None:
    now = int(time.time() * 1000)
    with write_tx(engine) as conn:
        conn.execute(upsert(conn, school_profile, ["tenant"],
                            {**values, "updated_ms": now})
                     .values(tenant=tenant, updated_ms=now, **values))
