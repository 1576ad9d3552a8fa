# Shared by bench/bench.sh and bench/soak.sh (sourced, not run): builds the reference mock
# upstream and the release gateway, starts and stops them, reads /proc figures.
#
# Env: SWITCHYARD_BENCH_MOCK (the mock-upstream crate, default ../shared/bench/mock-upstream
# from the workspace root; built with CARGO_TARGET_DIR=target/bench-mock so the shared
# folder stays read-only), SKIP_BUILD=1 (use the binaries already built), PGO (1: the gateway
# built by bench/pgo.sh, target/pgo/switchyard; 0: the plain release build,
# target/release/switchyard), UPSTREAM_PORT (18080), GATEWAY_PORT (4141).

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOCK_SRC=${SWITCHYARD_BENCH_MOCK:-$root/../shared/bench/mock-upstream}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
GATEWAY_PORT=${GATEWAY_PORT:-4141}
MOCK_BIN=$root/target/bench-mock/release/mock-upstream
PGO=${PGO:-1}
if [ "$PGO" = 0 ]; then BIN=$root/target/release/switchyard; else BIN=$root/target/pgo/switchyard; fi
work=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Installs a missing tool with apt (as ../shared/bench/peers.sh does).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  { apt-get update -qq && apt-get install -y -qq "$2"; } >/dev/null 2>&1 || true
  command -v "$1" >/dev/null 2>&1
}

wait_port() {
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2
  return 1
}

ports_free() {
  for port in "$@"; do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is already in use (set UPSTREAM_PORT / GATEWAY_PORT)" >&2
      exit 2
    fi
  done
}

# The mock upstream and the release gateway, unless SKIP_BUILD=1.
build_all() {
  [ -f "$MOCK_SRC/Cargo.toml" ] || { echo "no mock upstream at $MOCK_SRC (set SWITCHYARD_BENCH_MOCK)" >&2; exit 2; }
  if [ -z "${SKIP_BUILD:-}" ]; then
    CARGO_TARGET_DIR=$root/target/bench-mock cargo build --release -q --locked --manifest-path "$MOCK_SRC/Cargo.toml"
    if [ "$PGO" = 0 ]; then
      (cd "$root" && cargo build --release -q -p switchyard)
    else
      # In a child shell: pgo.sh starts and stops its own mock and gateway.
      SKIP_BUILD= bash "$root/bench/pgo.sh"
    fi
  fi
  [ -x "$MOCK_BIN" ] || { echo "no mock upstream binary at $MOCK_BIN" >&2; exit 2; }
  [ -x "$BIN" ] || { echo "no gateway binary at $BIN" >&2; exit 2; }
}

# build_command: the command that built BIN, for the reports.
build_command() {
  if [ "$PGO" = 0 ]; then echo "cargo build --release -p switchyard"; else echo "cargo xtask pgo   # bench/pgo.sh: the release build with profile-guided optimisation, laid out by BOLT"; fi
}

# The paths the bench measures and the PGO build trains on:
# label | client kind | gateway path | route | floor (upstream protocol).
paths=(
  "OpenAI client, OpenAI upstream|openai|/v1/chat/completions|bench-openai|openai"
  "Ollama client, Ollama upstream|ollama|/api/chat|bench-ollama|ollama"
  "OpenAI client, Ollama upstream|openai|/v1/chat/completions|bench-ollama|ollama"
  "Ollama client, OpenAI upstream|ollama|/api/chat|bench-openai|openai"
  "Anthropic client, OpenAI upstream|anthropic|/v1/messages|bench-openai|openai"
  "Responses client, OpenAI upstream|responses|/v1/responses|bench-openai|openai"
)
# Modes: stream flag | mode label | route suffix. `plain, as_client` is the plain request on
# the routes whose providers set `upstream_streaming: "as_client"` (a whole upstream answer).
modes=("false|plain|" "true|streamed|" "false|plain, as_client|-whole")

# body KIND MODEL STREAM: the request body a client of that API sends.
body() {
  local msg='[{"role":"user","content":"Say hello"}]'
  case $1 in
    openai | ollama) echo "{\"model\":\"$2\",\"messages\":$msg,\"stream\":$3}" ;;
    anthropic) echo "{\"model\":\"$2\",\"max_tokens\":256,\"messages\":$msg,\"stream\":$3}" ;;
    responses) echo "{\"model\":\"$2\",\"input\":\"Say hello\",\"store\":false,\"stream\":$3}" ;;
  esac
}

# start_mock CHUNKS CHUNK_DELAY_US: the mock upstream on UPSTREAM_PORT; sets mock to its pid.
start_mock() {
  PORT=$UPSTREAM_PORT CHUNKS=$1 CHUNK_DELAY_US=$2 "$MOCK_BIN" >"$work/mock.log" 2>&1 &
  mock=$!
  pids+=("$mock")
  wait_port "$UPSTREAM_PORT"
}

# start_gateway CONFIG: `switchyard serve` at warn on CONFIG with the ports rewritten, in a
# session of its own; sets gw to its pid.
#
# Its own session, as nginx's worker has (`daemon on` detaches it) and as a gateway started
# apart from the load has (a service, another terminal: how ../shared/bench/peers.sh expects
# it). With the kernel's autogroup scheduling (`/proc/sys/kernel/sched_autogroup_enabled`) a
# session is a scheduling group: a proxy left in the bench's session would share one group's
# CPU with wrk's threads and the mock while nginx has a group to itself (DECISIONS.md, issue
# 15, session 17). `setsid` execs in place here (a background job is no group leader), so the
# pid is the gateway's.
start_gateway() {
  sed -e "s/127\.0\.0\.1:18080/127.0.0.1:$UPSTREAM_PORT/g" -e "s/127\.0\.0\.1:4141/127.0.0.1:$GATEWAY_PORT/g" \
    "$1" >"$work/switchyard.json5"
  SWITCHYARD_LOG=warn setsid "$BIN" --config "$work/switchyard.json5" serve >"$work/serve.log" 2>&1 &
  gw=$!
  pids+=("$gw")
  wait_port "$GATEWAY_PORT"
}

# start_nginx PORT: nginx in front of the mock as ../shared/bench/peers.sh runs it (one worker,
# keep-alive 64 to the upstream, no buffering, no access log, `daemon on`); sets ngw to its
# worker's pid (worker_processes 1: the process whose CPU per request is the floor's).
start_nginx() {
  cat >"$work/nginx.conf" <<NGX
worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err; daemon on;
events { worker_connections 4096; }
http { access_log off; upstream up { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
  server { listen 127.0.0.1:$1; location / { proxy_pass http://up; proxy_http_version 1.1;
           proxy_set_header Connection ""; proxy_buffering off; } } }
NGX
  nginx -c "$work/nginx.conf"
  wait_port "$1"
  ngw=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
}

# cpu_ticks PID: utime + stime of the process (all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# status_kb PID FIELD: a /proc/PID/status field in kB (VmRSS, VmHWM).
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

machine() {
  echo "- CPUs: $(nproc) ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))"
  echo "- kernel: $(uname -sr)"
  echo "- switchyard $("$BIN" --version | awk '{print $2}') at commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- . ':!BENCHMARKS.md' 2>/dev/null || echo ' (with local changes)')"
}
