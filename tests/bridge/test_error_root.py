"""The bridge's one error root (cloud_bridge/errors.py): every error class of the bridge
derives from BridgeError and carries the status of its meaning; the app maps them ONCE
to JSON under /api (other paths keep their own handling); the ``cloud-bridge`` CLI maps
one that no command handled to exit code 2 and one line; and the bridge imports nothing
from the agent (the device config schema is a contract)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.attendance.absences import AbsenceError, AbsenceNotFound
from cloud_bridge.attendance.corrections import CorrectionError
from cloud_bridge.attendance.corrections import NotFound as CorrectionNotFound
from cloud_bridge.device_ca import CaError
from cloud_bridge.enrolment_service import NotReady
from cloud_bridge.errors import (
    BridgeError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
)
from cloud_bridge.membership_ops import Conflict as OpsConflict
from cloud_bridge.membership_ops import Invalid as OpsInvalid
from cloud_bridge.membership_ops import NotFound as OpsNotFound
from cloud_bridge.share_group import ShareGroupError
from cloud_bridge.startup_checks import StartupError
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from cloud_bridge.web.auth import LoginRefused
from cloud_bridge.web.enrolment_page import FormError as EnrolmentFormError
from cloud_bridge.web.entitlement_forms import FieldError
from cloud_bridge.web.membership_changes import FormError
from cloud_bridge.wire import Rejected
from tests.bridge.conftest import API_TOKEN

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("cls", "status"), [
    (NotFound, 404), (Conflict, 409), (Invalid, 422), (Unauthorized, 401), (Forbidden, 403),
    (Unavailable, 503), (OpsNotFound, 404), (OpsConflict, 409), (OpsInvalid, 422),
    (AbsenceError, 422), (AbsenceNotFound, 404), (CorrectionError, 422),
    (CorrectionNotFound, 404), (LoginRefused, 401), (FormError, 422), (FieldError, 422),
    (EnrolmentFormError, 422), (CaError, 503), (TenantKeyError, 503), (NotReady, 503),
    (Rejected, 422), (StartupError, 500), (ShareGroupError, 500),
])
def test_every_bridge_error_has_the_root_and_a_status(cls: type[Exception], status: int) -> None:
    assert issubclass(cls, BridgeError)
    assert cls.status == status  # type: ignore[attr-defined]


def test_the_old_catch_clauses_still_catch() -> None:
    """Rebasing changed no ``except ValueError`` / ``except LookupError`` in callers."""
    for cls in (Invalid, AbsenceError, CorrectionError, FormError, FieldError, Rejected):
        assert issubclass(cls, ValueError)
    for cls in (NotFound, AbsenceNotFound, CorrectionNotFound):
        assert issubclass(cls, LookupError)


def test_a_route_error_becomes_its_status_under_api_only(client: TestClient,
                                                        keys_dir: Path) -> None:
    app = client.app
    store = TenantKeyStore(keys_dir)

    # real code raising a real TenantKeyError (a tenant without keys), once under /api
    # and once on a page path: the one handler answers the first, not the second
    def api_probe() -> dict[str, str]:
        store.get("no-such-tenant")
        return {}

    app.add_api_route("/api/v1/probe", api_probe)  # type: ignore[attr-defined]
    app.add_api_route("/t/probe", api_probe)  # type: ignore[attr-defined]
    r = client.get("/api/v1/probe")
    assert r.status_code == 503
    assert "no-such-tenant" in r.json()["detail"]
    with pytest.raises(TenantKeyError):
        client.get("/t/probe")


def test_api_errors_keep_their_bodies_and_headers(client: TestClient, tenant: str) -> None:
    r = client.get(f"/api/v1/tenants/{tenant}/members",
                   headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"detail": "missing or wrong API token (Authorization: Bearer …)"}
    r = client.get(f"/api/v1/tenants/{tenant}/members/nobody")
    assert r.status_code == 404
    assert r.json() == {"detail": f"member 'nobody' does not exist in tenant {tenant!r}"}
    r = client.post(f"/api/v1/tenants/{tenant}/members", json={"id": "m1", "first_name": "A"})
    assert r.status_code == 201
    r = client.post(f"/api/v1/tenants/{tenant}/members", json={"id": "m1", "first_name": "A"})
    assert r.status_code == 409
    assert r.json() == {"detail": "member 'm1' already exists"}
    r = client.get("/api/v1/tenants/nope/members",
                   headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert r.status_code == 404 and "cloud-bridge tenant create nope" in r.json()["detail"]


def test_cli_maps_an_unhandled_bridge_error_to_exit_2_and_one_line(tmp_path: Path) -> None:
    # a command that lets a real TenantKeyError escape, added to the real CLI app
    script = (
        "from pathlib import Path\n"
        "from cloud_bridge.cli import app\n"
        "from cloud_bridge.tenant_keys import TenantKeyStore\n"
        "@app.command('probe')\n"
        f"def probe() -> None:\n    TenantKeyStore(Path({str(tmp_path)!r})).get('ghost')\n"
        "from cloud_bridge.cli_entry import main\n"
        "main()\n")
    proc = subprocess.run([sys.executable, "-c", script, "probe"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("napaka: ") and "ghost" in lines[0], lines


def test_the_bridge_imports_nothing_from_the_agent() -> None:
    script = ("import sys\n"
              "import cloud_bridge.cli, cloud_bridge.service, cloud_bridge.enrolment\n"
              "import cloud_bridge.enrolment_cli, cloud_bridge.web.enrolment_page\n"
              "bad = sorted(m for m in sys.modules if m == 'agent' or m.startswith('agent.'))\n"
              "print(bad)\n"
              "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
