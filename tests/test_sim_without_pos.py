"""edge-sim works on a device without the pos extra (no pyjwt); only its FURS endpoint
says what to install (found on the arm64 image, which installs device extras only)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.modules["jwt"] = None  # as if pyjwt were not installed
from typer.testing import CliRunner
from simulators.cli import app
runner = CliRunner()
assert runner.invoke(app, ["--help"]).exit_code == 0
furs = runner.invoke(app, ["furs", "serve"])
print(furs.exit_code, furs.output.strip())
"""


def test_edge_sim_without_pyjwt_explains_the_furs_endpoint() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=True)
    code, _, text = done.stdout.strip().partition(" ")
    assert code == "2", done.stdout
    assert "pip install 'edge-suite[pos]'" in text + done.stderr
