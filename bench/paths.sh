#!/usr/bin/env bash
# Every protocol path through the gateway against nginx in one run (issue 15): OpenAI,
# Ollama, the two translations, Anthropic /v1/messages and Responses /v1/responses clients,
# plain and streamed, each next to nginx proxying the same upstream endpoint (the floor of
# one proxy hop doing the same upstream work).
#
#   PORT=18115 /tmp/mock/release/mock-upstream &          # ../shared/bench/mock-upstream
#   SWITCHYARD_LOG=warn target/release/switchyard serve --config bench.json5 &
#   UPSTREAM_PORT=18115 GATEWAY_PORT=4115 GATEWAY_PID=$! D=8 bash bench/paths.sh
#
# The gateway's config routes `bench` to an `api: "openai"` provider at
# http://127.0.0.1:$UPSTREAM_PORT/v1 (model `bench`) and `bench-ollama` to an `api: "ollama"`
# provider at http://127.0.0.1:$UPSTREAM_PORT (model `bench:7b`). Prints one line per path
# and mode: rps, p99, the ratios to nginx, and at the end the gateway's peak RSS (VmHWM)
# when GATEWAY_PID is given. Env: C (16), D (8 s), NGINX_PORT (18915), ONLY (a path name).
set -euo pipefail
UPSTREAM_PORT=${UPSTREAM_PORT:-18115}; GATEWAY_PORT=${GATEWAY_PORT:-4115}
NGINX_PORT=${NGINX_PORT:-18915}; C=${C:-16}; D=${D:-8}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cleanup() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/nginx.conf" <<NGX
worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err; daemon on;
events { worker_connections 4096; }
http { access_log off; upstream up { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://up; proxy_http_version 1.1;
           proxy_set_header Connection ""; proxy_buffering off; } } }
NGX
nginx -c "$work/nginx.conf"
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && break; sleep 0.1; done

# run URL BODY -> "rps p99_ms"
run() {
  WRK_BODY=$2 wrk -t1 -c2 -d1s -s "$here/post.lua" "$1" >/dev/null 2>&1 || true
  local out; out=$(WRK_BODY=$2 wrk -t2 -c"$C" -d"${D}s" --latency -s "$here/post.lua" "$1" 2>&1)
  local bad; bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  [ -z "$bad" ] || echo "  ($1: $bad non-2xx answers)" >&2
  echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="99%" {p=$2; if (p ~ /us$/) {sub(/us/,"",p); p/=1000} else if (p ~ /ms$/) {sub(/ms/,"",p)} else if (p ~ /s$/) {sub(/s/,"",p); p*=1000}} END {print r, p}'
}
msg='"messages":[{"role":"user","content":"Say hello"}]'
openai() { echo "{\"model\":\"$1\",$msg,\"stream\":$2}"; }
anthropic() { echo "{\"model\":\"$1\",\"max_tokens\":64,$msg,\"stream\":$2}"; }
responses() { echo "{\"model\":\"$1\",\"input\":\"Say hello\",\"store\":false,\"stream\":$2}"; }
gw=http://127.0.0.1:$GATEWAY_PORT; ng=http://127.0.0.1:$NGINX_PORT
# name | gateway URL | body maker | model | nginx floor (openai or ollama)
paths="openai-openai|/v1/chat/completions|openai|bench|openai
ollama-ollama|/api/chat|openai|bench-ollama|ollama
openai-ollama|/v1/chat/completions|openai|bench-ollama|ollama
ollama-openai|/api/chat|openai|bench|openai
anthropic-openai|/v1/messages|anthropic|bench|openai
responses-openai|/v1/responses|responses|bench|openai"
declare -A FLOOR
printf '%-17s %-6s %9s %8s %9s %8s %7s %7s\n' path stream rps p99_ms nginx_rps ng_p99 rps_x p99_x
for stream in false true; do
  read -r r p < <(run "$ng/v1/chat/completions" "$(openai bench $stream)"); FLOOR[openai]="$r $p"
  read -r r p < <(run "$ng/api/chat" "$(openai bench:7b $stream)"); FLOOR[ollama]="$r $p"
  while IFS='|' read -r name path maker model floor; do
    [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
    read -r r p < <(run "$gw$path" "$($maker "$model" $stream)")
    read -r fr fp <<<"${FLOOR[$floor]}"
    awk -v n="$name" -v s="$stream" -v r="$r" -v p="$p" -v fr="$fr" -v fp="$fp" \
      'BEGIN { printf "%-17s %-6s %9.0f %8.2f %9.0f %8.2f %7.3f %7.2f\n", n, s, r, p, fr, fp, r/fr, p/fp }'
  done <<<"$paths"
done
if [ -n "${GATEWAY_PID:-}" ] && [ -r "/proc/$GATEWAY_PID/status" ]; then
  echo "gateway peak RSS (VmHWM): $(awk '/^VmHWM/ {print $2, $3}' "/proc/$GATEWAY_PID/status")"
fi
