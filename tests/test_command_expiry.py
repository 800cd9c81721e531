"""Every remote command carries an expiry; the device's router refuses a stale one
(``expired``), one without an expiry, and one valid for longer than its class allows,
all by the device's own clock (contracts/command_expiry.py, docs/security.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.command_expiry import (
    EXPIRED,
    MAX_LIFETIME_S,
    CommandLifetimes,
    command_class,
    command_payload,
)
from sync.commands import CommandRouter

NOW = 1_780_000_000_000  # the device's clock in these tests, epoch ms


class Recorder:
    """The handlers: they record what ran (a real gate is tested in the e2e test)."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str, dict[str, Any]]] = []

    def handler(self, name: str) -> Any:
        def run(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
            self.ran.append((name, request_id, args))
            return {"done": True}
        return run


@pytest.fixture
def clock() -> list[int]:
    return [NOW]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def router(clock: list[int], recorder: Recorder) -> CommandRouter:
    r = CommandRouter(lambda: clock[0])
    for name in ("open", "print", "reprint", "print-record-card", "reload", "resend-state"):
        r.register(name, recorder.handler(name))
    return r


def body(expires_at: Any = ..., request_id: str = "r1", **args: Any) -> bytes:
    msg: dict[str, Any] = {"v": 1, "request_id": request_id, "args": args}
    if expires_at is not ...:
        msg["expires_at"] = expires_at
    return json.dumps(msg).encode()


def test_a_valid_command_runs(router: CommandRouter, recorder: Recorder) -> None:
    result = router.handle("open", command_payload("r1", {"gate": "g1"}, NOW + 10_000))
    assert result == {"v": 1, "request_id": "r1", "name": "open", "ok": True,
                      "result": {"done": True}}
    assert recorder.ran == [("open", "r1", {"gate": "g1"})]


@pytest.mark.parametrize("late_ms", [0, 1, 11_000, 86_400_000])
def test_a_stale_command_is_refused_as_expired_and_not_run(
        router: CommandRouter, recorder: Recorder, late_ms: int) -> None:
    result = router.handle("open", body(NOW - late_ms, gate="g1"))
    assert result["ok"] is False and result["error"] == EXPIRED
    assert result["request_id"] == "r1" and result["name"] == "open"
    assert result["result"] == {"expires_at": NOW - late_ms, "device_time": NOW}
    assert recorder.ran == []


def test_expiry_is_checked_when_the_command_is_read_not_when_it_was_sent(
        router: CommandRouter, recorder: Recorder, clock: list[int]) -> None:
    payload = body(NOW + 10_000, gate="g1")  # sent now, valid for 10 s
    clock[0] = NOW + 11_000  # the device reads it 11 s later (link was down)
    assert router.handle("open", payload)["error"] == EXPIRED
    clock[0] = NOW + 9_999
    assert router.handle("open", payload)["ok"] is True
    assert len(recorder.ran) == 1


@pytest.mark.parametrize("bad, why", [
    (..., "expires_at: Field required"),
    (None, "expires_at: Input should be a valid integer"),
    (str(NOW + 5000), "expires_at: Input should be a valid integer"),
    (float(NOW + 5000), "expires_at: Input should be a valid integer"),
    (True, "expires_at: Input should be a valid integer"),
    (-1, "expires_at: Input should be greater than or equal to 0"),
    (2**60, "expires_at: Input should be less than or equal to"),
])
def test_a_command_without_a_proper_expiry_is_refused(
        router: CommandRouter, recorder: Recorder, bad: Any, why: str) -> None:
    result = router.handle("open", body(bad, gate="g1"))
    assert result["ok"] is False and why in result["error"], result
    assert result["request_id"] == "r1"  # the office can still match the refusal
    assert recorder.ran == []


@pytest.mark.parametrize("name", ["open", "print", "reprint", "print-record-card", "reload",
                                  "resend-state"])
def test_an_expiry_beyond_the_class_limit_is_refused_not_capped(
        router: CommandRouter, recorder: Recorder, name: str) -> None:
    limit_ms = MAX_LIFETIME_S[command_class(name)] * 1000
    assert router.handle(name, body(NOW + limit_ms))["ok"] is True
    refused = router.handle(name, body(NOW + limit_ms + 1000))
    assert refused["ok"] is False and "may stay valid" in refused["error"]
    assert len(recorder.ran) == 1


def test_the_classes_and_their_limits() -> None:
    assert command_class("open") == "physical"
    assert {command_class(n) for n in ("print", "reprint", "print-record-card")} == {"printing"}
    assert command_class("reload") == command_class("resend-state") == "other"
    assert MAX_LIFETIME_S == {"physical": 60, "printing": 3600, "other": 600}


def test_device_clock_skew_rule(router: CommandRouter, recorder: Recorder,
                                clock: list[int]) -> None:
    """The bridge stamps ``expires_at`` by its clock, the device checks by its own."""
    sent = command_payload("r1", {"gate": "g1"}, NOW + 10_000)  # bridge: now, 10 s
    clock[0] = NOW + 15_000  # device clock 15 s ahead: refused at once, nothing moves
    assert router.handle("open", sent)["error"] == EXPIRED
    clock[0] = NOW - 30_000  # 30 s behind: accepted, the window is 40 s on its clock
    assert router.handle("open", sent)["ok"] is True
    clock[0] = NOW - 55_000  # so far behind that 10 s look like 65 s: refused
    assert "may stay valid" in router.handle("open", sent)["error"]
    assert len(recorder.ran) == 1


def test_unknown_and_expired_says_expired_first(router: CommandRouter) -> None:
    # nothing about the device's handlers is revealed for a stale command
    assert router.handle("self-destruct", body(NOW - 1))["error"] == EXPIRED
    assert "unknown command" in router.handle("self-destruct", body(NOW + 1000))["error"]


def test_bridge_lifetimes_defaults_and_bounds() -> None:
    lifetimes = CommandLifetimes()
    assert (lifetimes.physical_s, lifetimes.printing_s, lifetimes.other_s) == (10, 600, 60)
    assert lifetimes.expires_at_ms("open", NOW) == NOW + 10_000
    assert lifetimes.expires_at_ms("print-record-card", NOW) == NOW + 600_000
    assert lifetimes.expires_at_ms("reload", NOW) == NOW + 60_000
    assert CommandLifetimes(physical_s=60).expires_at_ms("open", NOW) == NOW + 60_000
    for bad in ({"physical_s": 0}, {"physical_s": 61}, {"printing_s": 3601},
                {"other_s": 601}):
        with pytest.raises(ValueError, match="devices refuse longer ones"):
            CommandLifetimes(**bad)


def test_what_the_bridge_sends_is_what_the_router_accepts(router: CommandRouter) -> None:
    lifetimes = CommandLifetimes()
    for name in ("open", "print", "reload"):
        payload = command_payload("r9", {}, lifetimes.expires_at_ms(name, NOW))
        assert json.loads(payload)["expires_at"] == lifetimes.expires_at_ms(name, NOW)
        assert router.handle(name, payload)["ok"] is True


def test_the_bridge_refuses_to_start_with_a_lifetime_devices_would_refuse(
        tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from cloud_bridge.cli import app

    result = CliRunner().invoke(app, [
        "serve", "--db", f"sqlite:///{tmp_path / 'b.sqlite3'}", "--http-port", "0",
        "--cmd-expiry-physical", "61"])
    assert result.exit_code == 2
    assert "physical command lifetime must be 1..60 s" in result.output
    assert not (tmp_path / "b.sqlite3").exists()  # refused before anything was opened
