#!/usr/bin/env bash
# S2 broad (benches/BENCHMARKS.md): 100 clients, each subscribed to all
# 100 symbols' quotes, at 10 000 updates/s in total: 1 M deliveries/s
# ideal, 10 000/s per client. One fresh server and one loadgen run per
# server kind.
#
#   benches/scenarios/s2.sh [--batch] [KIND...]
#       KIND: tickwire (memory bus; tickwire-redis with BUS=redis),
#       tickwire-redis, node-ws; default "tickwire node-ws". --batch: the
#       tickwire kinds send batched frames (`?batch=1`).
#       Prints one JSON line per kind ("scenario":"s2"), then a summary
#       line: delivered/s, p99 and delivered/published per kind.
#
# Environment: CLIENTS (100), RATE (10000 updates/s in total), DURATION
# (10 s), and lib.sh's (SOURCE_ADDRS, TW_ARGS, TW_ENV, SKIP_BUILD, ...).
# A single-threaded loadgen reads at most a few 100 000 frames/s: its
# "loadgen.saturated" flag says when its own queueing is in the latency.
set -euo pipefail

SCEN=s2
# shellcheck source=benches/scenarios/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-100}
RATE=${RATE:-10000}
DURATION=${DURATION:-10}

usage() {
  echo "usage: $0 [--batch] [tickwire|tickwire-redis|node-ws ...]  (env CLIENTS RATE DURATION BUS=redis)" >&2
  exit 2
}

batch=0
if [[ "${1:-}" == --batch ]]; then batch=1; shift; fi
kinds_from_args "$@" || usage
[[ "$RATE" =~ ^[0-9]+$ && "$CLIENTS" =~ ^[0-9]+$ ]] || usage

build
lines=()
expected=$(python3 -c "print($RATE / $SYMBOLS)")
for kind in "${kinds[@]}"; do
  extra=()
  if (( batch )) && [[ "$kind" == tickwire* ]]; then extra=(--batch); fi
  log "$kind: $CLIENTS clients x all $SYMBOLS symbols at $RATE updates/s ($((CLIENTS * RATE)) deliveries/s ideal), ${DURATION}s"
  if ! measure "$kind" "$RATE" quote --clients "$CLIENTS" --all-symbols \
    --expected-rate "$expected" "${extra[@]}"; then
    log "$kind: the run failed"
    continue
  fi
  LINE=$(annotate "$LINE" scenario=s2)
  echo "$LINE"
  lines+=("$LINE")
done
python3 -c '
import json, sys
runs = [json.loads(a) for a in sys.argv[4:]]
print(json.dumps({"scenario": "s2-summary", "rate": int(sys.argv[1]), "clients": int(sys.argv[2]),
  "batch": sys.argv[3] == "1", "ideal_per_sec": int(sys.argv[1]) * int(sys.argv[2]),
  "runs": {r["server_kind"]: {"delivered_per_sec": r["delivered_per_sec"],
    "delivered_ratio_seq": r["delivered_ratio_seq"], "delivered_ratio": r["delivered_ratio"],
    "p99_us": r["latency_us"]["p99"], "conflated_fraction": r["conflated_fraction"],
    "disconnected": r["disconnected"], "server_cpu_percent": (r["server"] or {}).get("cpu_percent"),
    "loadgen_saturated": (r["loadgen"] or {}).get("saturated")} for r in runs}}))' \
  "$RATE" "$CLIENTS" "$batch" "${lines[@]}"
