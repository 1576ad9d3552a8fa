#!/usr/bin/env bash
# `cargo xtask soak`: 1,000 concurrent slow streams through the release gateway.
#
#   cargo xtask soak            # the client is `cargo xtask soak-client` (xtask/src/soak.rs)
#
# Starts the reference mock upstream paced to one chunk every 50 ms for 200 chunks (10 s per
# answer) and `switchyard serve` on bench/switchyard-soak.json5 (limits that allow 1,000 streams,
# see there), raises the open-files limit to the hard limit, then:
# 1. a warm-up of WARMUP (100) streams, so the gateway's upstream pool holds the idle
#    keep-alive connections it keeps (at most 64 per host, 90 s); the gateway's open files
#    after it are the idle count;
# 2. STREAMS (1000) concurrent streamed OpenAI requests; each must end with [DONE] after
#    exactly 200 content chunks. Meanwhile the gateway's VmRSS and open files are sampled
#    every 200 ms;
# 3. checks: every stream complete, peak RSS (VmHWM, which also covers moments between samples)
#    under RSS_LIMIT_MB (64), and open files back at the idle count within FD_WAIT (10) seconds.
# Prints the figures and puts them in BENCH_OUT (BENCHMARKS.md) in place of an earlier soak
# section. These are correctness and capacity checks, not timings.
#
# Env: STREAMS, WARMUP, RSS_LIMIT_MB, FD_WAIT, BENCH_OUT, SOAK_CLIENT (set by xtask), and those
# of bench/lib.sh (SWITCHYARD_BENCH_MOCK, SKIP_BUILD, PGO, UPSTREAM_PORT, GATEWAY_PORT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STREAMS=${STREAMS:-1000}; WARMUP=${WARMUP:-100}; RSS_LIMIT_MB=${RSS_LIMIT_MB:-64}; FD_WAIT=${FD_WAIT:-10}
CHUNKS=200; CHUNK_DELAY_US=50000
BENCH_OUT=${BENCH_OUT:-$root/BENCHMARKS.md}
client=${SOAK_CLIENT:?run it as cargo xtask soak (SOAK_CLIENT is the xtask binary)}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || echo "could not raise the open-files limit from $(ulimit -n)" >&2
ports_free "$UPSTREAM_PORT" "$GATEWAY_PORT"
build_all
start_mock "$CHUNKS" "$CHUNK_DELAY_US"
start_gateway "$root/bench/switchyard-soak.json5"
url="http://127.0.0.1:$GATEWAY_PORT"
started_fds=$(fd_count "$gw")

echo "soak: warm-up, $WARMUP streams of $CHUNKS chunks (one every 50 ms)" >&2
"$client" soak-client "$url" bench-openai "$WARMUP" "$CHUNKS" >&2
idle_fds=$(fd_count "$gw"); idle_rss=$(status_kb "$gw" VmRSS)

echo "soak: $STREAMS concurrent streams of $CHUNKS chunks" >&2
"$client" soak-client "$url" bench-openai "$STREAMS" "$CHUNKS" >"$work/client.out" &
cpid=$!
peak_rss=0; peak_fds=0; samples=0
while kill -0 "$cpid" 2>/dev/null; do
  rss=$(status_kb "$gw" VmRSS); fds=$(fd_count "$gw")
  [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
  [ "$fds" -gt "$peak_fds" ] && peak_fds=$fds
  samples=$((samples + 1))
  sleep 0.2
done
client_ok=yes; wait "$cpid" || client_ok=no
summary=$(cat "$work/client.out"); echo "$summary" >&2
hwm=$(status_kb "$gw" VmHWM)
fds_after=$(fd_count "$gw"); waited=0
while [ "$fds_after" -gt "$idle_fds" ] && [ "$waited" -lt $((FD_WAIT * 5)) ]; do
  sleep 0.2; waited=$((waited + 1)); fds_after=$(fd_count "$gw")
done

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { if [ "$1" = yes ]; then echo pass; else echo "**FAIL**"; fi; }
rss_ok=no; [ "$hwm" -lt $((RSS_LIMIT_MB * 1024)) ] && rss_ok=yes
fds_ok=no; [ "$fds_after" -le "$idle_fds" ] && fds_ok=yes
report=$(cat <<MD
<!-- soak -->
## Soak (\`cargo xtask soak\`)

$(date -u '+%Y-%m-%d %H:%M UTC'), bench/soak.sh: $STREAMS concurrent streamed OpenAI requests through the gateway
(\`${BIN#"$root/"}\`, built by \`$(build_command | cut -d'#' -f1 | sed 's/ *$//')\`; bench/switchyard-soak.json5) to mock-upstream paced \`CHUNKS=$CHUNKS CHUNK_DELAY_US=$CHUNK_DELAY_US\`
(one chunk every 50 ms, 10 s per answer), after a warm-up of $WARMUP streams; client
\`cargo xtask soak-client\` (xtask/src/soak.rs).

$(machine)

| check | figure | verdict |
|---|---|---|
| every stream complete with $CHUNKS chunks and [DONE] | \`$summary\` | $(verdict "$client_ok") |
| gateway peak RSS (VmHWM) under $RSS_LIMIT_MB MB | $(mb "$hwm") MB (highest VmRSS sample $(mb "$peak_rss") MB over $samples samples every 200 ms; $(mb "$idle_rss") MB idle after the warm-up) | $(verdict "$rss_ok") |
| open files back at the idle count within $FD_WAIT s | idle $idle_fds (at start $started_fds, before the warm-up filled the upstream pool), peak $peak_fds, $fds_after after $((waited / 5)).$((waited % 5 * 2)) s | $(verdict "$fds_ok") |
MD
)
echo "$report" >&2
if [ -f "$BENCH_OUT" ]; then
  sed -i '/^<!-- soak -->$/,$d' "$BENCH_OUT"
  printf '%s\n' "$(cat "$BENCH_OUT")" >"$work/bench.md" && cp "$work/bench.md" "$BENCH_OUT"
  echo >>"$BENCH_OUT"
fi
echo "$report" >>"$BENCH_OUT"
echo "wrote $BENCH_OUT" >&2
[ "$client_ok" = yes ] && [ "$rss_ok" = yes ] && [ "$fds_ok" = yes ]
