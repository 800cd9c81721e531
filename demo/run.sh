#!/usr/bin/env bash
# The single-site demo: Mosquitto, the cloud bridge on a SQLite file, and an agent with a
# simulated reader/turnstile/display and its embedded SQLite store. Members are created
# through the bridge's API and reach the agent as signed change batches; taps at the agent
# come back to the bridge as events. Ctrl-C stops all three.
#   demo/run.sh          set up, start, create 200 members, tap a few cards, keep running
#   demo/run.sh --once   the same, then check the events reached the bridge and stop
# Ports (loopback only): MQTT $DEMO_MQTT_PORT (18831), bridge API $DEMO_HTTP_PORT (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=demo/data
MQTT_PORT=${DEMO_MQTT_PORT:-18831}
HTTP_PORT=${DEMO_HTTP_PORT:-18080}
TENANT=demo-gym
mkdir -p "$DATA"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# 1. the broker, our own instance on a loopback port (a system Mosquitto may hold 1883)
cat > "$DATA/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
EOF
/usr/sbin/mosquitto -c "$DATA/mosquitto.conf" > "$DATA/mosquitto.log" 2>&1 &
PIDS+=($!)

# 2. the bridge: tenant keys and an API token once, then serve on SQLite
if [[ ! -f "$DATA/bridge-keys/$TENANT/signing.key" ]]; then
  .venv/bin/cloud-bridge tenant create "$TENANT" --keys-dir "$DATA/bridge-keys" >/dev/null
fi
if [[ ! -f "$DATA/api-token" ]]; then
  (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' > "$DATA/api-token")
fi
export BRIDGE_API_TOKEN=$(cat "$DATA/api-token") BRIDGE_TENANT=$TENANT
export BRIDGE_API_URL=http://127.0.0.1:$HTTP_PORT
.venv/bin/cloud-bridge serve --db "sqlite:///$DATA/bridge.sqlite3" --mqtt-port "$MQTT_PORT" \
  --http-port "$HTTP_PORT" --keys-dir "$DATA/bridge-keys" --stats-interval 30 \
  > "$DATA/bridge.log" 2>&1 &
PIDS+=($!)

# 3. the agent, trusting this bridge's tenant key; it also runs with no broker at all
CONFIG=$(.venv/bin/edge-agent demo-config --out "$DATA/agent" --tenant-keys "$DATA/bridge-keys/$TENANT" \
         --mqtt-port "$MQTT_PORT")
export EDGE_AGENT_CONFIG=$CONFIG
.venv/bin/edge-agent run --config "$CONFIG" --plain-logs 2> "$DATA/agent.log" &
PIDS+=($!)
for _ in $(seq 200); do
  [[ -S "$DATA/agent/agent.sock" ]] && curl -sf "$BRIDGE_API_URL/api/v1/health" >/dev/null && break
  sleep 0.1
done

echo "--- 200 members with cards and plans, created through the bridge API"
.venv/bin/edge-sim bridge-members --count 200
echo "--- waiting for the signed change batches to reach the agent"
want=$(curl -sf -H "Authorization: Bearer $BRIDGE_API_TOKEN" "$BRIDGE_API_URL/api/v1/tenants/$TENANT" \
       | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["version"])')
for _ in $(seq 300); do
  have=$(.venv/bin/edge-sim status --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["membership_version"])')
  [[ "$have" -ge "$want" ]] && break
  sleep 0.1
done
echo "agent at membership version $have of $want"
echo "--- a member with a membership taps in, then again (anti-passback), then out"
.venv/bin/edge-sim tap --member 5
sleep 1.6
.venv/bin/edge-sim tap --member 5
.venv/bin/edge-sim tap --member 5 --reader exit
echo "--- a punch card, and a card nobody knows"
.venv/bin/edge-sim tap --member 1
.venv/bin/edge-sim tap 04DEADBEEF0000
.venv/bin/edge-sim status
echo "--- the same taps, as the bridge stored them"
for _ in $(seq 100); do
  stored=$(curl -sf -H "Authorization: Bearer $BRIDGE_API_TOKEN" \
    "$BRIDGE_API_URL/api/v1/tenants/$TENANT/events?limit=100" | .venv/bin/python -c \
    'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e["type"].startswith("access.")))')
  [[ "$stored" -ge 5 ]] && break
  sleep 0.1
done
curl -sf -H "Authorization: Bearer $BRIDGE_API_TOKEN" \
  "$BRIDGE_API_URL/api/v1/tenants/$TENANT/events?limit=100" | .venv/bin/python -c '
import json, sys
for e in json.load(sys.stdin):
    if e["type"].startswith("access."):
        d = e["data"]
        print(e["device"], "seq", e["seq"], e["type"], d.get("reason", ""), d.get("gate", ""), sep="  ")
'
if [[ "${1:-}" == "--once" ]]; then
  [[ "$stored" -ge 5 ]] || { echo "events did not reach the bridge" >&2; exit 1; }
  exit 0
fi
echo "running; in another shell: EDGE_AGENT_CONFIG=$CONFIG .venv/bin/edge-sim tap --member 7"
echo "bridge API: $BRIDGE_API_URL/api/v1/tenants/$TENANT/events (token in $DATA/api-token)"
wait "${PIDS[@]}"
