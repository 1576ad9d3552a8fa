#!/usr/bin/env bash
# Gateway CPU per request in instructions (callgrind), independent of machine load:
# runs the gateway under valgrind, sends warm-up requests, zeroes the counters, sends N
# requests over one keep-alive connection (curl), and prints instructions per request.
#
#   PORT=18080 target/bench-mock/release/mock-upstream &   # ../shared/bench/mock-upstream
#   bash bench/instructions.sh
#
# CONFIG (default bench/switchyard-bench.json5, its gateway port rewritten to GATEWAY_PORT)
# routes `bench-openai` / `bench-ollama` to the mock's OpenAI and Ollama APIs and
# `bench-openai-whole` / `bench-ollama-whole` through `upstream_streaming: "as_client"`
# providers (the `whole` rows: plain requests only). Env: N (200), GATEWAY_PORT (4115),
# CASES (default: all of them; names as printed), KEEP (a folder: each case's callgrind
# profile is kept there as NAME-STREAM.callgrind, for callgrind_annotate).
set -euo pipefail
BIN=${BIN:-target/release/switchyard}
GATEWAY_PORT=${GATEWAY_PORT:-4115}; N=${N:-200}
work=$(mktemp -d)
if [ -z "${CONFIG:-}" ]; then
  CONFIG=$work/switchyard.json5
  sed -e "s/127\.0\.0\.1:4141/127.0.0.1:$GATEWAY_PORT/" "$(dirname "$0")/switchyard-bench.json5" >"$CONFIG"
fi
SWITCHYARD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
  "$BIN" serve --config "$CONFIG" >"$work/vg.log" 2>&1 &
vg=$!
cleanup() { kill "$vg" 2>/dev/null || true; wait "$vg" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null && break; sleep 0.2; done
gw=http://127.0.0.1:$GATEWAY_PORT
msg='"messages":[{"role":"user","content":"Say hello"}]'
cases="openai-openai|/v1/chat/completions|{\"model\":\"bench-openai\",$msg,\"stream\":S}
ollama-ollama|/api/chat|{\"model\":\"bench-ollama\",$msg,\"stream\":S}
openai-ollama|/v1/chat/completions|{\"model\":\"bench-ollama\",$msg,\"stream\":S}
ollama-openai|/api/chat|{\"model\":\"bench-openai\",$msg,\"stream\":S}
anthropic-openai|/v1/messages|{\"model\":\"bench-openai\",\"max_tokens\":64,$msg,\"stream\":S}
responses-openai|/v1/responses|{\"model\":\"bench-openai\",\"input\":\"Say hello\",\"store\":false,\"stream\":S}
openai-openai-whole|/v1/chat/completions|{\"model\":\"bench-openai-whole\",$msg,\"stream\":S}
ollama-ollama-whole|/api/chat|{\"model\":\"bench-ollama-whole\",$msg,\"stream\":S}
anthropic-openai-whole|/v1/messages|{\"model\":\"bench-openai-whole\",\"max_tokens\":64,$msg,\"stream\":S}
responses-openai-whole|/v1/responses|{\"model\":\"bench-openai-whole\",\"input\":\"Say hello\",\"store\":false,\"stream\":S}"
total() { callgrind_control -d "$vg" >/dev/null; sleep 0.5
  local f; f=$(ls -t "$work"/cg.* | head -1)
  awk '/^summary:|^totals:/ {print $2; exit}' "$f"; }
fire() { local urls=(); for _ in $(seq 1 "$3"); do urls+=("$gw$1"); done
  curl -s -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -d "$2" "${urls[@]}" >/dev/null; }
printf '%-17s %-6s %12s\n' path stream instr/request
while IFS='|' read -r name path body; do
  [ -z "${CASES:-}" ] || [[ " $CASES " == *" $name "* ]] || continue
  for stream in false true; do
    [[ $name == *-whole && $stream == true ]] && continue
    b=${body//S/$stream}
    fire "$path" "$b" 20
    callgrind_control -z "$vg" >/dev/null; sleep 0.2
    fire "$path" "$b" "$N"
    t=$(total)
    [ -z "${KEEP:-}" ] || cp "$(ls -t "$work"/cg.* | head -1)" "$KEEP/$name-$stream.callgrind"
    printf '%-17s %-6s %12d\n' "$name" "$stream" $(( t / N ))
  done
done <<<"$cases"
