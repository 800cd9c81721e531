#!/usr/bin/env bash
# The single-site demo: an agent with simulated reader/turnstile/display, an embedded
# SQLite store and a synthetic membership set. Ctrl-C stops it.
#   demo/run.sh          set up, start, load 1000 members, tap a few cards, keep running
#   demo/run.sh --once   the same, then stop (a smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CONFIG=$(.venv/bin/edge-agent demo-config --out demo/data)
export EDGE_AGENT_CONFIG=$CONFIG
.venv/bin/edge-agent run --config "$CONFIG" --plain-logs &
AGENT=$!
trap 'kill -TERM $AGENT 2>/dev/null; wait $AGENT 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -S demo/data/agent.sock ]] && break; sleep 0.1; done
.venv/bin/edge-sim members --count 1000
echo "--- a member with a membership taps in, then again (anti-passback), then out"
.venv/bin/edge-sim tap --member 5
sleep 1.6
.venv/bin/edge-sim tap --member 5
.venv/bin/edge-sim tap --member 5 --reader exit
echo "--- a punch card, and a card nobody knows"
.venv/bin/edge-sim tap --member 1
.venv/bin/edge-sim tap 04DEADBEEF0000
.venv/bin/edge-sim status
if [[ "${1:-}" == "--once" ]]; then exit 0; fi
echo "agent running; in another shell: EDGE_AGENT_CONFIG=$CONFIG .venv/bin/edge-sim tap --member 7"
echo "watch the gate: EDGE_AGENT_CONFIG=$CONFIG .venv/bin/edge-sim gate   (Ctrl-C here stops)"
wait $AGENT
