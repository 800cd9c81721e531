"""agent/cli_errors.py: the device side's three error roots (EdgeError, DriverError,
ContractError) map once to an exit code and one line, for edge-agent and edge-sim."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.cli_errors import EXIT_REFUSED, EXIT_UNREACHABLE, refuses_device_errors
from agent.control_client import AgentUnreachable
from agent.errors import ConfigError
from contracts.errors import BadInput
from drivers.errors import PrinterError
from tests.agent_process import edge_sim


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("agent.toml: readers[1].direction: must be 'in' or 'out'\nfix: edit it"),
     EXIT_REFUSED),
    (PrinterError("printer 'lp' does not answer"), EXIT_REFUSED),  # drivers' root
    (BadInput("value must be a string"), EXIT_REFUSED),  # the contracts' root
    (AgentUnreachable("no agent is listening on /run/x.sock"), EXIT_UNREACHABLE),
])
def test_each_root_maps_to_one_line_and_its_exit_code(error: Exception, code: int) -> None:
    app = typer.Typer()

    @app.command()
    @refuses_device_errors("cannot start:")
    def run(count: int = typer.Option(1)) -> None:
        raise error

    done = CliRunner().invoke(app, ["--count", "2"])
    assert done.exit_code == code, done.output
    line = one_line(done.stderr)
    # the message as it is: no markup read from [1], line breaks folded
    assert line == "cannot start: " + " ".join(str(error).split()), line


def test_other_exceptions_are_not_swallowed() -> None:
    app = typer.Typer()

    @app.command()
    @refuses_device_errors("x:")
    def run() -> None:
        raise RuntimeError("a bug")

    done = CliRunner().invoke(app, [])
    assert isinstance(done.exception, RuntimeError)


def test_edge_sim_without_an_agent_exits_3(write_config: Callable[..., Path]) -> None:
    done = edge_sim("status", config=write_config())
    assert done.returncode == EXIT_UNREACHABLE
    assert "no agent is listening on" in one_line(done.stderr)


def test_edge_sim_with_a_broken_config_exits_2(write_config: Callable[..., Path]) -> None:
    path = write_config()
    path.write_text(path.read_text().replace('direction = "out"', "direction = 7"))
    done = edge_sim("tap", "04AA", config=path)
    assert done.returncode == EXIT_REFUSED
    assert "readers[1].direction" in one_line(done.stderr)


def test_run_with_a_busy_metrics_port_is_one_line_and_leaves_nothing(
        write_config: Callable[..., Path]) -> None:
    path = write_config()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "agent", "run", "-c", str(path),
                               "--metrics", f"127.0.0.1:{busy}"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_REFUSED and "Traceback" not in done.stderr, done.stderr
    # the log lines (JSON) go to stderr too; the refusal is the one plain line after them
    plain = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1 and plain[0].startswith("cannot start: "), plain
    assert not (path.parent / "data" / "agent.sock").exists()


def test_every_device_error_root_has_an_exit_code() -> None:
    from agent.cli_errors import EXIT_CODES, exit_code
    from agent.errors import DEVICE_ERRORS

    assert {cls for cls, _ in EXIT_CODES} >= set(DEVICE_ERRORS)
    for root in DEVICE_ERRORS:
        assert exit_code(root("x")) == EXIT_REFUSED
