#!/usr/bin/env bash
# `cargo xtask bench`: Switchyard on every path next to nginx, against the reference upstream.
#
#   cargo xtask bench          # or: bash bench/bench.sh
#   D=20 C=32 cargo xtask bench
#
# Builds the reference mock upstream (SWITCHYARD_BENCH_MOCK, default ../shared/bench/mock-upstream,
# into target/bench-mock) and the gateway (bench/pgo.sh: the release build with profile-guided
# optimisation; PGO=0 the plain release build), starts the mock (CHUNKS=20 per streamed
# answer), `switchyard serve` on bench/switchyard-bench.json5 (an OpenAI and an Ollama provider
# at the mock, logs at warn) and nginx as the floor (as ../shared/bench/peers.sh runs it: one
# worker, keep-alive 64, no buffering, no access log). Then, plain and streamed, with
# `wrk -t2 -cC -dD --latency -s bench/post.lua` after a 1 s warm-up:
#   nginx in front of the mock's /v1/chat/completions and its /api/chat (the floors), and
#   Switchyard on six paths: OpenAI->OpenAI, Ollama->Ollama, OpenAI->Ollama, Ollama->OpenAI,
#   Anthropic (/v1/messages)->OpenAI, Responses (/v1/responses)->OpenAI.
# A path's floor is nginx proxying the same upstream exchange (the upstream protocol, same mode),
# run just before the path's row (the machine is shared and its speed drifts over minutes).
# Per path: rps, p50, p99, ratio to the floor's rps and p99, the gateway's CPU per request
# (utime+stime delta over the run / requests) and per upstream chunk (/ CHUNKS), the mock
# upstream's and wrk's CPU per request in the floor's run and in the gateway's, and, with
# strace, syscalls per request from `strace -c -f -p` during a separate STRACE_D-second run.
# For the default plain rows: the most requests/s any proxy could serve given the upstream's
# and wrk's CPU per request (cores x 1 s / their sum), against nginx's plain floor.
# The gateway's peak RSS (VmHWM) is over the whole run. Writes BENCH_OUT (BENCHMARKS.md).
#
# Last, the criterion bench of the per-chunk pipeline (switchyard-router/benches/pipeline.rs,
# decode -> route -> encode of a 20-chunk answer per protocol pair) in ns per chunk.
#
# Each row is ROUNDS rounds of the floor's run then the gateway's (interleaved, so both see the
# same minutes of the shared machine); a figure in the table is the median over the rounds, a
# ratio the median of the per-round ratios with their range after it. One 8 s run's p99 ratio
# spread 0.8x-2.4x over eight runs of the same binary here (DECISIONS.md, issue 15, session 20).
#
# Env: D (5 s per run), ROUNDS (3), C (16 connections), CHUNKS (20), STRACE_D (2; 0 skips strace),
# PIPELINE (1; 0 skips the criterion bench),
# BENCH_OUT, NGINX_PORT (18981), and those of bench/lib.sh (SWITCHYARD_BENCH_MOCK,
# SKIP_BUILD, UPSTREAM_PORT, GATEWAY_PORT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
D=${D:-5}; ROUNDS=${ROUNDS:-3}; C=${C:-16}; CHUNKS=${CHUNKS:-20}; STRACE_D=${STRACE_D:-2}
NGINX_PORT=${NGINX_PORT:-18981}
BENCH_OUT=${BENCH_OUT:-$root/BENCHMARKS.md}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

need wrk wrk || { echo "wrk is missing and could not be installed" >&2; exit 2; }
need nginx nginx-light || { echo "nginx is missing and could not be installed" >&2; exit 2; }
if [ "$STRACE_D" != 0 ] && ! need strace strace; then
  echo "strace is missing and could not be installed: no syscall counts" >&2; STRACE_D=0
fi
ports_free "$UPSTREAM_PORT" "$GATEWAY_PORT" "$NGINX_PORT"
build_all
start_mock "$CHUNKS" 0
start_gateway "$root/bench/switchyard-bench.json5"
start_nginx "$NGINX_PORT"

# to_ms LATENCY: wrk's 420.00us / 1.23ms / 1.02s in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'; }
# ratio A B: A / B to two decimals, `-` when B is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# median VALUES...: the median of the numeric values (`-` ones left out), `-` if none.
median() {
  printf '%s\n' "$@" | awk '$1 != "-" && $1 != ""' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# fixed DIGITS VALUE: VALUE with DIGITS decimals (`-` stays `-`).
fixed() { awk -v d="$1" -v v="$2" 'BEGIN { if (v == "-") print "-"; else printf "%.*f", d, v }'; }
# ms VALUE: a latency in ms as the table shows it (`1.23ms`).
ms() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else printf "%.2fms", v }'; }
# spread VALUES...: `(min-max)` of the numeric values when there are several rounds.
spread() {
  [ "$ROUNDS" -gt 1 ] || return 0
  printf '%s\n' "$@" | awk '$1 != "-" && $1 != ""' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "(%s-%s)", lo, hi }'
}

# children_us FILE: the CPU time (user + system, µs) of this shell's finished children (wrk's,
# once it has exited) from bash's `times`, which must run in this shell itself (`times >FILE`,
# not in a command substitution's subshell).
children_us() {
  # (A locale may write a decimal comma.)
  awk 'NR == 2 { gsub(/,/, "."); split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000000 }' "$1"
}

# wrk_run NAME URL KIND MODEL STREAM PID: warm-up, then the counted run; sets RPS P50 P99 REQS
# BAD, UP_CPU_US (the mock upstream's CPU per request in µs), LOAD_CPU_US (wrk's) and, when
# PID is given, CPU_US (its CPU per request).
wrk_run() {
  local b out t0 t1 u0 u1 w0 w1
  b=$(body "$3" "$4" "$5")
  WRK_BODY=$b WRK_ANTHROPIC_VERSION=2023-06-01 wrk -t1 -c2 -d1s -s "$root/bench/post.lua" "$2" >/dev/null 2>&1 || true
  [ -n "$6" ] && t0=$(cpu_ticks "$6")
  u0=$(cpu_ticks "$mock")
  times >"$work/times0"
  out=$(WRK_BODY=$b WRK_ANTHROPIC_VERSION=2023-06-01 wrk -t2 -c"$C" -d"${D}s" --latency -s "$root/bench/post.lua" "$2" 2>&1)
  times >"$work/times1"
  u1=$(cpu_ticks "$mock")
  [ -n "$6" ] && t1=$(cpu_ticks "$6")
  RPS=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  P50=$(echo "$out" | awk '$1=="50%" {print $2}'); P99=$(echo "$out" | awk '$1=="99%" {print $2}')
  REQS=$(echo "$out" | awk '/requests in/ {print $1}')
  BAD=$(echo "$out" | awk '/Non-2xx/ {print $5}'); BAD=${BAD:-0}
  CPU_US=-; UP_CPU_US=-; LOAD_CPU_US=-
  if [ -n "$6" ] && [ "${REQS:-0}" -gt 0 ]; then CPU_US=$(( (t1 - t0) * TICK_US / REQS )); fi
  if [ "${REQS:-0}" -gt 0 ]; then
    w0=$(children_us "$work/times0"); w1=$(children_us "$work/times1")
    UP_CPU_US=$(awk -v t=$((u1 - u0)) -v k="$TICK_US" -v n="$REQS" 'BEGIN { printf "%.1f", t * k / n }')
    LOAD_CPU_US=$(awk -v t=$((w1 - w0)) -v n="$REQS" 'BEGIN { printf "%.1f", t / n }')
  fi
  printf '%-28s %-8s rps=%-7s p50=%-9s p99=%-9s failed=%-5s cpu/req=%s us\n' "$1" "$5" "${RPS:-0}" "${P50:-?}" "${P99:-?}" "$BAD" "$CPU_US" >&2
}

# strace_run URL KIND MODEL STREAM: syscalls and writev per request on the gateway during a
# short wrk run under `strace -c -f -p`; sets SYS and WRITEV.
strace_run() {
  SYS=-; WRITEV=-
  [ "$STRACE_D" != 0 ] || return 0
  local b reqs
  b=$(body "$2" "$3" "$4")
  strace -c -f -p "$gw" -o "$work/strace.out" 2>/dev/null &
  local st=$!
  sleep 0.5
  reqs=$(WRK_BODY=$b WRK_ANTHROPIC_VERSION=2023-06-01 wrk -t1 -c"$C" -d"${STRACE_D}s" -s "$root/bench/post.lua" "$1" 2>&1 | awk '/requests in/ {print $1}')
  kill -INT "$st" 2>/dev/null || true; wait "$st" 2>/dev/null || true
  if [ -s "$work/strace.out" ] && [ "${reqs:-0}" -gt 0 ]; then
    SYS=$(awk -v r="$reqs" '$NF=="total" {printf "%.1f", $4 / r}' "$work/strace.out")
    WRITEV=$(awk -v r="$reqs" '$NF=="writev" {printf "%.1f", $4 / r}' "$work/strace.out")
    WRITEV=${WRITEV:-0}
  fi
}

nginx_url="http://127.0.0.1:$NGINX_PORT"
gw_url="http://127.0.0.1:$GATEWAY_PORT"
echo "switchyard (pid $gw, ${BIN#"$root/"}) and nginx in front of mock-upstream (CHUNKS=$CHUNKS), wrk -c$C -d${D}s" >&2
rows=()
declare -A PLAIN_RPS=() EXCHANGE_RPS=() PLAIN_FLOOR_RPS=() PLAIN_UP_CPU=() PLAIN_FLOOR_LOAD_CPU=()
# floor_run UPSTREAM STREAM: nginx proxying the same upstream exchange (openai | ollama), run
# just before the gateway row it is the floor of, so that both see the same machine (it is
# shared, and its speed drifts over minutes); sets F_RPS F_P99 F_CPU.
floor_run() {
  case $1 in
    openai) wrk_run "nginx, OpenAI upstream" "$nginx_url/v1/chat/completions" openai bench "$2" "$ngw" ;;
    ollama) wrk_run "nginx, Ollama upstream" "$nginx_url/api/chat" ollama bench:7b "$2" "$ngw" ;;
  esac
  F_RPS=$RPS; F_P99=$P99; F_CPU=$CPU_US; F_UP_CPU=$UP_CPU_US; F_LOAD_CPU=$LOAD_CPU_US
}
# CPU time the hypervisor gave to other guests (steal) during the rows: the main source of
# noise between runs on a shared host. Prints "steal total" in clock ticks, all CPUs.
steal_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat; }
read -r steal0 total0 < <(steal_ticks)
for m in "${modes[@]}"; do
  IFS='|' read -r stream mode suffix <<<"$m"
  for p in "${paths[@]}"; do
    IFS='|' read -r label kind path route floor <<<"$p"
    route=$route$suffix
    # Per round: the floor just before the gateway's run, then the gateway.
    ex=(); f_rps=(); f_p99=(); f_cpu=(); f_up=(); f_load=(); g_rps=(); g_p50=(); g_p99=(); g_cpu=(); g_up=(); g_load=()
    rps_ratios=(); p99_ratios=(); bad=0
    for _ in $(seq 1 "$ROUNDS"); do
      if [ "$mode" = plain ]; then
        # nginx proxying the streamed exchange the default plain mode makes upstream.
        floor_run "$floor" true
        ex+=("$F_RPS")
      fi
      floor_run "$floor" "$stream"
      wrk_run "$label" "$gw_url$path" "$kind" "$route" "$stream" "$gw"
      f_rps+=("$F_RPS"); f_p99+=("$(to_ms "${F_P99:-0}")"); f_cpu+=("$F_CPU"); f_up+=("$F_UP_CPU"); f_load+=("$F_LOAD_CPU")
      g_rps+=("${RPS:-0}"); g_p50+=("$(to_ms "${P50:-0}")"); g_p99+=("$(to_ms "${P99:-0}")"); g_cpu+=("$CPU_US"); g_up+=("$UP_CPU_US"); g_load+=("$LOAD_CPU_US")
      rps_ratios+=("$(ratio "${RPS:-0}" "${F_RPS:-0}")")
      p99_ratios+=("$(ratio "$(to_ms "${P99:-0}")" "$(to_ms "${F_P99:-0}")")")
      bad=$((bad + ${BAD:-0}))
    done
    strace_run "$gw_url$path" "$kind" "$route" "$stream"
    cpu=$(fixed 1 "$(median "${g_cpu[@]}")")
    per_chunk=-; [ "$cpu" != - ] && per_chunk=$(awk -v c="$cpu" -v n="$CHUNKS" 'BEGIN { printf "%.1f", c / n }')
    if [ "$mode" = plain ]; then
      PLAIN_RPS[$label]=$(fixed 0 "$(median "${g_rps[@]}")"); PLAIN_FLOOR_RPS[$label]=$(fixed 0 "$(median "${f_rps[@]}")")
      PLAIN_UP_CPU[$label]=$(fixed 1 "$(median "${g_up[@]}")"); PLAIN_FLOOR_LOAD_CPU[$label]=$(fixed 1 "$(median "${f_load[@]}")")
      EXCHANGE_RPS[$label]=$(fixed 0 "$(median "${ex[@]}")")
    fi
    rows+=("| $label | $mode | $(fixed 0 "$(median "${f_rps[@]}")") | $(fixed 0 "$(median "${g_rps[@]}")") | **$(fixed 2 "$(median "${rps_ratios[@]}")")x** $(spread "${rps_ratios[@]}") | $(ms "$(median "${f_p99[@]}")") | $(ms "$(median "${g_p99[@]}")") | **$(fixed 2 "$(median "${p99_ratios[@]}")")x** $(spread "${p99_ratios[@]}") | $(ms "$(median "${g_p50[@]}")") | $(fixed 1 "$(median "${f_cpu[@]}")") | $cpu | $per_chunk | $(fixed 1 "$(median "${f_up[@]}")") | $(fixed 1 "$(median "${g_up[@]}")") | $(fixed 1 "$(median "${f_load[@]}")") | $(fixed 1 "$(median "${g_load[@]}")") | $SYS | $WRITEV | $bad |")
  done
done
hwm=$(status_kb "$gw" VmHWM)
read -r steal1 total1 < <(steal_ticks)
steal_pct=$(awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) 'BEGIN { if (t > 0) printf "%.1f", 100 * s / t; else print "?" }')
# The default plain mode against nginx proxying the streamed exchange it makes upstream.
exchange_rows=()
for p in "${paths[@]}"; do
  IFS='|' read -r label kind path route floor <<<"$p"
  a=${PLAIN_RPS[$label]:-0}; b=${EXCHANGE_RPS[$label]:-0}; f=${PLAIN_FLOOR_RPS[$label]:-0}
  u=${PLAIN_UP_CPU[$label]:--}; w=${PLAIN_FLOOR_LOAD_CPU[$label]:--}
  # The most any proxy could serve while the upstream spends u µs of CPU per request and wrk w
  # (as much as it needs against nginx's plain answer) on this machine's cores, and that over
  # nginx's plain floor.
  bound=-; bound_ratio=-
  if [ "$u" != - ] && [ "$w" != - ]; then
    read -r bound bound_ratio < <(awk -v u="$u" -v w="$w" -v c="$(nproc)" -v f="$f" 'BEGIN {
      if (u + w <= 0) { print "- -"; exit }
      b = c * 1000000 / (u + w); printf "%.0f %s\n", b, (f > 0 ? sprintf("%.2fx", b / f) : "-") }')
  fi
  exchange_rows+=("| $label | $b | $a | $(r=$(ratio "$a" "$b"); [ "$r" = - ] && echo - || echo "${r}x") | $u | $w | $bound | $bound_ratio |")
done

# The criterion pipeline bench, as `name | ns per answer | ns per chunk` rows.
pipeline_rows=()
if [ "${PIPELINE:-1}" != 0 ]; then
  echo "criterion: cargo bench -p switchyard-router --bench pipeline" >&2
  while read -r name ns; do
    pipeline_rows+=("| ${name%%/*} | ${name#*/} | $ns | $(awk -v n="$ns" 'BEGIN { printf "%.0f", n / 20 }') |")
  done < <(cd "$root" && cargo bench -q -p switchyard-router --bench pipeline -- --warm-up-time 1 --measurement-time 2 --output-format bencher 2>/dev/null |
    awk '$1 == "test" && $3 == "..." { gsub(",", "", $5); print $2, $5 }')
fi
# A soak section (bench/soak.sh) already in BENCH_OUT is kept.
soak_part=$(sed -n '/^<!-- soak -->$/,$p' "$BENCH_OUT" 2>/dev/null || true)
if grep -qiE 'error|panic' "$work/serve.log"; then
  echo "gateway log (errors):" >&2; grep -iE 'error|panic' "$work/serve.log" | head -20 >&2
fi

{
  echo "# Benchmarks"
  echo
  echo "Written by \`cargo xtask bench\` (bench/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); the soak section by"
  echo "\`cargo xtask soak\` (bench/soak.sh). Method and how to rerun: bench/README.md."
  echo
  echo "## Machine"
  echo
  machine
  echo "- load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) when the run ended; the machine is shared, so only ratios from one run mean anything"
  echo "- steal: ${steal_pct}% of the CPU time during the rows went to the host's other guests (a run with more than a few percent is noisy)"
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "CARGO_TARGET_DIR=target/bench-mock cargo build --release --locked --manifest-path ${MOCK_SRC#"$root/"}/Cargo.toml"
  echo "$(build_command)"
  echo "PORT=$UPSTREAM_PORT CHUNKS=$CHUNKS CHUNK_DELAY_US=0 target/bench-mock/release/mock-upstream"
  echo "SWITCHYARD_LOG=warn ${BIN#"$root/"} --config bench/switchyard-bench.json5 serve"
  echo "nginx -c nginx.conf   # worker_processes 1; keepalive 64; proxy_buffering off; access_log off (as peers.sh)"
  echo "WRK_BODY='<body>' wrk -t1 -c2 -d1s -s bench/post.lua URL   # warm-up"
  echo "WRK_BODY='<body>' wrk -t2 -c$C -d${D}s --latency -s bench/post.lua URL"
  echo "strace -c -f -p GATEWAY_PID & WRK_BODY='<body>' wrk -t1 -c$C -d${STRACE_D}s -s bench/post.lua URL"
  echo '```'
  echo
  echo "## Every path (mock-upstream, $CHUNKS chunks per streamed answer)"
  echo
  echo "The floor of a path is nginx proxying the same upstream exchange (nginx cannot translate):"
  echo "the mock's \`/v1/chat/completions\` for OpenAI upstreams, its \`/api/chat\` for Ollama ones,"
  echo "measured just before each Switchyard run (the shared machine's speed drifts over minutes)."
  echo "Each row is $ROUNDS rounds of that pair, ${D} s per run: a figure is the median over the rounds, and a"
  echo "ratio the median of the per-round ratios, with their range in brackets (one run's p99 ratio"
  echo "varies by more than the bar's margin here; DECISIONS.md, issue 15, session 20)."
  echo "CPU is the process's utime+stime over the counted run divided by its requests (nginx: its one worker); per chunk"
  echo "divides that by $CHUNKS; upstream CPU is the mock upstream's, the same way, and wrk CPU the load generator's"
  echo "(from the shell's \`times\` once it has exited), each in the nginx row and in the Switchyard row."
  echo "Syscalls are per request under strace (a separate, slower run)."
  echo "\`plain\` asks the upstream for a stream and folds it (the default: phase timeouts see every"
  echo "token); \`plain, as_client\` goes through providers with \`upstream_streaming: \"as_client\"\`,"
  echo "which ask the upstream for the whole answer as nginx's client does. The floor of both is nginx plain."
  echo
  echo "| path | mode | nginx rps | Switchyard rps | ratio | nginx p99 | Switchyard p99 | p99 ratio | Switchyard p50 | nginx CPU µs/req | CPU µs/req | CPU µs/chunk | upstream CPU µs/req, nginx row | upstream CPU µs/req, Switchyard row | wrk CPU µs/req, nginx row | wrk CPU µs/req, Switchyard row | syscalls/req | writev/req | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Gateway peak RSS (VmHWM over the whole run): $((hwm / 1024)).$(( (hwm % 1024) * 10 / 1024 )) MB."
  echo
  echo "The bar (issue 15): at least 0.7x nginx's requests/s (0.5x on translated paths), p99 within 1.5x, RSS under 30 MB."
  echo
  echo "By default a plain request asks the upstream for a stream ($CHUNKS chunks here) and folds it, so"
  echo "the upstream's work is that of a streamed answer. Against nginx proxying that same streamed"
  echo "exchange (measured in each round of each plain row; medians), the default plain rows are as below. The"
  echo "upstream's CPU per request in that row, with wrk's against nginx's plain answer, bounds what"
  echo "any proxy could serve on this machine's $(nproc) cores, even one that cost nothing: cores × 1 s"
  echo "divided by their sum. The last column sets that bound against nginx's plain floor of the row."
  echo
  echo "| path | nginx rps, streamed | Switchyard rps, plain | ratio | upstream CPU µs/req | wrk CPU µs/req (nginx plain) | most rps any proxy could serve | that / nginx plain floor |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${exchange_rows[@]}"
  if [ "${#pipeline_rows[@]}" -gt 0 ]; then
    echo
    echo "## Per-chunk pipeline (criterion)"
    echo
    echo "\`cargo bench -p switchyard-router --bench pipeline -- --warm-up-time 1 --measurement-time 2\`: one"
    echo "20-chunk answer per iteration (the mock upstream's frames), \`pipeline_20_chunks\` = decode -> route"
    echo "(a Router in front of a provider replaying the frames) -> encode, \`codec_20_chunks\` = decode -> encode."
    echo
    echo "| group | upstream -> client | ns per answer | ns per chunk |"
    echo "|---|---|---|---|"
    printf '%s\n' "${pipeline_rows[@]}"
  fi
  echo
  echo "## Baseline (issue 15, before the work)"
  echo
  echo "One run on the same 2-core machine, release build of main then (wrk -c16, \`max_concurrency\`/\`max_queue\` 1024, logs at warn):"
  echo
  echo "| path | nginx rps | Switchyard rps | ratio |"
  echo "|---|---|---|---|"
  echo "| OpenAI client, OpenAI upstream, not streamed | 26,775 | 5,689 | 0.21x |"
  echo "| OpenAI client, OpenAI upstream, streamed | 9,405 | 2,700 | 0.29x |"
  echo "| Ollama client, Ollama upstream, streamed | 9,317 | 1,867 | 0.20x |"
  echo
  echo "Gateway CPU then: about 205 µs per request not streamed, about 490 µs streamed (about 23 µs per"
  echo "upstream chunk); about 7.5 \`writev\` per streamed request."
  if [ -n "$soak_part" ]; then echo; echo "$soak_part"; fi
} >"$BENCH_OUT"
echo "wrote $BENCH_OUT" >&2
