"""`edge-agent check-config` and `edge-agent run` refuse what cannot work with ONE line
that names the key, the problem and the fix, and exit code 2: never a traceback.
Real processes, real files; "unwritable" is made real for root by dropping the
capability that lets root write anywhere (CAP_DAC_OVERRIDE) in the child."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def agent(*args: str, preexec: Callable[[], None] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=60, preexec_fn=preexec)


def one_clear_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def with_data_dir(config: Path, data_dir: Path | str, extra: str = "") -> Path:
    text = config.read_text()
    start = text.index("data_dir = ")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'data_dir = "{data_dir}"' + extra + text[end:])
    return config


# -- check-config ----------------------------------------------------------------------


def test_deeply_nested_toml_is_refused_naming_the_key(write_config: Callable[..., Path]
                                                      ) -> None:
    path = write_config()
    text = path.read_text()
    for value in ("[" * 5000 + "]" * 5000, "{a=" * 3000 + "1" + "}" * 3000):
        path.write_text(text.replace('site = "s1"', f'site = "s1"\nsauna_options = {value}'))
        line = one_clear_line(agent("check-config", str(path)), str(path), "sauna_options",
                              "nested too deeply", "fix:")
        assert "RecursionError" not in line
    # deep, but not too deep for the parser: the validator names the path
    path.write_text(text.replace('site = "s1"', 'site = "s1"\nx = ' + "[" * 40 + "]" * 40))
    one_clear_line(agent("check-config", str(path)), "x[0][0]", "nested more than 16", "fix:")


@pytest.mark.parametrize(("line", "key"), [
    ('timezone = "Europe"', "timezone"),  # a folder of the zone database: OSError
    ('timezone = "' + "a" * 5000 + '"', "timezone"),  # "File name too long"
    ('data_dir = "data\\u0000x"', "data_dir"),
])
def test_values_that_crashed_the_loader_are_explained(
        write_config: Callable[..., Path], line: str, key: str) -> None:
    path = write_config()
    text = path.read_text()
    text = "\n".join(t for t in text.splitlines() if not t.startswith(key + " ="))
    path.write_text(line + "\n" + text)
    one_clear_line(agent("check-config", str(path)), key)


@pytest.mark.parametrize("value", ["hex:zz", "not-a-key", "file:\\u0000"])
def test_a_bad_device_signing_key_is_explained(write_config: Callable[..., Path],
                                               value: str) -> None:
    path = write_config()
    path.write_text(path.read_text().replace(
        "[keys]\n", f'[keys]\ndevice_signing_key = "{value}"\n'))
    one_clear_line(agent("check-config", str(path)), "keys.device_signing_key")


def test_a_socket_path_over_108_bytes_is_refused(write_config: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 100)
    path = with_data_dir(write_config(), long_dir)
    for command in (["check-config", str(path)], ["run", "-c", str(path)]):
        one_clear_line(agent(*command), "control.socket", "Unix socket allows (107)",
                       "fix: set control.socket")
    assert not (long_dir / "agent.sock").exists()
    # the fix named in the message works
    short = tmp_path / "s.sock"
    text = path.read_text()
    path.write_text(text.replace("[keys]", f'[control]\nsocket = "{short}"\n\n[keys]'))
    assert agent("check-config", str(path)).returncode == 0


# -- run: the data folder ------------------------------------------------------------------


def test_run_with_a_data_dir_that_is_a_file(write_config: Callable[..., Path],
                                            tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    path = with_data_dir(write_config(), a_file)
    one_clear_line(agent("run", "-c", str(path)), "data_dir", "is a file, not a folder",
                   "fix:")
    # a data dir under a file (its parent cannot become a folder)
    path = with_data_dir(path, a_file / "data")
    one_clear_line(agent("run", "-c", str(path)), "data_dir", f"{a_file} is a file",
                   "fix:")
    assert a_file.read_text() == "not a folder"


def test_run_with_a_data_dir_on_a_read_only_path(write_config: Callable[..., Path]) -> None:
    path = with_data_dir(write_config(), "/proc/self/edge-agent-data")
    one_clear_line(agent("run", "-c", str(path)), "data_dir", "cannot create", "fix:")


def drop_root_write_anywhere() -> None:
    """In the child: drop the capabilities that let root ignore file permissions from
    the bounding set, so the exec'd agent is root bound by modes like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_run_with_an_unwritable_data_dir(write_config: Callable[..., Path],
                                         tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the folder to another user")
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chown(data, 65534, 65534)  # nobody's: the agent (root without DAC override) can't write
    path = with_data_dir(write_config(), data)
    try:
        proc = agent("run", "-c", str(path), preexec=drop_root_write_anywhere)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop capabilities here: {exc}")
    one_clear_line(proc, "data_dir", f"cannot write in {data}", "Permission denied",
                   "fix: chown edge-agent:")
    assert not any(data.iterdir())
    shutil.rmtree(data)
