# Shared by the load scenarios (s1.sh .. s5.sh, all.sh; see
# benches/BENCHMARKS.md): build, start one server of a kind on a free
# port, run `tickwire loadgen` against it, stop everything it started.
# Sourced, not run; the sourcing script sets SCEN (its name in logs) and
# `set -euo pipefail` first.
#
# Server kinds:
#   tickwire        `tickwire run` (memory bus) playing a synthetic feeds file
#   tickwire-redis  a private redis-server on a free port, `tickwire ingest
#                   --bus redis://...` playing the feeds, and `tickwire
#                   gateway --bus redis://...`: the gateway is the process
#                   measured (--server-pid); ingest's and Redis's CPU over
#                   the loadgen run are added to the JSON line as "others"
#   node-ws         benches/peers/node-ws/server.js (quotes only)
#
# Environment read here: TW_ARGS (extra words for `tickwire run` /
# `tickwire gateway`, e.g. "--shards 1"), TW_INGEST_ARGS (for `tickwire
# ingest`), TW_ENV (KEY=VALUE words added to the tickwire processes'
# environment, e.g. "TICKWIRE_GATEWAY_SLOW_CONSUMER_TIMEOUT_MS=5000"; any
# other TICKWIRE_* of the caller is removed), SOURCE_ADDRS (4),
# LOADGEN_SLACK (120 s: a loadgen run is killed DURATION + this after its
# start), SKIP_BUILD=1 (use the binary as built), CARGO_TARGET_DIR (where
# the binary is).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCENARIOS="$ROOT/benches/scenarios"
SYMBOLS=100
SOURCE_ADDRS=${SOURCE_ADDRS:-4}
LOADGEN_SLACK=${LOADGEN_SLACK:-120}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/release/tickwire"
NODE_PEER="$ROOT/benches/peers/node-ws"

WORK=$(mktemp -d)
# Every process started here, for the exit trap: the measured server and
# what it needs (ingest, Redis), and the running loadgen.
SERVER_PID=""
INGEST_PID=""
REDIS_PID=""
LOADGEN_PID=""
SERVER_URL=""
REDIS_PORT=""
# The last run's JSON line (set by loadgen and measure).
LINE=""

log() { echo "$SCEN: $*" >&2; }

# stop_pid PID: TERM, up to 5 s to exit, then KILL; reaps it.
stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# stop_server: the measured server first (it may be draining clients),
# then what fed it.
stop_server() {
  stop_pid "$SERVER_PID"
  stop_pid "$INGEST_PID"
  stop_pid "$REDIS_PID"
  SERVER_PID="" INGEST_PID="" REDIS_PID="" SERVER_URL="" REDIS_PORT=""
}

cleanup() {
  stop_pid "$LOADGEN_PID"
  LOADGEN_PID=""
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building release (cargo build --release -p tickwire)"
    (cd "$ROOT" && cargo build --release -q -p tickwire)
  fi
  [[ -x "$BIN" ]] || { log "no binary at $BIN (build it, or set CARGO_TARGET_DIR)"; exit 1; }
  if [[ ! -d "$NODE_PEER/node_modules/ws" ]]; then
    log "installing the node-ws peer (npm ci)"
    npm ci --prefix "$NODE_PEER" --silent >&2
  fi
}

# is_kind WORD: whether WORD names a server kind.
is_kind() { [[ "$1" == tickwire || "$1" == tickwire-redis || "$1" == node-ws ]]; }

# with_bus KIND: tickwire-redis for tickwire when BUS=redis.
with_bus() {
  if [[ "$1" == tickwire && "${BUS:-memory}" == redis ]]; then echo tickwire-redis; else echo "$1"; fi
}

# kinds_from_args ARG...: sets `kinds` to the server kinds named (BUS=redis
# turns tickwire into tickwire-redis), tickwire and node-ws when none is;
# returns 1 on a word that is not a kind (the caller prints its usage).
kinds_from_args() {
  kinds=()
  local arg
  for arg in "$@"; do
    is_kind "$arg" || return 1
    kinds+=("$(with_bus "$arg")")
  done
  if (( ${#kinds[@]} == 0 )); then kinds=("$(with_bus tickwire)" node-ws); fi
}

# feeds_file RATE CHANNEL: a feeds file for `rate` total updates/s over
# the 100 instruments (quote: feeds-s1.toml; trade: feeds-s1-trade.toml).
feeds_file() {
  local rate=$1 channel=$2 src
  case "$channel" in
    quote) src="$SCENARIOS/feeds-s1.toml" ;;
    trade) src="$SCENARIOS/feeds-s1-trade.toml" ;;
    *) log "no feeds file for channel $channel (quote or trade)"; exit 2 ;;
  esac
  sed "s/^rate = .*/rate = $rate/" "$src" >"$WORK/feeds.toml"
  echo "$WORK/feeds.toml"
}

# free_port: a TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tw_env: `env` words that clear the caller's TICKWIRE_* and add TW_ENV.
tw_env() {
  env | sed -n 's/^\(TICKWIRE_[^=]*\)=.*/-u\n\1/p'
  local word
  for word in ${TW_ENV:-}; do echo "$word"; done
}

# wait_line FILE PATTERN PID WHAT: until FILE holds PATTERN (grep -o), at
# most 20 s; prints the first match. Fails when PID exits first.
wait_line() {
  local file=$1 pattern=$2 pid=$3 what=$4 found
  for _ in $(seq 200); do
    found=$(grep -o "$pattern" "$file" 2>/dev/null | head -n1 || true)
    if [[ -n "$found" ]]; then echo "$found"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  log "$what did not start; its stderr:"
  cat "${file%.out}.err" >&2 2>/dev/null || true
  return 1
}

start_redis() {
  local port
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "" >"$WORK/redis.out" 2>"$WORK/redis.err" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    if [[ "$(redis-cli -p "$port" ping 2>/dev/null || true)" == PONG ]]; then
      REDIS_PORT=$port
      return 0
    fi
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "redis-server did not start on $port:"
  cat "$WORK/redis.out" "$WORK/redis.err" >&2
  exit 1
}

# start_server KIND RATE [CHANNEL]: starts it on a free port (it picks
# port 0 and prints its URL); sets SERVER_PID and SERVER_URL.
start_server() {
  local kind=$1 rate=$2 channel=${3:-quote} feeds envw=() tw_args=() ingest_args=()
  read -r -a tw_args <<<"${TW_ARGS:-}"
  read -r -a ingest_args <<<"${TW_INGEST_ARGS:-}"
  mapfile -t envw < <(tw_env)
  : >"$WORK/server.out"
  case "$kind" in
    tickwire)
      feeds=$(feeds_file "$rate" "$channel")
      env "${envw[@]}" RUST_LOG=warn \
        "$BIN" run --listen 127.0.0.1:0 --feeds "$feeds" "${tw_args[@]}" \
        >"$WORK/server.out" 2>"$WORK/server.err" &
      SERVER_PID=$!
      ;;
    tickwire-redis)
      feeds=$(feeds_file "$rate" "$channel")
      start_redis
      : >"$WORK/ingest.out"
      env "${envw[@]}" RUST_LOG=warn \
        "$BIN" ingest --bus "redis://127.0.0.1:$REDIS_PORT" --feeds "$feeds" "${ingest_args[@]}" \
        >"$WORK/ingest.out" 2>"$WORK/ingest.err" &
      INGEST_PID=$!
      wait_line "$WORK/ingest.out" 'publishing to' "$INGEST_PID" "tickwire ingest" >/dev/null || exit 1
      env "${envw[@]}" RUST_LOG=warn TICKWIRE_AUTH_ANONYMOUS=true \
        "$BIN" gateway --bus "redis://127.0.0.1:$REDIS_PORT" --listen 127.0.0.1:0 "${tw_args[@]}" \
        >"$WORK/server.out" 2>"$WORK/server.err" &
      SERVER_PID=$!
      ;;
    node-ws)
      if [[ "$channel" != quote ]]; then
        log "node-ws serves quotes only, not $channel"
        exit 2
      fi
      node "$NODE_PEER/server.js" --port 0 --symbols "$SYMBOLS" --rate "$rate" \
        >"$WORK/server.out" 2>"$WORK/server.err" &
      SERVER_PID=$!
      ;;
    *) log "unknown server $kind (tickwire, tickwire-redis or node-ws)"; exit 2 ;;
  esac
  SERVER_URL=$(wait_line "$WORK/server.out" 'ws://[^ )]*' "$SERVER_PID" "$kind") || exit 1
}

# cpu_ticks PID: user + system clock ticks so far (0 when gone).
cpu_ticks() {
  local pid=$1
  [[ -n "$pid" && -r /proc/$pid/stat ]] || { echo 0; return; }
  # Fields 14 and 15, counted after the "(comm)" field.
  sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}

# loadgen KIND LOADGEN_ARGS...: runs `tickwire loadgen` against the
# running server (its URL and pid, the source addresses added), bounded
# by DURATION + LOADGEN_SLACK, in the background so that a signal stops
# it at once. Sets LINE to its JSON line; its summary goes to stderr,
# indented. Never call it (or measure) inside $(...): a subshell would
# hide the pids from the exit trap and hold signals until it ends.
loadgen() {
  local kind=$1 ingest0 redis0 rc=0
  shift
  ingest0=$(cpu_ticks "$INGEST_PID")
  redis0=$(cpu_ticks "$REDIS_PID")
  timeout $((DURATION + LOADGEN_SLACK)) "$BIN" loadgen --url "$SERVER_URL" \
    --duration-secs "$DURATION" --source-addrs "$SOURCE_ADDRS" --server-pid "$SERVER_PID" "$@" \
    >"$WORK/loadgen.out" 2>"$WORK/loadgen.err" &
  LOADGEN_PID=$!
  wait "$LOADGEN_PID" || rc=$?
  LOADGEN_PID=""
  if (( rc != 0 )); then
    cat "$WORK/loadgen.err" >&2
    return 1
  fi
  sed 's/^/  /' "$WORK/loadgen.err" >&2
  LINE=$(cat "$WORK/loadgen.out")
  if [[ "$kind" == tickwire-redis ]]; then
    LINE=$(annotate "$LINE" \
      others="{\"ingest_cpu_s\": $(ticks_s "$ingest0" "$(cpu_ticks "$INGEST_PID")"), \"redis_cpu_s\": $(ticks_s "$redis0" "$(cpu_ticks "$REDIS_PID")"), \"over\": \"the whole loadgen run, connects included\"}")
  fi
}

# measure KIND RATE CHANNEL LOADGEN_ARGS...: a fresh server of KIND at
# RATE, one loadgen run on CHANNEL, the server stopped. Sets LINE to the
# JSON line with server_kind and rate added.
measure() {
  local kind=$1 rate=$2 channel=$3
  shift 3
  start_server "$kind" "$rate" "$channel"
  loadgen "$kind" --channel "$channel" "$@" || { stop_server; return 1; }
  stop_server
  LINE=$(annotate "$LINE" server_kind="$kind" rate="$rate")
}

ticks_s() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 100, 2))" "$1" "$2"; }

# annotate JSON KEY=VALUE...: JSON with those keys added (VALUE parsed as
# JSON when it is JSON, else kept as a string).
annotate() {
  python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for kv in sys.argv[2:]:
    k, _, raw = kv.partition("=")
    try:
        v[k] = json.loads(raw)
    except ValueError:
        v[k] = raw
print(json.dumps(v))' "$@"
}

# field JSON PATH: one value of a JSON line (PATH like latency_us.p99);
# "null" when absent.
field() {
  python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(json.dumps(v))' "$1" "$2"
}
