"""The one strict JSON loader (contracts/strict_json.py) and the agent-side edges that use it."""

from __future__ import annotations

import pytest

from contracts import strict_json
from contracts.strict_json import StrictJsonError
from sync.commands import CommandRouter


@pytest.mark.parametrize(("raw", "word"), [
    (b'{"a": NaN}', "NaN"),
    (b'{"a": [1, Infinity]}', "Infinity"),
    (b'{"a": -Infinity}', "-Infinity"),
    (b'{"a": 1e400}', "out of range"),
    (b'{"a": "x\\ud800"}', "lone surrogate"),
    (b'{"a": "\\udc00y"}', "lone surrogate"),
    (b'{"a": {"b": "x\\u0000"}}', "NUL"),
    (b'{"k\\u0000": 1}', "NUL"),
    (b'{"a": 1' + b"0" * 5000 + b"}", "too long"),
])
def test_values_a_database_cannot_hold_are_refused(raw: bytes, word: str) -> None:
    with pytest.raises(StrictJsonError) as info:
        strict_json.loads(raw)
    assert word in str(info.value) and info.value.syntax is False


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b'{"a": 1', b"[" * 100_000])
def test_what_is_not_json_is_a_syntax_error(raw: bytes) -> None:
    with pytest.raises(StrictJsonError) as info:
        strict_json.loads(raw)
    assert info.value.syntax is True


def test_ordinary_json_passes_unchanged() -> None:
    raw = '{"a": 1.5, "b": [true, null, -2e10], "c": "\\ud83d\\ude00 \\u00e8 \\\\u0000"}'
    assert strict_json.loads(raw.encode()) == {"a": 1.5, "b": [True, None, -2e10],
                                               "c": "\U0001f600 è \\u0000"}


def test_poison_in_names_the_place() -> None:
    found = strict_json.poison_in({"a": [1, {"b": float("nan")}]})
    assert found == "a.1.b: NaN is not allowed in JSON"
    assert strict_json.poison_in({"a": ["ok", 2.5]}) is None


def test_the_agent_refuses_a_command_holding_nan() -> None:
    router = CommandRouter(lambda: 1_000)  # the device's clock, in ms
    ran: list[dict[str, object]] = []
    router.register("open", lambda rid, args: ran.append(args) or {"ok": 1})
    result = router.handle(
        "open", b'{"v": 1, "request_id": "r1", "expires_at": 5000, "args": {"gate": NaN}}')
    assert result["ok"] is False and "NaN" in result["error"] and ran == []
    ok = router.handle("open", b'{"v": 1, "request_id": "r2", "expires_at": 5000, "args": {}}')
    assert ok["ok"] is True
