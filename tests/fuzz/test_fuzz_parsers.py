"""Property-based fuzzing of every parser that takes outside input: reader reads (UIDs,
QR text, signed tokens, SUN URLs and reader extras), MQTT payloads (signed membership
messages, commands, acks), device config files (TOML), and control-socket requests.

The property everywhere: outside input is refused with the module's own error or reason
code, never with a crash, and never changes state it should not. Each test is bounded
(``max_examples``) so the whole suite stays within CI's budget (under a minute on two
cores). Inputs that once broke something stay here as ``@example`` regressions."""

from __future__ import annotations

import base64
import json
import socket
import string
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.config import load_config, parse_config
from agent.credentials.ntag424_sun import SunKeys, emulate_sun
from agent.credentials.read_parser import (
    SUN_EXTRA_KEYS,
    normalise_uid,
    parse_read,
    sun_message_from_url,
)
from agent.errors import ConfigError
from agent.store.local_store import LocalStore
from agent.store.sync_store import MembershipData
from contracts.messages import Ack
from contracts.qr_token import PREFIX, TokenRejected, issue_token, verify_token
from contracts.reasons import Reason
from contracts.signed_envelope import sign_payload
from sync.membership_applier import MembershipApplier, Outcome

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])
HMAC = b"k" * 32
KEY = Ed25519PrivateKey.generate()
SUN = SunKeys.derive(HMAC, "t1")
NOW = 1_780_000_000
HEX = "0123456789abcdefABCDEF"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids,
                                                              max_size=6),
    max_leaves=25,
)


def _is_reason(parsed: Any) -> bool:
    return parsed.problem is None or isinstance(parsed.problem, Reason)


# --- reader input ------------------------------------------------------------------------

def sun_urls() -> st.SearchStrategy[str]:
    names = st.sampled_from(["picc_data", "e", "cmac", "c", "enc", "uid", "x", ""])
    value = st.text(HEX + "%&=?#", max_size=40)
    return st.builds(lambda host, params: f"https://{host}/t?" + "&".join(
        f"{k}={v}" for k, v in params), st.text(string.ascii_lowercase, min_size=1, max_size=8),
        st.lists(st.tuples(names, value), max_size=5))


@FUZZ
@given(kind=st.sampled_from(["uid", "qr", "nfc", ""]),
       value=st.text(max_size=200) | sun_urls()
       | st.text(max_size=160).map(lambda t: PREFIX + t),
       extra=st.lists(st.tuples(st.sampled_from([*SUN_EXTRA_KEYS, "other"]),
                                st.text(HEX + "zZ ", max_size=40)), max_size=3))
@example(kind="qr", value="https://x/?e=" + "0" * 32 + "&enc=&c=" + "0" * 16, extra=[])
@example(kind="qr", value="ES1" + "=" * 10, extra=[])
@example(kind="uid", value="", extra=[("sun_mac_input", "0")])
def test_reads_never_crash_the_parser(kind: str, value: str,
                                      extra: list[tuple[str, str]]) -> None:
    parsed = parse_read(kind, value, HMAC, KEY.public_key(), NOW, SUN, tuple(extra))
    assert _is_reason(parsed)
    if parsed.problem is None:
        assert parsed.lookup_hash is not None or parsed.token is not None
        if kind == "uid" and parsed.sun is None:  # the event reference is no UID
            assert normalise_uid(value) not in (parsed.ref or "").upper()


@FUZZ
@given(text=st.text(max_size=400), case=st.booleans())
def test_token_verifier_only_raises_token_rejected(text: str, case: bool) -> None:
    try:
        verify_token(PREFIX + (text.upper() if case else text), KEY.public_key(), NOW)
    except TokenRejected as exc:
        assert isinstance(exc.reason, Reason)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 151), st.sampled_from(string.ascii_uppercase
                                                                       + "234567")),
                      min_size=1, max_size=4))
def test_any_change_to_a_valid_token_is_refused(flips: list[tuple[int, str]]) -> None:
    token = issue_token(KEY, str(uuid.UUID(int=7)), NOW - 60, NOW + 60, NOW)
    chars = list(token)
    for pos, ch in flips:
        chars[max(pos, len(PREFIX))] = ch
    mutated = "".join(chars)
    if mutated == token:
        verify_token(mutated, KEY.public_key(), NOW)
        return
    with pytest.raises(TokenRejected):
        verify_token(mutated, KEY.public_key(), NOW)


@FUZZ
@given(url=sun_urls() | st.text(max_size=300))
def test_sun_url_parser(url: str) -> None:
    from agent.credentials.ntag424_sun import SunRejected

    try:
        sun_message_from_url(url)
    except SunRejected as exc:
        assert exc.reason is Reason.MALFORMED_CREDENTIAL


@FUZZ
@given(uid=st.binary(min_size=7, max_size=7), counter=st.integers(0, 2**24 - 1),
       bit=st.integers(0, 191))
def test_sun_messages_with_any_bit_flipped_are_refused(uid: bytes, counter: int,
                                                       bit: int) -> None:
    msg = emulate_sun(SUN, uid, counter)
    raw = bytearray(msg.picc_data + msg.sdmmac)
    raw[bit // 8] ^= 1 << (bit % 8)
    url = f"https://g/?picc_data={raw[:16].hex()}&cmac={raw[16:].hex()}"
    parsed = parse_read("qr", url, HMAC, None, NOW, SUN)
    assert parsed.problem is Reason.BAD_SIGNATURE
    good = f"https://g/?picc_data={msg.picc_data.hex()}&cmac={msg.sdmmac.hex()}"
    ok = parse_read("qr", good, HMAC, None, NOW, SUN)
    assert ok.sun is not None and ok.sun.counter == counter and ok.secure


# --- MQTT payloads ------------------------------------------------------------------------

@pytest.fixture
def applier(tmp_path: Path) -> Iterator[MembershipApplier]:
    store = LocalStore(tmp_path / "fuzz.db")
    yield MembershipApplier(MembershipData(store), "t1", KEY.public_key())
    store.close()


def payloads() -> st.SearchStrategy[dict[str, Any]]:
    change = st.fixed_dictionaries(
        {"entity": st.sampled_from(["member", "credential", "entitlement", "x"]),
         "op": st.sampled_from(["upsert", "delete", "?"]),
         "id": st.text(max_size=70)},
        optional={"first_name": st.text(max_size=50), "member_id": st.text(max_size=5),
                  "kind": st.sampled_from(["card", "qr", "membership", "punch_card", "z"]),
                  "hash": st.text("0123456789abcdef", max_size=64),
                  "entries_total": st.integers(-5, 10**12) | st.none(),
                  "windows": json_values, "zones": json_values,
                  "valid_from": st.integers(-2**40, 2**40) | st.none(),
                  "used_by_device": json_values, "blocked": json_values})
    return st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 2, "1"]), "tenant": st.sampled_from(["t1", "t1", "t2"]),
         "kind": st.sampled_from(["changes", "snapshot", "x"])},
        optional={"from_version": st.integers(-1, 3), "to_version": st.integers(-1, 4),
                  "changes": st.lists(change, max_size=4), "snapshot_id": st.text(max_size=3),
                  "version": st.integers(-1, 3), "chunk": st.integers(-1, 2),
                  "chunks": st.integers(-1, 3), "members": json_values,
                  "credentials": json_values, "entitlements": json_values,
                  "extra": json_values})


@FUZZ
@given(message=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
       | payloads().map(lambda p: sign_payload(KEY, p))
       | payloads().map(lambda p: sign_payload(Ed25519PrivateKey.generate(), p)))
@example(message=b'{"v": 1, "payload": "", "sig": ""}')
@example(message=b'{"v": 1, "payload": "!!", "sig": "AAAA"}')
def test_membership_messages_never_crash_the_applier(applier: MembershipApplier,
                                                     message: bytes) -> None:
    before = applier.store.membership_version()
    result = applier.handle(message)
    assert isinstance(result.outcome, Outcome)
    if result.outcome is Outcome.REJECTED:
        assert applier.store.membership_version() == before


@FUZZ
@given(payload=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@example(payload=b'{"v": 1, "acked_seq": 18446744073709551616}')
def test_ack_parser(payload: bytes) -> None:
    try:
        ack = Ack.model_validate_json(payload)
    except ValidationError:
        return
    assert ack.acked_seq >= 0


@pytest.fixture
def daemon(tmp_path: Path, write_config: Callable[..., Path]) -> Iterator[Any]:
    from agent.daemon import AgentDaemon

    d = AgentDaemon(load_config(write_config()))
    d.start()
    yield d
    d.stop()


# a valid expiry for as long as the test runs (the lifetime caps allow ten minutes)
FAR_FUTURE_MS = int(time.time() * 1000) + 300_000


@FEW
@given(name=st.sampled_from(["open", "reload", "resend-state", "print", "reprint",
                             "print-record-card", "", "x" * 100, "open/../x"]),
       body=json_values | st.fixed_dictionaries(
           {"v": st.sampled_from([1, 2]), "request_id": st.text(max_size=80)},
           optional={"expires_at": st.sampled_from([0, 2**62, "9", 1.5, True, FAR_FUTURE_MS,
                                                   FAR_FUTURE_MS - 280_000]),
                     "args": st.fixed_dictionaries({}, optional={
               "gate": st.sampled_from(["g1", "g9", "", None]),
               "direction": st.sampled_from(["in", "out", "up", 3]),
               "invoice_id": st.sampled_from(["P1-BLAG1-1", "", 7, None]),
               "card": st.sampled_from([{}, {"register_no": "1"}, "x", None])})}),
       raw=st.none() | st.binary(max_size=100))
def test_commands_never_crash_the_router(daemon: Any, name: str, body: Any,
                                          raw: bytes | None) -> None:
    from agent.remote_commands import daemon_commands

    router = daemon_commands(daemon, lambda: None)
    result = router.handle(name, raw if raw is not None else json.dumps(body).encode())
    assert result["v"] == 1 and isinstance(result["ok"], bool)
    assert "internal error" not in str(result.get("error", "")), result


# --- config files -------------------------------------------------------------------------

def toml_docs() -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.none().filter(lambda _: False) | st.booleans() | st.integers(-10, 10**6) \
        | st.text(max_size=20) | st.floats(allow_nan=False, allow_infinity=False)
    table = st.dictionaries(st.sampled_from(
        ["id", "url", "gate", "zone", "direction", "pulse_ms", "display", "terminal",
         "require_secure_card", "host", "port", "tls_ca", "credential_hmac_key",
         "tenant_public_key", "anti_passback", "occupancy_limit", "x"]), scalar, max_size=5)
    return st.fixed_dictionaries(
        {"tenant": st.sampled_from(["t1", "", "t 1", 5]), "device": st.just("d1"),
         "site": st.just("s1")},
        optional={"keys": st.fixed_dictionaries(
            {"credential_hmac_key": st.sampled_from(
                ["base64:" + base64.b64encode(b"k" * 32).decode(), "hex:00", "file:nope",
                 "file:/etc/shadow", "rot13:x", ""])}),
            "gates": st.lists(table, max_size=3), "readers": st.lists(table, max_size=3),
            "mqtt": table, "site_policy": table, "timezone": st.text(max_size=20),
            "durability": st.text(max_size=8)})


@FUZZ
@given(doc=toml_docs() | st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_config_parser_only_raises_config_error(doc: dict[str, Any]) -> None:
    try:
        parse_config(doc, "fuzz.toml")
    except ConfigError as exc:
        assert "fuzz.toml" in str(exc)


@FEW
@given(text=st.text(max_size=300) | st.binary(max_size=200).map(
    lambda b: b.decode("latin-1")))
@example(text='tenant = "t1"\ndevice = "d"\nsite = "s"\n[keys]\ncredential_hmac_key = "file:."')
def test_config_files_only_raise_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(ConfigError):
        load_config(path)


# --- control socket -----------------------------------------------------------------------

@FEW
@given(line=st.binary(max_size=300).filter(lambda b: b"\n" not in b)
       | json_values.map(lambda v: json.dumps(v).encode())
       | st.fixed_dictionaries({"op": st.sampled_from(
           ["status", "present", "members.count", "members.load", "nope", ""])},
           optional={"reader": json_values, "kind": json_values, "value": json_values,
                     "members": st.lists(json_values, max_size=2)})
       .map(lambda d: json.dumps(d).encode()))
@example(line=b'{"op": "present", "reader": "entry", "kind": "uid", "value": null}')
@example(line=b'{"op": "members.load", "members": [{}]}')
def test_control_socket_answers_every_line(daemon: Any, tmp_path: Path, line: bytes) -> None:
    from agent.control_socket import ControlServer

    server = getattr(daemon, "_fuzz_server", None)
    if server is None:
        server = ControlServer(tmp_path / "fuzz.sock", daemon)
        server.start()
        daemon._fuzz_server = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(tmp_path / "fuzz.sock"))
        s.sendall(line + b"\n")
        reply = s.makefile("rb").readline()
    answer = json.loads(reply)
    assert isinstance(answer.get("ok"), bool), answer


def test_a_token_with_its_padding_bits_set_is_refused() -> None:
    token = issue_token(KEY, str(uuid.UUID(int=7)), NOW - 60, NOW + 60, NOW)
    # 93 bytes in base32 leave one unused bit in the last character: flip only that bit
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    last = alphabet[alphabet.index(token[-1]) ^ 1]
    with pytest.raises(TokenRejected) as refused:
        verify_token(token[:-1] + last, KEY.public_key(), NOW)
    assert "canonical" in str(refused.value)
