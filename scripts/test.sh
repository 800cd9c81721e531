#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layers and the pure contracts ([tool.importlinter])
.venv/bin/mypy  # --strict on every product package ([tool.mypy])
mkdir -p test-artifacts
# two workers (pytest-xdist), a test file each at a time (module fixtures set up once); tests
# sharing something machine-wide take turns (tests/machine_lock.py); EDGE_TEST_WORKERS=0: one process
.venv/bin/python -m pytest -q -n "${EDGE_TEST_WORKERS:-2}" --dist loadfile "$@"
