#!/usr/bin/env bash
# Every load scenario in sequence (benches/BENCHMARKS.md), one at a time:
#   1. S1 sweep, memory bus and node-ws     s1.sh sweep $S1_RATES
#   2. S1 sweep, Redis bus                  KINDS=tickwire-redis s1.sh sweep $S1_RATES
#   3. S2 on both buses and node-ws         s2.sh tickwire tickwire-redis node-ws
#   4. S3                                   s3.sh tickwire node-ws
#   5. S4 on quotes, then on trades         s4.sh $S4_RATE; CHANNEL=trade s4.sh $S4_RATE
#   6. S5                                   s5.sh $S5_RATE tickwire node-ws
#
#   benches/scenarios/all.sh OUT
#       appends every JSON line of every step to the file OUT as it comes
#       (and prints them on stdout at the end of each step), then one
#       line {"scenario":"all",...} with each step's exit status and
#       duration. Builds once.
#
# Environment: S1_RATES (s1.sh's default list), S2_RATE (10000), S3_CONNS
# (19000), S4_RATE (500), S5_RATE (1000: twice tickwire's clean S1 rate
# of the first run), STEP_MAX_SECS (900: a step still running is
# stopped), ALL_MAX_SECS (5400: no step starts after it), and any of the
# scenario scripts' (CLIENTS, DURATION, SOURCE_ADDRS, TW_ARGS, TW_ENV,
# ...; they apply to every step, e.g. for a smoke run).
set -euo pipefail

SCEN=all
# shellcheck source=benches/scenarios/lib.sh
source "$(dirname "$0")/lib.sh"

S2_RATE=${S2_RATE:-10000}
S3_CONNS=${S3_CONNS:-19000}
S4_RATE=${S4_RATE:-500}
S5_RATE=${S5_RATE:-1000}
STEP_MAX_SECS=${STEP_MAX_SECS:-900}
ALL_MAX_SECS=${ALL_MAX_SECS:-5400}

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: $0 OUT  (JSON lines are appended to OUT)" >&2; exit 2; }
OUT=$1
touch "$OUT"

STEP_PID=""
# The running step first: TERM reaches its script through `timeout`, and
# the script's own trap stops what it started (give it the time to).
all_cleanup() {
  if [[ -n "$STEP_PID" ]] && kill -0 "$STEP_PID" 2>/dev/null; then
    kill -TERM "$STEP_PID" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$STEP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  cleanup
}
trap all_cleanup EXIT

build
export SKIP_BUILD=1
started=$SECONDS
steps=()

# step NAME ENV-WORDS... -- SCRIPT ARGS...: one scenario, bounded by
# STEP_MAX_SECS and what is left of ALL_MAX_SECS.
step() {
  local name=$1 envw=() rc=0 t0=$SECONDS lines0 left limit
  shift
  while [[ "$1" != -- ]]; do envw+=("$1"); shift; done
  shift
  left=$((ALL_MAX_SECS - (SECONDS - started)))
  if (( left <= 0 )); then
    log "time budget (${ALL_MAX_SECS}s) spent: $name skipped"
    steps+=("{\"step\": \"$name\", \"skipped\": true}")
    return 0
  fi
  limit=$(( left < STEP_MAX_SECS ? left : STEP_MAX_SECS ))
  log "== $name (at most ${limit}s): ${envw[*]} $*"
  lines0=$(wc -l <"$OUT")
  env "${envw[@]}" timeout -k 60 "$limit" "$@" >>"$OUT" &
  STEP_PID=$!
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  tail -n +"$((lines0 + 1))" "$OUT"
  (( rc == 0 )) || log "$name ended with status $rc$( ((rc == 124)) && echo ' (time limit)')"
  steps+=("{\"step\": \"$name\", \"rc\": $rc, \"secs\": $((SECONDS - t0))}")
}

here=$SCENARIOS
read -r -a s1_rates <<<"${S1_RATES:-}"
step s1-memory -- "$here/s1.sh" sweep "${s1_rates[@]}"
step s1-redis KINDS=tickwire-redis -- "$here/s1.sh" sweep "${s1_rates[@]}"
step s2 RATE="$S2_RATE" -- "$here/s2.sh" tickwire tickwire-redis node-ws
step s3 CONNS="$S3_CONNS" -- "$here/s3.sh" tickwire node-ws
step s4-quote CHANNEL=quote -- "$here/s4.sh" "$S4_RATE" tickwire
step s4-trade CHANNEL=trade -- "$here/s4.sh" "$S4_RATE" tickwire
step s5 -- "$here/s5.sh" "$S5_RATE" tickwire node-ws

summary=$(python3 -c '
import json, sys
print(json.dumps({"scenario": "all", "secs": int(sys.argv[1]), "steps": [json.loads(s) for s in sys.argv[2:]]}))' \
  "$((SECONDS - started))" "${steps[@]}")
echo "$summary" >>"$OUT"
echo "$summary"
