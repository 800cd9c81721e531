"""The fleet broker's TLS + ACL configuration (mosquitto/ templates, cloud_bridge.device_ca)
against real Mosquitto and real paho-mqtt clients with generated certificates.

Mosquitto drops unauthorised publishes silently, so non-delivery is checked with a bridge
identity subscribed to everything. Subscriptions: Mosquitto 2.0's ACL file does not check
SUBSCRIBE at all (src/security_default.c, mosquitto_acl_check_default: "FIXME - implement
ACL subscription strings" returns success), it checks ``read`` on every message it would
deliver. So a SUBACK may say granted (2.0) or 0x87 (2.1 and later); what these tests
assert is that nothing unauthorised is ever delivered, retained messages included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.fleet_broker import Client, FleetBroker

NOT_AUTHORISED = 0x87
GRANTED_QOS1 = 1
EITHER = {GRANTED_QOS1, NOT_AUTHORISED}  # 2.0 grants, filters on delivery; 2.1 refuses


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetBroker]:
    broker = FleetBroker(tmp_path_factory.mktemp("fleet"))
    broker.setup({"t1": ("b1",), "t2": ()}).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def bridge(fleet: FleetBroker) -> Iterator[Client]:
    c = Client(fleet, "t1", fleet.identity("t1", "b1", bridge=True), client_id="whatever")
    assert c.connected, c.error
    assert c.subscribe("es/v1/#") == GRANTED_QOS1
    yield c
    c.close()


def settle() -> None:
    time.sleep(0.4)


def test_device_publishes_only_as_itself(fleet: FleetBroker, bridge: Client) -> None:
    a = Client(fleet, "t1", fleet.identity("t1", "devA"))
    assert a.connected
    for suffix in ("events", "state", "cmd-result", "members/request"):
        a.publish(f"es/v1/t1/devA/{suffix}", b"mine")
        a.publish(f"es/v1/t1/devB/{suffix}", b"forged")
        a.publish(f"es/v1/t2/devA/{suffix}", b"forged")
    # a device may not pose as the cloud either
    a.publish("es/v1/t1/devA/ack", b"forged")
    a.publish("es/v1/t1/members/changes", b"forged")
    a.publish("es/v1/t1/devB/cmd/open", b"forged")
    settle()
    assert bridge.received("es/v1/t1/devA/events") == [b"mine"]
    assert bridge.received("es/v1/t1/devA/members/request") == [b"mine"]
    forged = [t for t, p in bridge.messages if p == b"forged"]
    assert forged == [], forged
    a.close()


def test_device_reads_only_its_own_commands_and_its_tenants_changes(
        fleet: FleetBroker, bridge: Client) -> None:
    a = Client(fleet, "t1", fleet.identity("t1", "devA"))
    for own in ("es/v1/t1/devA/ack", "es/v1/t1/devA/cmd/+", "es/v1/t1/devA/members/sync",
                "es/v1/t1/members/changes"):
        assert a.subscribe(own) == GRANTED_QOS1, own
    for other in ("es/v1/t1/devB/cmd/+", "es/v1/t1/devB/cmd/open", "es/v1/t1/devB/ack",
                  "es/v1/t1/devB/members/sync", "es/v1/t2/members/changes",
                  "es/v1/t1/+/cmd/+", "es/v1/t1/devA/events", "es/v1/#", "#",
                  "$share/x/es/v1/t1/devB/cmd/+", "es/v1/t1/+/state"):
        assert a.subscribe(other) in EITHER, other
    bridge.publish("es/v1/t1/devA/cmd/open", b"to A")
    bridge.publish("es/v1/t1/devB/cmd/open", b"to B")
    bridge.c.publish("es/v1/t1/devB/state", b"retained B", qos=1, retain=True).wait_for_publish(5)
    bridge.publish("es/v1/t1/members/changes", b"t1 batch")
    bridge.publish("es/v1/t2/members/changes", b"t2 batch")
    settle()
    # (granted wildcard subscriptions overlap, so a message may come more than once)
    assert {p for _t, p in a.messages} == {b"t1 batch", b"to A"}, a.messages
    a.messages.clear()
    a.subscribe("es/v1/t1/devB/state")  # the retained state of another device
    settle()
    assert a.messages == []
    a.close()


def test_other_tenant_device_cannot_read_this_tenants_changes(
        fleet: FleetBroker, bridge: Client) -> None:
    x = Client(fleet, "t2", fleet.identity("t2", "devA"))  # same device id, other tenant
    assert x.connected
    assert x.subscribe("es/v1/t1/members/changes") in EITHER
    assert x.subscribe("es/v1/t1/devA/cmd/+") in EITHER
    assert x.subscribe("es/v1/t2/members/changes") == GRANTED_QOS1
    bridge.publish("es/v1/t1/members/changes", b"t1 only")
    bridge.publish("es/v1/t1/devA/cmd/open", b"t1 devA only")
    settle()
    assert x.messages == []
    x.close()


# the tenant's membership version and its till catalogue (issue 22): retained, signed
@pytest.mark.parametrize("topic", ["es/v1/t1/members/version", "es/v1/t1/till/catalogue"])
def test_tenant_wide_retained_data_is_read_by_the_tenants_devices_and_written_by_bridges_only(
        fleet: FleetBroker, bridge: Client, topic: str) -> None:
    bridge.c.publish(topic, b"v7 from the bridge", qos=1, retain=True).wait_for_publish(5)
    a = Client(fleet, "t1", fleet.identity("t1", "devA"))
    assert a.subscribe(topic) == GRANTED_QOS1
    settle()
    assert a.received(topic) == [b"v7 from the bridge"]  # retained: seen on subscribing
    a.publish(topic, b"forged")  # a device cannot advertise a version
    x = Client(fleet, "t2", fleet.identity("t2", "devX"))
    assert x.subscribe(topic) in EITHER
    settle()
    assert b"forged" not in [p for t, p in bridge.messages if t == topic]
    assert x.messages == []  # nor read another tenant's
    a.close()
    x.close()
    bridge.c.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)


def test_desired_config_is_read_by_its_device_only_and_written_by_bridges_only(
        fleet: FleetBroker, bridge: Client) -> None:
    """Remote configuration: es/v1/t/<device>/config/desired (retained, signed)."""
    own, other = "es/v1/t1/devA/config/desired", "es/v1/t1/devB/config/desired"
    bridge.c.publish(own, b"config for A", qos=1, retain=True).wait_for_publish(5)
    bridge.c.publish(other, b"config for B", qos=1, retain=True).wait_for_publish(5)
    a = Client(fleet, "t1", fleet.identity("t1", "devA"))
    assert a.subscribe(own) == GRANTED_QOS1
    assert a.subscribe(other) in EITHER
    settle()
    assert [p for _t, p in a.messages] == [b"config for A"]  # retained, its own only
    a.publish(own, b"forged")  # a device cannot set its own desired config
    settle()
    assert b"forged" not in [p for t, p in bridge.messages if t == own]
    a.close()
    for topic in (own, other):
        bridge.c.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)


def test_certificates_of_one_tenant_do_not_open_the_other_listener(fleet: FleetBroker) -> None:
    t2_cert = fleet.identity("t2", "devZ")
    wrong = Client(fleet, "t1", t2_cert)
    assert not wrong.connected


def test_client_without_certificate_is_refused(fleet: FleetBroker) -> None:
    anon = Client(fleet, "t1", None)
    assert not anon.connected


def test_session_of_another_device_cannot_be_taken_over(
        fleet: FleetBroker, bridge: Client) -> None:
    """Mosquitto hands a persistent session to whoever presents its client id; the listener
    forces the client id to the certificate CN, so devA asking for 't1/devB' gets its own."""
    b = Client(fleet, "t1", fleet.identity("t1", "devB"), client_id="t1/devB",
               clean_start=False, session_expiry=600)
    assert b.subscribe("es/v1/t1/devB/cmd/+") == GRANTED_QOS1
    b.close()
    settle()
    bridge.publish("es/v1/t1/devB/cmd/open", b"queued for B")
    a = Client(fleet, "t1", fleet.identity("t1", "devA"), client_id="t1/devB",
               clean_start=False, session_expiry=600)
    assert a.connected
    settle()
    assert a.messages == []
    a.close()
    b2 = Client(fleet, "t1", fleet.identity("t1", "devB"), client_id="anything",
                clean_start=False, session_expiry=600)
    settle()
    assert b2.received("es/v1/t1/devB/cmd/open") == [b"queued for B"]
    b2.close()


def test_revoked_certificate_is_refused(tmp_path: Path) -> None:
    broker = FleetBroker(tmp_path).setup({"t1": ()})
    good, revoked = broker.identity("t1", "good"), broker.identity("t1", "lost")
    from cloud_bridge.device_ca import serial_of

    broker.cas["t1"].revoke(serial_of(revoked.cert.read_bytes()))
    broker.start()
    try:
        ok = Client(broker, "t1", good)
        assert ok.connected
        ok.close()
        assert not Client(broker, "t1", revoked).connected
    finally:
        broker.stop()


def test_site_presence_is_written_as_itself_and_read_by_the_tenants_devices(
        fleet: FleetBroker, bridge: Client) -> None:
    """Presence shared between the gates of a site (docs/multi_gate.md)."""
    a = Client(fleet, "t1", fleet.identity("t1", "devA"))
    b = Client(fleet, "t1", fleet.identity("t1", "devB"))
    x = Client(fleet, "t2", fleet.identity("t2", "devX"))
    for c in (a, b):
        assert c.subscribe("es/v1/t1/+/site/presence") == GRANTED_QOS1
        assert c.subscribe("es/v1/t1/+/site/alive") == GRANTED_QOS1
    assert x.subscribe("es/v1/t1/+/site/presence") in EITHER
    a.publish("es/v1/t1/devA/site/presence", b"A's fact")
    a.publish("es/v1/t1/devB/site/presence", b"forged as B")
    a.publish("es/v1/t1/devB/site/alive", b"down")
    a.publish("es/v1/t2/devX/site/presence", b"forged into t2")
    settle()
    assert b.received("es/v1/t1/devA/site/presence") == [b"A's fact"]
    assert [p for _t, p in b.messages if p != b"A's fact"] == []
    assert x.messages == []
    for c in (a, b, x):
        c.close()
