#!/usr/bin/env bash
# `cargo xtask pgo`: the release gateway built with profile-guided optimisation (PGO) and then
# laid out by BOLT, at target/pgo/switchyard.
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
#    two cores; the release profile's fat LTO applies to both), its relocations kept in the
#    file (`--emit-relocs`) for step 5.
# 5. BOLT (LLVM's post-link optimiser; Debian's `bolt-NN` package, installed with apt when it
#    is missing): instruments that binary, trains it as in step 2, and rewrites it with the
#    functions and blocks that ran laid out together -> target/pgo/switchyard. ring's
#    hand-written assembly (`ring_core_*`, the TLS ciphers) is left as it is. Without BOLT
#    (BOLT=0, or none to be had) step 4's binary is copied there as it is.
# 6. Checks the result: `switchyard demo`, and plain and streamed answers from an OpenAI and an
#    Ollama upstream behind TLS (nginx with a throw-away CA's certificate; skipped without
#    nginx or openssl).
#
# The optimiser then lays out the code the training ran together and keeps what it never ran
# apart: the gateway's time goes mostly to fetching instructions (DECISIONS.md, issue 15), so
# this is the build to deploy (`examples/deploy`). Code the training did not run is compiled
# as rarely used, not left out: every feature works the same.
#
# Env: D (2 s of wrk per path and mode), BOLT (1; 0 skips step 5), RUSTFLAGS (kept, the PGO
# flags appended), and those of bench/lib.sh (SWITCHYARD_BENCH_MOCK, UPSTREAM_PORT,
# GATEWAY_PORT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
D=${D:-2}
BOLT=${BOLT:-1}
GEN_DIR=$root/target/pgo-gen
USE_DIR=$root/target/pgo
PROFILES=$GEN_DIR/profiles
PROFDATA=$USE_DIR/switchyard.profdata
OUT=$USE_DIR/switchyard

need wrk wrk || { echo "wrk is missing and could not be installed" >&2; exit 2; }
llvm_bin=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | awk '/^host:/ {print $2}')/bin
if [ ! -x "$llvm_bin/llvm-profdata" ]; then
  rustup component add llvm-tools >&2 || true
fi
[ -x "$llvm_bin/llvm-profdata" ] || { echo "no llvm-profdata in $llvm_bin (rustup component add llvm-tools)" >&2; exit 2; }
[ -f "$MOCK_SRC/Cargo.toml" ] || { echo "no mock upstream at $MOCK_SRC (set SWITCHYARD_BENCH_MOCK)" >&2; exit 2; }
# check_tls (below) puts nginx on GATEWAY_PORT+3 and a gateway on GATEWAY_PORT+4.
ports_free "$UPSTREAM_PORT" "$GATEWAY_PORT" "$((GATEWAY_PORT + 3))" "$((GATEWAY_PORT + 4))"

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

# train_gateway BINARY: runs an instrumented gateway through the training (step 2), then
# `switchyard demo`; each writes its profile when it exits.
train_gateway() {
  echo "pgo: training ${1#"$root/"} (wrk ${D}s per path and mode)" >&2
  BIN=$1
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
}

start_mock 20 0
train_gateway "$GEN_DIR/release/switchyard"
mkdir -p "$USE_DIR"
"$llvm_bin/llvm-profdata" merge -o "$PROFDATA" "$PROFILES"

echo "pgo: building the optimised gateway (target/pgo)" >&2
# BOLT (ELF, Linux) needs the link's relocations kept in the file to move functions.
relocs=
[ "$(uname -s)" = Linux ] && [ "$BOLT" != 0 ] && relocs=" -Clink-arg=-Wl,--emit-relocs"
(cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$PROFDATA$relocs" CARGO_TARGET_DIR=$USE_DIR \
  cargo build --release -q -p switchyard)

# bolt_dirs: the directories of the llvm-bolt installs whose instrumentation runtime sits
# beside them (Debian: /usr/lib/llvm-NN/bin), BOLT_VERSION's first, then the newest first.
bolt_dirs() {
  local dir
  for dir in "/usr/lib/llvm-$BOLT_VERSION/bin" $(ls -d /usr/lib/llvm-*/bin 2>/dev/null | sort -t- -k2 -n -r); do
    if [ -x "$dir/llvm-bolt" ] && [ -x "$dir/merge-fdata" ] && [ -f "$dir/../lib/libbolt_rt_instr.a" ]; then
      echo "$dir"
    fi
  done | awk '!seen[$0]++'
}
# BOLT 16 (Debian bookworm's own) handles rustc 1.95's output; BOLT 22 (bookworm-security)
# refuses it: it takes a function whose name holds `.warm` (a generic over a type in the
# gateway's `warmup` module) for a split-off fragment and stops ("parent function not found").
BOLT_VERSION=${BOLT_VERSION:-16}
bolt_dir=
if [ -n "$relocs" ]; then
  if [ ! -x "/usr/lib/llvm-$BOLT_VERSION/bin/llvm-bolt" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq "bolt-$BOLT_VERSION" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 || true; apt-get install -y -qq "bolt-$BOLT_VERSION" >/dev/null 2>&1 || true; }
  fi
  if [ -z "$(bolt_dirs)" ] && command -v apt-get >/dev/null 2>&1; then
    pkg=$(apt-cache search --names-only '^bolt-[0-9]+$' 2>/dev/null | awk '{print $1}' | sort -t- -k2 -n | tail -1) || pkg=
    [ -n "$pkg" ] && { apt-get install -y -qq "$pkg" >/dev/null 2>&1 || true; }
  fi
  [ -n "$(bolt_dirs)" ] || echo "pgo: no llvm-bolt to be had (Debian: apt-get install bolt-$BOLT_VERSION); the PGO build is left as it is" >&2
fi
# ring's assembly is left alone: BOLT has no business rewriting hand-tuned cipher code.
keep_asm='-skip-funcs=ring_core_.*'
BOLT_DIR=$USE_DIR/bolt
if [ -n "$relocs" ]; then
  rm -rf "$BOLT_DIR" && mkdir -p "$BOLT_DIR"
  # The first install that can instrument this binary lays it out.
  for dir in $(bolt_dirs); do
    if "$dir/llvm-bolt" "$USE_DIR/release/switchyard" -o "$BOLT_DIR/switchyard-instrumented" -instrument \
      -instrumentation-file="$BOLT_DIR/profile" -instrumentation-file-append-pid \
      -runtime-instrumentation-lib=libbolt_rt_instr.a "$keep_asm" >"$BOLT_DIR/instrument.log" 2>&1; then
      bolt_dir=$dir
      break
    fi
    echo "pgo: $dir/llvm-bolt could not instrument the gateway: $(grep -m1 BOLT-ERROR "$BOLT_DIR/instrument.log" || tail -1 "$BOLT_DIR/instrument.log")" >&2
  done
  [ -n "$bolt_dir" ] || [ -z "$(bolt_dirs)" ] \
    || echo "pgo: no llvm-bolt could instrument the gateway; the PGO build is left as it is" >&2
fi
if [ -n "$bolt_dir" ]; then
  echo "pgo: BOLT ($bolt_dir/llvm-bolt): instrumented; training, laying out" >&2
  train_gateway "$BOLT_DIR/switchyard-instrumented"
  "$bolt_dir/merge-fdata" "$BOLT_DIR"/profile.*.fdata >"$BOLT_DIR/merged.fdata" 2>"$BOLT_DIR/merge.log" \
    || { echo "pgo: merge-fdata failed ($BOLT_DIR/merge.log)" >&2; exit 1; }
  "$bolt_dir/llvm-bolt" "$USE_DIR/release/switchyard" -o "$OUT.new" -data="$BOLT_DIR/merged.fdata" \
    -reorder-blocks=ext-tsp -reorder-functions=hfsort+ -split-functions -split-all-cold -split-eh \
    -icf=1 -use-gnu-stack -update-debug-sections "$keep_asm" >"$BOLT_DIR/optimise.log" 2>&1 \
    || { echo "pgo: llvm-bolt could not lay out the gateway ($BOLT_DIR/optimise.log)" >&2; exit 1; }
else
  cp "$USE_DIR/release/switchyard" "$OUT.new"
fi

# check_tls BINARY: BINARY serves a plain and a streamed answer from each upstream API through
# TLS (nginx with a certificate of a throw-away CA, in front of the mock upstream): BOLT
# rewrote the code around the TLS stack, so the cipher path is run once before the binary
# is accepted. Skipped, with a note, when nginx or openssl is missing.
check_tls() {
  if ! need nginx nginx-light || ! need curl curl || ! command -v openssl >/dev/null 2>&1; then
    echo "pgo: nginx, curl or openssl missing: the TLS upstream check is skipped" >&2
    return 0
  fi
  local dir=$work/tls tls_port=$((GATEWAY_PORT + 3)) gw_port=$((GATEWAY_PORT + 4)) tls_gw s answer
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 1 -subj "/CN=pgo check CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/leaf.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/cert.pem" -days 1 -extfile "$dir/ext.cnf" 2>/dev/null
  cat >"$dir/nginx.conf" <<NGX
worker_processes 1; pid $work/nginx.pid; error_log $dir/nginx.err; daemon on;
events { worker_connections 64; }
http { access_log off; server { listen 127.0.0.1:$tls_port ssl; ssl_certificate $dir/cert.pem;
  ssl_certificate_key $dir/key.pem; location / { proxy_pass http://127.0.0.1:$UPSTREAM_PORT;
  proxy_http_version 1.1; proxy_buffering off; } } }
NGX
  nginx -c "$dir/nginx.conf"
  cat >"$dir/gateway.json5" <<CFG
{ server: { listen: "127.0.0.1:$gw_port" },
  providers: {
    "openai-tls": { api: "openai", base_url: "https://127.0.0.1:$tls_port/v1", locality: "local",
                    discover: false, models: [{ id: "bench" }], ca_file: "$dir/ca.pem" },
    "ollama-tls": { api: "ollama", base_url: "https://127.0.0.1:$tls_port", locality: "local",
                    discover: false, models: [{ id: "bench:7b" }], ca_file: "$dir/ca.pem" } },
  routes: { "tls-openai": { targets: ["openai-tls/bench"] }, "tls-ollama": { targets: ["ollama-tls/bench:7b"] } } }
CFG
  SWITCHYARD_LOG=warn "$1" --config "$dir/gateway.json5" serve >"$dir/serve.log" 2>&1 &
  tls_gw=$!
  pids+=("$tls_gw")
  wait_port "$gw_port"
  for s in false true; do
    for api in openai ollama; do
      local path=/v1/chat/completions
      [ "$api" = ollama ] && path=/api/chat
      answer=$(curl -sS -m 10 "http://127.0.0.1:$gw_port$path" -H 'content-type: application/json' \
        -d "$(body "$api" "tls-$api" "$s")" 2>&1) || true
      if ! echo "$answer" | grep -q 'tok19'; then
        echo "pgo: no answer through TLS ($api upstream, stream $s): $answer" >&2
        tail -n 20 "$dir/serve.log" "$dir/nginx.err" >&2 2>/dev/null || true
        exit 1
      fi
    done
  done
  kill "$tls_gw"
  nginx -c "$dir/nginx.conf" -s stop 2>/dev/null
  echo "pgo: the optimised build answers through TLS upstreams" >&2
}

"$OUT.new" demo >/dev/null || { echo "pgo: switchyard demo failed on the optimised build" >&2; exit 1; }
check_tls "$OUT.new"
mv "$OUT.new" "$OUT"
echo "pgo: $OUT" >&2
