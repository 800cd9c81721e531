"""`cloud-bridge serve` refuses a database it cannot open and a keys folder it cannot use
with ONE line naming the option, the problem and the fix (never the password), exit 2.
Real processes; nothing starts listening before the checks pass."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_cli_errors import drop_root_write_anywhere


def serve(tmp_path: Path, *args: str, preexec: Callable[[], None] | None = None
          ) -> subprocess.CompletedProcess[str]:
    """The bridge with an HTTP port (so the web pages' needs are checked) that it never
    reaches: every case here must stop at the checks."""
    base = ["--insecure-dev", "--http-port", "1", "--mqtt-port", "1",
            "--db", f"sqlite:///{tmp_path / 'ok.sqlite3'}", "--keys-dir", str(tmp_path / "keys")]
    return subprocess.run([sys.executable, "-m", "cloud_bridge", "serve", *base, *args],
                          capture_output=True, text=True, timeout=30, preexec_fn=preexec)


def one_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize(("db", "problem"), [
    ("nonsense", "not a database URL"),
    ("mysql://u@127.0.0.1/db", "unsupported database 'mysql'"),
    ("sqlite:////nonexistent-folder/b.sqlite3", "unable to open database file"),
    ("postgresql://u:s3cret-pw@127.0.0.1:1/db", "Connection refused"),
])
def test_a_bad_db_url_is_one_line(tmp_path: Path, db: str, problem: str) -> None:
    line = one_line(serve(tmp_path, "--db", db), "--db", problem, "fix: give --db")
    assert "s3cret-pw" not in line


def test_a_keys_dir_that_is_a_file_or_under_one(tmp_path: Path) -> None:
    a_file = tmp_path / "keys-file"
    a_file.write_text("x")
    one_line(serve(tmp_path, "--keys-dir", str(a_file)), "--keys-dir", "is a file", "fix:")
    one_line(serve(tmp_path, "--keys-dir", str(a_file / "keys")), "--keys-dir",
             "Not a directory", "fix:")


def test_an_unwritable_keys_dir(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the folder to another user")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    os.chown(keys, 65534, 65534)  # nobody's; the bridge runs as root without DAC override
    one_line(serve(tmp_path, "--keys-dir", str(keys), preexec=drop_root_write_anywhere),
             "--keys-dir", "cannot write in the folder (Permission denied)", "--no-web")


@pytest.mark.parametrize("url", ["ftp://gym.example.si", "gym.example.si",
                                 "https://gym.example.si/?x=1", "https://gym.example.si/#k"])
def test_a_public_url_members_cannot_use_is_refused(tmp_path: Path, url: str) -> None:
    one_line(serve(tmp_path, "--public-url", url), "--public-url", "https://gym.example.si")
