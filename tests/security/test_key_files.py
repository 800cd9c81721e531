"""Key files given as ``file:`` in the device config must be readable by the service user
only; the refusal says how to fix it and never shows the key."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError


def config_with_key_file(write_config: Callable[..., Path], tmp_path: Path, mode: int) -> Path:
    key = tmp_path / "keys" / "hmac.key"
    key.parent.mkdir()
    key.write_text(base64.b64encode(b"S3cr3tKeyMaterial-0123456789abcd").decode())
    key.chmod(mode)
    cfg = write_config()
    text = cfg.read_text()
    start = text.index('credential_hmac_key = "')
    end = text.index('"', start + len('credential_hmac_key = "'))
    cfg.write_text(text[:start] + f'credential_hmac_key = "file:{key}' + text[end:])
    return cfg


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_key_file_open_to_group_or_others_is_refused(
        write_config: Callable[..., Path], tmp_path: Path, mode: int) -> None:
    cfg = config_with_key_file(write_config, tmp_path, mode)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert "keys.credential_hmac_key" in msg and f"{mode:04o}" in msg
    assert "chmod 600" in msg and "chown edge-agent" in msg
    assert "S3cr3t" not in msg and base64.b64encode(b"S3cr3tKey").decode()[:8] not in msg


def test_key_file_for_the_service_user_only_loads(write_config: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    cfg = config_with_key_file(write_config, tmp_path, 0o600)
    assert load_config(cfg).hmac_key().startswith(b"S3cr3t")
    (tmp_path / "keys" / "hmac.key").chmod(0o400)
    assert load_config(cfg).hmac_key().startswith(b"S3cr3t")


def test_a_directory_is_not_a_key_file(write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = config_with_key_file(write_config, tmp_path, 0o600)
    (tmp_path / "keys" / "hmac.key").unlink()
    (tmp_path / "keys" / "hmac.key").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(cfg)
