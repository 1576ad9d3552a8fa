#!/usr/bin/env bash
# `cargo xtask pgo`: the release gateway built with profile-guided optimisation (PGO), at
# target/pgo/release/switchyard.
#
#   cargo xtask pgo          # or: bash bench/pgo.sh
#
# 1. Builds the gateway instrumented (`-Cprofile-generate`, into target/pgo-gen).
# 2. Trains it: `switchyard serve` on bench/switchyard-bench.json5 in front of the reference
#    mock upstream, every path of bench/bench.sh in every mode (plain, streamed, plain
#    `as_client`) for D seconds of wrk each, then an agent's turn (a tool offered, a call and
#    its result in the history) on every client API, plain and streamed; a clean shutdown
#    writes the profile. `switchyard demo` adds the rest of a gateway's day: model lists,
#    tool calls in answers, a fallback after a refused connection.
# 3. Merges the profiles with llvm-profdata (rustup's `llvm-tools` component, added when it
#    is missing).
# 4. Builds the gateway with `-Cprofile-use` into target/pgo (about 5-10 minutes per build on
#    two cores; the release profile's fat LTO applies to both).
#
# The optimiser then lays out the code the training ran together and keeps what it never ran
# apart: the gateway's time goes mostly to fetching instructions (DECISIONS.md, issue 15), so
# this is the build to deploy (`examples/deploy`). Code the training did not run is compiled
# as rarely used, not left out: every feature works the same.
#
# Env: D (2 s of wrk per path and mode), RUSTFLAGS (kept, the PGO flag appended), and those of
# bench/lib.sh (SWITCHYARD_BENCH_MOCK, UPSTREAM_PORT, GATEWAY_PORT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
D=${D:-2}
GEN_DIR=$root/target/pgo-gen
USE_DIR=$root/target/pgo
PROFILES=$GEN_DIR/profiles
PROFDATA=$USE_DIR/switchyard.profdata

need wrk wrk || { echo "wrk is missing and could not be installed" >&2; exit 2; }
llvm_bin=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | awk '/^host:/ {print $2}')/bin
if [ ! -x "$llvm_bin/llvm-profdata" ]; then
  rustup component add llvm-tools >&2 || true
fi
[ -x "$llvm_bin/llvm-profdata" ] || { echo "no llvm-profdata in $llvm_bin (rustup component add llvm-tools)" >&2; exit 2; }
[ -f "$MOCK_SRC/Cargo.toml" ] || { echo "no mock upstream at $MOCK_SRC (set SWITCHYARD_BENCH_MOCK)" >&2; exit 2; }
ports_free "$UPSTREAM_PORT" "$GATEWAY_PORT"

echo "pgo: building the instrumented gateway (target/pgo-gen)" >&2
CARGO_TARGET_DIR=$root/target/bench-mock cargo build --release -q --locked --manifest-path "$MOCK_SRC/Cargo.toml"
(cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$PROFILES" CARGO_TARGET_DIR=$GEN_DIR \
  cargo build --release -q -p switchyard)
# Build scripts and proc macros are instrumented too and wrote their own profiles while
# they ran: only the gateway's runs below count.
rm -rf "$PROFILES"

# agent_body KIND MODEL STREAM: an agent's turn in that API: a tool offered, the model's call
# to it and the tool's result in the history.
agent_body() {
  local tool_schema='{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}'
  case $1 in
    openai) echo "{\"model\":\"$2\",\"stream\":$3,\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temperature_c\\\":21}\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Current weather\",\"parameters\":$tool_schema}}]}" ;;
    ollama) echo "{\"model\":\"$2\",\"stream\":$3,\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}}]},{\"role\":\"tool\",\"content\":\"{\\\"temperature_c\\\":21}\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Current weather\",\"parameters\":$tool_schema}}]}" ;;
    anthropic) echo "{\"model\":\"$2\",\"stream\":$3,\"max_tokens\":256,\"system\":\"You are terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"{\\\"temperature_c\\\":21}\"}]}],\"tools\":[{\"name\":\"get_weather\",\"description\":\"Current weather\",\"input_schema\":$tool_schema}]}" ;;
    responses) echo "{\"model\":\"$2\",\"stream\":$3,\"store\":false,\"instructions\":\"You are terse.\",\"input\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"{\\\"temperature_c\\\":21}\"}],\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Current weather\",\"parameters\":$tool_schema}]}" ;;
  esac
}

# train URL BODY NAME: D seconds of wrk; fails when a request was refused.
train() {
  local out
  out=$(WRK_BODY=$2 wrk -t1 -c8 -d"${D}s" -s "$root/bench/post.lua" "$1" 2>&1)
  if echo "$out" | grep -q "Non-2xx"; then
    echo "pgo: training request refused ($3): $out" >&2
    exit 1
  fi
  printf 'pgo: %-48s %s rps\n' "$3" "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" >&2
}

echo "pgo: training (wrk ${D}s per path and mode)" >&2
BIN=$GEN_DIR/release/switchyard
start_mock 20 0
start_gateway "$root/bench/switchyard-bench.json5"
gw_url="http://127.0.0.1:$GATEWAY_PORT"
for m in "${modes[@]}"; do
  IFS='|' read -r stream mode suffix <<<"$m"
  for p in "${paths[@]}"; do
    IFS='|' read -r label kind path route _ <<<"$p"
    train "$gw_url$path" "$(body "$kind" "$route$suffix" "$stream")" "$label, $mode"
  done
done
for stream in false true; do
  for p in "${paths[@]}"; do
    IFS='|' read -r label kind path route _ <<<"$p"
    train "$gw_url$path" "$(agent_body "$kind" "$route" "$stream")" "$label, agent turn, stream $stream"
  done
done
kill -TERM "$gw"
wait "$gw" || { echo "pgo: the instrumented gateway did not shut down cleanly" >&2; exit 1; }
"$BIN" demo >/dev/null || { echo "pgo: switchyard demo failed" >&2; exit 1; }
mkdir -p "$USE_DIR"
"$llvm_bin/llvm-profdata" merge -o "$PROFDATA" "$PROFILES"

echo "pgo: building the optimised gateway (target/pgo)" >&2
(cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$PROFDATA" CARGO_TARGET_DIR=$USE_DIR \
  cargo build --release -q -p switchyard)
echo "pgo: $USE_DIR/release/switchyard" >&2
