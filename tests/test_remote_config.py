"""The rules of what a desired config may carry (contracts/remote_config.py), as the
bridge applies them before storing one: the device-config schema, no device-local
sections, no secrets in clear; and the merge the device does with its own config."""

from __future__ import annotations

import pytest

from contracts.device_config import DeviceConfigError
from contracts.remote_config import check_desired_config, merge_desired, secrets_in_clear

GOOD = {
    "site": "s1",
    "gates": [{"id": "g1", "url": "sim:"}],
    "readers": [{"id": "entry", "url": "sim:", "gate": "g1"}],
}


def test_a_good_config_passes_without_keys_and_gets_no_identity() -> None:
    out = check_desired_config({**GOOD, "tenant": "t1", "device": "d1"}, "t1", "d1")
    assert out == GOOD


@pytest.mark.parametrize(("raw", "named"), [
    ({**GOOD, "keys": {"credential_hmac_key": "base64:" + "A" * 44}},
     "keys.credential_hmac_key: a secret in clear"),
    ({**GOOD, "keys": {"credential_hmac_key": "file:k", "device_signing_key": "hex:00"}},
     "keys.device_signing_key: a secret in clear"),
    ({**GOOD, "printers": [{"id": "p1", "url": "escpos-net:10.0.0.5", "api_token": "s3"}]},
     "printers[0].api_token: a secret in clear"),
    ({**GOOD, "readers": [{"id": "entry", "url": "sim:", "gate": "g1",
                           "scbk_key": "00112233"}]},
     "readers[0].scbk_key: a secret in clear"),
])
def test_secrets_in_clear_are_refused_by_name(raw: dict[str, object], named: str) -> None:
    with pytest.raises(DeviceConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        check_desired_config(raw, "t1", "d1")


def test_secret_values_are_not_echoed() -> None:
    secret = "base64:" + "Zm9vYmFyYmF6cXV4cXV1eHh4eHg="
    with pytest.raises(DeviceConfigError) as exc:
        check_desired_config({**GOOD, "keys": {"credential_hmac_key": secret}}, "t1", "d1")
    assert secret not in str(exc.value)


def test_key_files_are_allowed() -> None:
    raw = {**GOOD, "keys": {"credential_hmac_key": "file:keys/credential_hmac.key"},
           "printers": [{"id": "p1", "url": "sim:", "password": "file:/etc/p"}]}
    assert secrets_in_clear(raw) == []
    check_desired_config(raw, "t1", "d1")


@pytest.mark.parametrize("local", ["mqtt", "data_dir", "control"])
def test_device_local_sections_are_refused(local: str) -> None:
    value: object = "x" if local == "data_dir" else {}
    with pytest.raises(DeviceConfigError, match=f"{local}: .*leave it out"):
        check_desired_config({**GOOD, local: value}, "t1", "d1")


def test_schema_errors_name_the_key() -> None:
    bad = {**GOOD, "readers": [{"id": "entry", "url": "sim:", "gate": "nope"}]}
    with pytest.raises(DeviceConfigError, match=r"readers\[0\]\.gate: 'nope' is not a gate id"):
        check_desired_config(bad, "t1", "d1")
    with pytest.raises(DeviceConfigError, match=r"site_policy\.occupancy_limt: unknown key"):
        check_desired_config({**GOOD, "site_policy": {"occupancy_limt": 3}}, "t1", "d1")


def test_another_devices_identity_is_refused() -> None:
    with pytest.raises(DeviceConfigError, match="device: is 'd2'"):
        check_desired_config({**GOOD, "device": "d2"}, "t1", "d1")


def test_nulls_mean_defaults() -> None:
    out = check_desired_config({**GOOD, "local_http": None,
                                "readers": [{"id": "entry", "url": "sim:", "gate": "g1",
                                             "terminal": None}]}, "t1", "d1")
    assert "local_http" not in out and "terminal" not in out["readers"][0]


def test_merge_keeps_what_the_device_owns() -> None:
    current = {"tenant": "t1", "device": "d1", "site": "old", "data_dir": "/var/lib/x",
               "keys": {"credential_hmac_key": "base64:abc"}, "mqtt": {"host": "b"},
               "readers": []}
    merged = merge_desired(GOOD, current)
    assert merged["keys"] == current["keys"] and merged["mqtt"] == {"host": "b"}
    assert merged["data_dir"] == "/var/lib/x" and merged["site"] == "s1"
    assert merged["readers"] == GOOD["readers"]
    with_files = merge_desired({**GOOD, "keys": {"credential_hmac_key": "file:k"}}, current)
    assert with_files["keys"] == {"credential_hmac_key": "file:k"}


def test_too_deep_or_too_big_is_refused_not_a_crash() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with pytest.raises(DeviceConfigError, match="nested more than 16 levels"):
        check_desired_config({**GOOD, "readers": [{**GOOD["readers"][0], "o": deep}]},
                             "t1", "d1")
    big = {**GOOD, "gates": [{"id": "g1", "url": "sim:", "note": "x" * 200_000}]}
    with pytest.raises(DeviceConfigError, match="bytes is more than the"):
        check_desired_config(big, "t1", "d1")
