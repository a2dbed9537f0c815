#!/usr/bin/env bash
# api under load: a board of 10,000,000 players, ingest applying 30,000 events/s from loadgen,
# and wrk (Debian's, closed loop) hammering the top-100 and rank routes.
#
# Usage: scripts/bench-api.sh [--players N] [--duration 30s] [--connections 32] [--layout L]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=10000000 duration=30s connections=32 layout=single
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        --layout) layout=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

command -v wrk >/dev/null 2>&1 || {
    echo "installing wrk from apt" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
}
cargo build --release --locked -q -p ingest -p api -p loadgen
bash "$SCRIPT_DIR/infra.sh" up >/dev/null
# shellcheck source=/dev/null
source target/infra/env
run=apibench-$(date +%Y%m%d-%H%M%S)
out=target/bench/$run
mkdir -p "$out"
export LB_TOPIC=$run LB_DLQ_TOPIC=$run.dlq LB_INGEST_GROUP=$run LB_LAYOUT=$layout
export LB_LOADGEN_BOARD=$run LB_LOADGEN_PLAYERS=$players
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=http://127.0.0.1:$port
pids=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
LB_INGEST_METRICS_ADDR=127.0.0.1:0 target/release/ingest >"$out/ingest.log" 2>&1 &
pids+=($!)
LB_API_ADDR=127.0.0.1:$port target/release/api >"$out/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$api/readyz" >/dev/null && break; sleep 0.1; done
# Writes: 30,000 events/s for the whole benchmark (no loadgen reads: wrk is the reader).
target/release/loadgen run --api "$api" --rate 30000 --duration 120s --read-rate 0 --probe-interval 0 \
    --verify-sample 1000 --report "$out/loadgen.json" >"$out/loadgen.log" 2>&1 &
pids+=($!)
sleep 10
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua PLAYERS=$players BOARD=$run
echo "== top 100 ($connections connections, $duration, while ingest applies 30K events/s)"
wrk -t2 -c"$connections" -d"$duration" -s "$REPORT_LUA" "$api/v1/boards/$run/top?limit=100"
echo "== rank of a random player ($connections connections, $duration)"
wrk -t2 -c"$connections" -d"$duration" -s "$SCRIPT_DIR/wrk/rank.lua" "$api"
grep -E "^t=" "$out/loadgen.log" | tail -1
