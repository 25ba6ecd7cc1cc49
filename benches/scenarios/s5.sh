#!/usr/bin/env bash
# S5 overload (benches/BENCHMARKS.md): the S1 shape (1000 clients x 10 of
# 100 symbols, quotes) at RATE, meant as twice the server's clean S1 rate,
# for each server kind on a fresh server: does it degrade gracefully
# (conflation, bounded latency and memory, nobody disconnected) or fall
# over (seconds of latency, growing memory, disconnects)?
#
#   benches/scenarios/s5.sh RATE [KIND...]
#       KIND: tickwire (tickwire-redis with BUS=redis), tickwire-redis,
#       node-ws; default "tickwire node-ws". Prints one JSON line per kind
#       ("scenario":"s5") and a summary line: p99 of the delivered quotes,
#       conflated fraction, delivered / published, server RSS start ->
#       end, disconnects and connect failures per kind.
#
# Environment: CLIENTS (1000), PER_CLIENT (10), DURATION (10 s), BATCH=1
# (tickwire kinds: batched frames), and lib.sh's (TW_ARGS, TW_ENV, ...).
set -euo pipefail

SCEN=s5
# shellcheck source=benches/scenarios/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-1000}
PER_CLIENT=${PER_CLIENT:-10}
DURATION=${DURATION:-10}

usage() {
  echo "usage: $0 RATE [tickwire|tickwire-redis|node-ws ...]  (env CLIENTS PER_CLIENT DURATION BATCH=1 BUS=redis)" >&2
  exit 2
}

[[ $# -ge 1 && "$1" =~ ^[0-9]+$ ]] || usage
rate=$1
shift
kinds_from_args "$@" || usage

build
expected=$(python3 -c "print($rate / $SYMBOLS)")
lines=()
for kind in "${kinds[@]}"; do
  extra=()
  if [[ "${BATCH:-0}" == 1 && "$kind" == tickwire* ]]; then extra=(--batch); fi
  log "$kind overloaded at $rate updates/s (x$((CLIENTS * PER_CLIENT / SYMBOLS)) fan-out), ${DURATION}s"
  if ! measure "$kind" "$rate" quote --clients "$CLIENTS" --symbols-per-client "$PER_CLIENT" \
    --expected-rate "$expected" "${extra[@]}"; then
    log "$kind: the run failed"
    continue
  fi
  LINE=$(annotate "$LINE" scenario=s5)
  echo "$LINE"
  lines+=("$LINE")
done
python3 -c '
import json, sys
runs = [json.loads(a) for a in sys.argv[2:]]
def rss(v):
    s = v["server"] or {}
    return [s.get("rss_kib_start"), s.get("rss_kib_end")]
print(json.dumps({"scenario": "s5-summary", "rate": int(sys.argv[1]),
  "runs": {r["server_kind"]: {"p99_us": r["latency_us"]["p99"], "p999_us": r["latency_us"]["p999"],
    "conflated_fraction": r["conflated_fraction"], "delivered_per_sec": r["delivered_per_sec"],
    "delivered_ratio_seq": r["delivered_ratio_seq"], "delivered_ratio": r["delivered_ratio"],
    "server_rss_kib": rss(r), "disconnected": r["disconnected"], "closes": r["closes"],
    "connect_failed": r["connect"]["failed"],
    "server_cpu_percent": (r["server"] or {}).get("cpu_percent")} for r in runs}}))' "$rate" "${lines[@]}"
