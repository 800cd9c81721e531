"""The bridge's JSON API (FastAPI): members, credentials, entitlements, events, devices,
commands. Every route is scoped by the tenant in its path; every mutating call commits
its change and ONE change-log entry together, then publishes that entry signed.

Authentication is a bearer token: the operator's (``--api-token`` /
``BRIDGE_API_TOKEN``) opens every tenant, a tenant's own (``cloud-bridge tenant token``)
opens that tenant only. Staff log in to the web modules (cloud_bridge/web/) instead.

One module per resource, each an ``APIRouter`` at module level; what they share (the
context, the token check, the tenant, the transactions) are FastAPI dependencies in
``deps``, and the routes of members, credentials and entitlements share ``entities``.
"""

from cloud_bridge.api.app import create_app
from cloud_bridge.api.deps import ApiContext

__all__ = ["ApiContext", "create_app"]
