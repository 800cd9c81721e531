"""Issue 14 item 3: a ``members/request`` lost after a broker restart is asked again.

Every peer is real: Mosquitto (no persistence, so a restart loses every session and
retained message), the ``cloud-bridge serve`` process on SQLite and on PostgreSQL, and
the ``edge-agent run`` process. The agent comes back on the restarted broker before any
bridge has subscribed again, so its one request on connect reaches nobody; it must still
reach the bridge's version once a bridge is back, without waiting for the next change."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_bridge.tenant_keys import TenantKeyStore
from tests.e2e.site import TENANT, Site
from tests.e2e.test_site_e2e import add_member


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = Site(tmp_path, url)
    yield s
    s.close()


def retained_version(site: Site) -> int:
    """The advertised version, as a device sees it: retained and signed."""
    got: list[bytes] = []
    done = threading.Event()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", site.broker.port)
    client.subscribe(f"es/v1/{TENANT}/members/version", qos=1)
    client.loop_start()
    try:
        assert done.wait(10), "no retained members/version"
    finally:
        client.loop_stop()
        client.disconnect()
    envelope = json.loads(got[0])
    raw = base64.b64decode(envelope["payload"])
    public = TenantKeyStore(site.keys_dir).get(TENANT).signing_key.public_key()
    public.verify(base64.b64decode(envelope["sig"]), raw)  # raises if forged
    payload = json.loads(raw)
    assert payload["tenant"] == TENANT and payload["kind"] == "version"
    return int(payload["version"])


def agent_version(site: Site) -> int:
    return int(site.status()["membership_version"])


@pytest.mark.slow
def test_a_request_lost_on_a_restarted_broker_is_asked_again(site: Site) -> None:
    run = uuid.uuid4().hex[:8]  # the PostgreSQL database is shared by the tests
    add_member(site, f"a-{run}", f"04{uuid.uuid4().hex[:12].upper()}")
    before = site.wait_synced()
    assert retained_version(site) == site.bridge_version()

    # the agent is away while the member list changes, then the broker restarts (and
    # forgets the agent's session with the queued change) while the bridge is down
    site.agent.stop()
    add_member(site, f"b-{run}", f"04{uuid.uuid4().hex[:12].upper()}")
    want = site.bridge_version()
    assert want > before
    site.kill_bridge()
    site.broker.stop()
    site.broker.start()
    site.agent = site.start_agent()
    time.sleep(3)  # connected, subscribed, asked once: nobody was there to hear it
    assert agent_version(site) == before
    assert "mqtt connected" in site.agent.log_text()

    site.start_bridge()  # no change happens from here on: nothing else would tell the agent
    deadline = time.monotonic() + 30
    while agent_version(site) < want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert agent_version(site) == want, (
        f"agent still at {agent_version(site)}, the bridge at {want}; agent log:\n"
        + site.agent.log_text()[-3000:])
    assert retained_version(site) == want
