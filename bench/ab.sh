#!/usr/bin/env bash
# An A/B of two gateway binaries next to nginx, in alternating rounds: what a change did to
# requests/s and CPU per request, with the machine's drift shared by both sides.
#
#   bash bench/ab.sh OLD_BINARY NEW_BINARY
#
# Starts the reference mock upstream, both gateways on bench/switchyard-bench.json5 (ports
# GATEWAY_PORT and GATEWAY_PORT+1) and nginx as bench.sh runs it (GATEWAY_PORT+2), then
# ROUNDS times: nginx, A, B, each a 1 s warm-up and a D-second `wrk -t2 -cC` run of one
# path. Prints each run (requests/s, p99, CPU µs per request, non-2xx) and the means.
#
# Env: ROUNDS (4), D (4), C (16), KIND (openai | ollama | anthropic | responses; the client
# API, default openai), ROUTE (bench-openai-whole: a route of switchyard-bench.json5), STREAM
# (false), and those of bench/lib.sh (SWITCHYARD_BENCH_MOCK, UPSTREAM_PORT, GATEWAY_PORT).
# Builds nothing: the mock must be built (bench.sh or pgo.sh builds it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: bash bench/ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
ROUNDS=${ROUNDS:-4}; D=${D:-4}; C=${C:-16}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
KIND=${KIND:-openai}; ROUTE=${ROUTE:-bench-openai-whole}; STREAM=${STREAM:-false}
need wrk wrk || { echo "wrk is missing and could not be installed" >&2; exit 2; }
need nginx nginx-light || { echo "nginx is missing and could not be installed" >&2; exit 2; }
[ -x "$MOCK_BIN" ] || { echo "no mock upstream binary at $MOCK_BIN (cargo xtask bench builds it)" >&2; exit 2; }
PORT_A=$GATEWAY_PORT; PORT_B=$((GATEWAY_PORT + 1)); NGINX_PORT=$((GATEWAY_PORT + 2))
ports_free "$UPSTREAM_PORT" "$PORT_A" "$PORT_B" "$NGINX_PORT"

start_mock 20 0
pid_a=; pid_b=
for side in a b; do
  bin=$1; port=$PORT_A
  [ "$side" = b ] && { bin=$2; port=$PORT_B; }
  sed -e "s/127\.0\.0\.1:18080/127.0.0.1:$UPSTREAM_PORT/g" -e "s/127\.0\.0\.1:4141/127.0.0.1:$port/g" \
    "$root/bench/switchyard-bench.json5" >"$work/$side.json5"
  # In a session of its own, as bench.sh starts the gateway (see start_gateway in lib.sh).
  SWITCHYARD_LOG=warn setsid "$bin" --config "$work/$side.json5" serve >"$work/$side.log" 2>&1 &
  pids+=($!)
  if [ "$side" = a ]; then pid_a=$!; else pid_b=$!; fi
  wait_port "$port"
done
start_nginx "$NGINX_PORT"

# nginx proxies the upstream exchange of the route (it cannot translate).
case $ROUTE in
  *ollama*) floor_path=/api/chat; floor_body=$(body ollama bench:7b "$STREAM") ;;
  *) floor_path=/v1/chat/completions; floor_body=$(body openai bench "$STREAM") ;;
esac
case $KIND in
  openai) path=/v1/chat/completions ;; ollama) path=/api/chat ;;
  anthropic) path=/v1/messages ;; responses) path=/v1/responses ;;
  *) echo "KIND is openai, ollama, anthropic or responses" >&2; exit 2 ;;
esac
gw_body=$(body "$KIND" "$ROUTE" "$STREAM")

# run NAME URL BODY PID: one warm-up and one counted run; prints NAME rps p99 cpu_us non2xx.
run() {
  local out t0 t1 reqs
  WRK_BODY=$3 wrk -t1 -c2 -d1s -s "$root/bench/post.lua" "$2" >/dev/null 2>&1 || true
  t0=$(cpu_ticks "$4")
  out=$(WRK_BODY=$3 wrk -t2 -c"$C" -d"${D}s" --latency -s "$root/bench/post.lua" "$2" 2>&1)
  t1=$(cpu_ticks "$4")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  printf '%-6s %8s %10s %6s %6s\n' "$1" "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "$out" | awk '$1=="99%" {print $2}')" "$(( (t1 - t0) * TICK_US / ${reqs:-1} ))" \
    "$(echo "$out" | awk '/Non-2xx/ {print $5}' | grep . || echo 0)"
}

echo "A: $1" >&2; echo "B: $2" >&2
echo "$KIND client, route $ROUTE, stream $STREAM; nginx on $floor_path; $ROUNDS rounds of ${D}s, wrk -t2 -c$C" >&2
steal0=$(awk '/^cpu / {print $9}' /proc/stat); all0=$(awk '/^cpu / {s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat)
printf '%-6s %8s %10s %6s %6s\n' side rps p99 cpu_us non2xx | tee "$work/runs"
for _ in $(seq 1 "$ROUNDS"); do
  run nginx "http://127.0.0.1:$NGINX_PORT$floor_path" "$floor_body" "$ngw"
  run A "http://127.0.0.1:$PORT_A$path" "$gw_body" "$pid_a"
  run B "http://127.0.0.1:$PORT_B$path" "$gw_body" "$pid_b"
done | tee -a "$work/runs"
steal1=$(awk '/^cpu / {print $9}' /proc/stat); all1=$(awk '/^cpu / {s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat)
awk 'NR > 1 {n[$1]++; r[$1] += $2; c[$1] += $4}
  END {printf "mean: nginx %.0f rps (%.0f µs); A %.0f (%.2fx, %.0f µs); B %.0f (%.2fx, %.0f µs); B/A %.3f\n",
    r["nginx"]/n["nginx"], c["nginx"]/n["nginx"], r["A"]/n["A"], r["A"]/r["nginx"], c["A"]/n["A"],
    r["B"]/n["B"], r["B"]/r["nginx"], c["B"]/n["B"], r["B"]/r["A"]}' "$work/runs"
awk -v s=$((steal1 - steal0)) -v a=$((all1 - all0)) 'BEGIN {printf "steal: %.1f%% of the CPU time\n", a ? 100 * s / a : 0}'
