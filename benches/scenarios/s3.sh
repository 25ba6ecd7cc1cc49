#!/usr/bin/env bash
# S3 connections (benches/BENCHMARKS.md): CONNS (19 000) WebSocket
# connections, one quote subscription each (round-robin over the 100
# symbols: 190 subscribers per symbol), 100 updates/s in total (19 000
# deliveries/s). Measures the server's RSS per connection (growth from
# before the first connect to the window's start, / connections), the
# time to connect them all, and connect failures. One fresh server and
# one loadgen process per kind.
#
#   benches/scenarios/s3.sh [KIND...]
#       KIND: tickwire (tickwire-redis with BUS=redis), tickwire-redis,
#       node-ws; default "tickwire node-ws". Prints one JSON line per kind
#       ("scenario":"s3") and a summary line.
#
# Environment: CONNS (19000), RATE (100 updates/s in total), DURATION
# (10 s), SETTLE_SECS (2: the server idles this long after start-up
# before the "before" RSS, so start-up allocations are not counted per
# connection), CONNECT_CONCURRENCY (64 handshakes in flight), and
# lib.sh's (SOURCE_ADDRS: 4, so 4 750 ports per source address, ...).
# Server and loadgen each need a descriptor per connection: the script
# raises its soft limit (ulimit -n) to CONNS + 256 when the hard limit
# allows (one loadgen process then opens them all), else it stops.
set -euo pipefail

SCEN=s3
# shellcheck source=benches/scenarios/lib.sh
source "$(dirname "$0")/lib.sh"

CONNS=${CONNS:-19000}
RATE=${RATE:-100}
DURATION=${DURATION:-10}
SETTLE_SECS=${SETTLE_SECS:-2}
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-64}

usage() {
  echo "usage: $0 [tickwire|tickwire-redis|node-ws ...]  (env CONNS RATE DURATION BUS=redis)" >&2
  exit 2
}

kinds_from_args "$@" || usage
[[ "$CONNS" =~ ^[0-9]+$ && "$RATE" =~ ^[0-9]+$ ]] || usage

need=$((CONNS + 256))
if (( $(ulimit -n) < need )); then
  if ! ulimit -n "$need" 2>/dev/null; then
    log "need $need file descriptors for $CONNS connections; ulimit -n is $(ulimit -n), hard limit $(ulimit -Hn)"
    exit 1
  fi
fi
log "ulimit -n $(ulimit -n) (server and loadgen each need about $CONNS)"

build
lines=()
expected=$(python3 -c "print($RATE / $SYMBOLS)")
for kind in "${kinds[@]}"; do
  log "$kind: $CONNS connections x 1 subscription, $RATE updates/s in total, ${DURATION}s"
  start_server "$kind" "$RATE" quote
  sleep "$SETTLE_SECS"
  if ! loadgen "$kind" --channel quote --clients "$CONNS" --symbols-per-client 1 \
    --connect-concurrency "$CONNECT_CONCURRENCY" --expected-rate "$expected"; then
    stop_server
    log "$kind: the run failed"
    continue
  fi
  stop_server
  LINE=$(annotate "$LINE" server_kind="$kind" rate="$RATE" scenario=s3)
  echo "$LINE"
  lines+=("$LINE")
done
python3 -c '
import json, sys
runs = [json.loads(a) for a in sys.argv[3:]]
print(json.dumps({"scenario": "s3-summary", "conns": int(sys.argv[1]), "rate": int(sys.argv[2]),
  "runs": {r["server_kind"]: {"rss_per_conn_kib": r["rss_per_conn_kib"],
    "server_rss_before_kib": r["server_rss_before_kib"],
    "server_rss_kib": [(r["server"] or {}).get("rss_kib_start"), (r["server"] or {}).get("rss_kib_end")],
    "connected": r["connect"]["ok"], "failed": r["connect"]["failed"],
    "connect_all_ms": r["connect"]["all_ms"], "connect_p99_ms": r["connect"]["p99_ms"],
    "delivered_ratio_seq": r["delivered_ratio_seq"], "p99_us": r["latency_us"]["p99"],
    "disconnected": r["disconnected"]} for r in runs}}))' "$CONNS" "$RATE" "${lines[@]}"
