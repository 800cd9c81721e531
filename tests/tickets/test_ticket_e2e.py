"""End to end, every part a real process (Mosquitto, ``cloud-bridge serve``, ``edge-agent
run``): a voucher issued at the bridge is accepted at the gate, its ``ticket.used``
reaches the bridge's ledger and the balance shows it; refunded at the bridge, the gate
refuses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud_harness import wait_until
from tests.e2e.site import Site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, f"sqlite:///{tmp_path / 'bridge.sqlite3'}", batch_size=20)
    yield s
    s.close()


def test_issue_tap_balance_refund(site: Site) -> None:
    now = int(time.time())
    made = site.api.post("/tickets", json={"kind": "entry_voucher", "entries": 2,
                                           "price_cents": 2000, "site": "s1",
                                           "valid_from": now - 60, "valid_to": now + 86400})
    assert made.status_code == 201, made.text
    ticket = made.json()
    code, tid = ticket["code"], ticket["id"]

    tap = site.control().request("present", reader="entry", kind="qr", value=code)
    assert tap["granted"], tap
    site.wait_drained()
    types = [t for _, t, d in site.stored() if d.get("ticket_id") == tid or d.get("ticket") == tid]
    assert types == ["ticket.used", "access.decision"]
    wait_until(lambda: site.api.get(f"/tickets/{tid}").json()["entries_left"] == 1, 30,
               "the bridge's ledger counts the use")
    assert site.api.get(f"/tickets/{tid}").json()["state"] == "valid"

    refund = site.api.post(f"/tickets/{tid}/refund", json={"note": "vračilo"})
    assert refund.status_code == 200 and refund.json()["state"] == "refunded"
    site.wait_synced()
    # the gate's repeat window (1.5 s) must not echo the first grant
    time.sleep(1.6)
    refused = site.control().request("present", reader="entry", kind="qr", value=code)
    assert not refused["granted"] and refused["reason"] == "blocked", refused
    # the code itself never reached the bridge's events
    assert code not in repr(site.stored())
