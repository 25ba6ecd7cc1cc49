#!/usr/bin/env bash
# S4 slow consumers (benches/BENCHMARKS.md): the S1 shape (1000 clients x
# 10 of 100 symbols) at RATE, once without and once with 10 % slow
# clients, back to back, on fresh servers of the same kind. A slow client
# has a 4 KiB receive buffer and, once subscribed, stops reading for
# SLOW_PAUSE_MS, reads for SLOW_READ_MS, and so on (SLOW_STOP=1: it never
# reads again). The normal clients' figures are the headline of both
# runs, so their ratio shows what slow clients cost everyone else.
#
#   benches/scenarios/s4.sh RATE [KIND]
#       KIND: tickwire (default; tickwire-redis with BUS=redis),
#       tickwire-redis, node-ws (quotes only). Prints the two JSON lines
#       ("scenario":"s4", "slow_fraction" 0 then SLOW_FRACTION) and a
#       summary line: normal clients' p99 with / without, server RSS
#       start -> end of both, the slow clients' conflated fraction, gaps
#       and closes.
#   CHANNEL=trade benches/scenarios/s4.sh RATE
#       the same on trades (feeds-s1-trade.toml, tickwire kinds only):
#       trades are never conflated, so a slow client that falls behind
#       the gateway's trade queue gets `gap` notices instead.
#
# Environment: CLIENTS (1000), PER_CLIENT (10), DURATION (10 s), CHANNEL
# (quote), SLOW_FRACTION (0.1), SLOW_PAUSE_MS (3000), SLOW_READ_MS (500),
# SLOW_RCVBUF (4096), SLOW_STOP=1, and lib.sh's (TW_ENV to change the
# gateway's limits, e.g. "TICKWIRE_GATEWAY_SLOW_CONSUMER_TIMEOUT_MS=2000
# TICKWIRE_GATEWAY_TRADE_QUEUE_LEN=64", TW_ARGS, SKIP_BUILD, ...).
#
# On loopback the server's kernel send buffer grows to ~4 MiB per
# connection (tcp_wmem max), and a pausing client's data waits there
# before the gateway's outbox ever sees a full socket: a slow client
# conflates (or, on trades, gets gaps) only once RATE/100 x PER_CLIENT x
# ~200 B/update x pause exceeds that. Before that point it just gets
# data as old as its pause. Compare its latency and conflated fraction.
# Gaps on a small run, by exceeding it (2026-11-24: 500 gaps, the slow
# clients got 84 % of what was published, 3 s of 160 000 deliveries/s):
#   CHANNEL=trade CLIENTS=20 PER_CLIENT=100 SLOW_FRACTION=0.25 \
#   SLOW_PAUSE_MS=3000 DURATION=3 TW_ENV=TICKWIRE_GATEWAY_TRADE_QUEUE_LEN=16 \
#   benches/scenarios/s4.sh 8000
set -euo pipefail

SCEN=s4
# shellcheck source=benches/scenarios/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-1000}
PER_CLIENT=${PER_CLIENT:-10}
DURATION=${DURATION:-10}
CHANNEL=${CHANNEL:-quote}
SLOW_FRACTION=${SLOW_FRACTION:-0.1}
SLOW_PAUSE_MS=${SLOW_PAUSE_MS:-3000}
SLOW_READ_MS=${SLOW_READ_MS:-500}
SLOW_RCVBUF=${SLOW_RCVBUF:-4096}

usage() {
  echo "usage: $0 RATE [tickwire|tickwire-redis|node-ws]  (env CHANNEL=quote|trade SLOW_FRACTION SLOW_PAUSE_MS SLOW_READ_MS SLOW_STOP=1 CLIENTS DURATION)" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 && "$1" =~ ^[0-9]+$ ]] || usage
rate=$1
kind=$(with_bus "${2:-tickwire}")
is_kind "$kind" || usage
[[ "$CHANNEL" == quote || "$CHANNEL" == trade ]] || usage
if [[ "$CHANNEL" == trade && "$kind" == node-ws ]]; then
  log "node-ws serves quotes only: CHANNEL=trade needs a tickwire kind"
  exit 2
fi

slow=(--slow-fraction "$SLOW_FRACTION" --slow-pause-ms "$SLOW_PAUSE_MS"
  --slow-read-ms "$SLOW_READ_MS" --slow-rcvbuf "$SLOW_RCVBUF")
[[ "${SLOW_STOP:-0}" == 1 ]] && slow+=(--slow-stop)

build
expected=$(python3 -c "print($rate / $SYMBOLS)")
lines=()
for with in 0 1; do
  extra=() desc="no slow clients" fraction=0
  if (( with )); then
    extra=("${slow[@]}") fraction=$SLOW_FRACTION
    desc="$SLOW_FRACTION slow (pause ${SLOW_PAUSE_MS} ms / read ${SLOW_READ_MS} ms)"
    [[ "${SLOW_STOP:-0}" == 1 ]] && desc="$SLOW_FRACTION slow (never reading once subscribed)"
  fi
  log "$kind at $rate $CHANNEL updates/s, $CLIENTS clients x $PER_CLIENT, $desc, ${DURATION}s"
  measure "$kind" "$rate" "$CHANNEL" --clients "$CLIENTS" --symbols-per-client "$PER_CLIENT" \
    --expected-rate "$expected" "${extra[@]}" || { log "$kind: the run failed"; exit 1; }
  LINE=$(annotate "$LINE" scenario=s4 slow_fraction="$fraction")
  echo "$LINE"
  lines+=("$LINE")
done
python3 -c '
import json, sys
base, slow = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def rss(v):
    s = v["server"] or {}
    return [s.get("rss_kib_start"), s.get("rss_kib_end")]
p0, p1 = base["latency_us"]["p99"], slow["latency_us"]["p99"]
s = slow["slow"] or {}
print(json.dumps({"scenario": "s4-summary", "server_kind": base["server_kind"], "rate": base["rate"],
  "channel": base["channel"], "slow_fraction": slow["slow_fraction"],
  "normal_p99_us": {"without": p0, "with": p1}, "normal_p99_ratio": round(p1 / p0, 2) if p0 else None,
  "normal_delivered_ratio_seq": {"without": base["delivered_ratio_seq"], "with": slow["delivered_ratio_seq"]},
  "normal_disconnected": {"without": base["disconnected"], "with": slow["disconnected"]},
  "server_rss_kib": {"without": rss(base), "with": rss(slow)},
  "slow_conflated_fraction": s.get("conflated_fraction"), "slow_gaps": s.get("gaps"),
  "slow_p99_us": (s.get("latency_us") or {}).get("p99"), "slow_closes": s.get("closes"),
  "server_slow_consumer_closes": slow.get("server_slow_consumer_closes")}))' "${lines[0]}" "${lines[1]}"
