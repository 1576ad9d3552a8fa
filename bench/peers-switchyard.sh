#!/usr/bin/env bash
# The official side-by-side load test (../shared/bench/peers.sh) with Switchyard as GATEWAY.
#
#   bash bench/peers-switchyard.sh                       # Switchyard vs direct and nginx
#   PEERS="nginx portkey litellm" bash bench/peers-switchyard.sh   # the full comparison
#
# Builds the release binary, starts `switchyard simulate` as the UPSTREAM (fast mode,
# OpenAI-compatible at /v1, model `bench`), starts `switchyard serve` on a temporary config
# that routes `bench` to it (openai provider, locality local, logging at warn as nginx runs
# with access_log off), runs peers.sh with GATEWAY pointing at it, prints the gateway's peak
# RSS (VmHWM) afterwards and stops everything it started.
#
# Env: PEERS (default "nginx"), C, D, CACHE (passed on to peers.sh), PEERS_SH (path of
# peers.sh, default ../shared/bench/peers.sh from the workspace root), UPSTREAM_PORT (18080),
# GATEWAY_PORT (4141), SKIP_BUILD=1 (use the existing target/release/switchyard), SIM_CHUNKS
# (chunks per simulated answer, e.g. 20 as the reference upstream; default: a short greeting).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PEERS_SH=${PEERS_SH:-$root/../shared/bench/peers.sh}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
GATEWAY_PORT=${GATEWAY_PORT:-4141}
export PEERS=${PEERS:-nginx}
[ -f "$PEERS_SH" ] || { echo "peers.sh not found at $PEERS_SH (set PEERS_SH)" >&2; exit 2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$root" && cargo build --release -q -p switchyard)
fi
bin=$root/target/release/switchyard
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 2; }

work=$(mktemp -d); pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
wait_port() {
  for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2; return 1
}
for port in "$UPSTREAM_PORT" "$GATEWAY_PORT"; do
  if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (set UPSTREAM_PORT / GATEWAY_PORT)" >&2; exit 2
  fi
done

"$bin" simulate --listen "127.0.0.1:$UPSTREAM_PORT" --model bench ${SIM_CHUNKS:+--chunks "$SIM_CHUNKS"} >"$work/simulate.log" 2>&1 &
pids+=($!)
wait_port "$UPSTREAM_PORT"

cat > "$work/switchyard.json5" <<JSON5
{
  server: { listen: "127.0.0.1:$GATEWAY_PORT" },
  providers: {
    up: { api: "openai", base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", locality: "local",
          discover: false, models: [ { id: "bench" } ],
          max_concurrency: 1024, max_queue: 1024 },
  },
  routes: { bench: { targets: ["up/bench"] } },
}
JSON5
SWITCHYARD_LOG=warn "$bin" --config "$work/switchyard.json5" serve >"$work/serve.log" 2>&1 &
gw=$!; pids+=("$gw")
wait_port "$GATEWAY_PORT"

echo "switchyard $("$bin" --version | awk '{print $2}') (gateway pid $gw), PEERS=\"$PEERS\" C=${C:-16} D=${D:-10}"
UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT/v1" GATEWAY="http://127.0.0.1:$GATEWAY_PORT/v1" \
  GATEWAY_MODEL=bench GATEWAY_KEY=sk-bench bash "$PEERS_SH"

if [ -r "/proc/$gw/status" ]; then
  hwm=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$gw/status")
  rss=$(awk '/^VmRSS/ {print $2, $3}' "/proc/$gw/status")
  echo "gateway memory: peak RSS (VmHWM) $hwm, RSS now $rss"
else
  echo "gateway process $gw is gone; its log:" >&2; cat "$work/serve.log" >&2; exit 1
fi
if grep -qiE 'error|panic' "$work/serve.log"; then
  echo "gateway log (errors):" >&2; grep -iE 'error|panic' "$work/serve.log" | head -20 >&2
fi
