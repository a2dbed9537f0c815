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

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
ensure_wrk
bench_setup apibench -p ingest -p api -p loadgen
export LB_LAYOUT=$layout LB_LOADGEN_PLAYERS=$players
port=$(free_port)
api=http://127.0.0.1:$port
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
start_api "$port"
# Writes: 30,000 events/s for the whole benchmark (no loadgen reads: wrk is the reader).
bench_background target/release/loadgen run --api "$api" --rate 30000 --duration 120s --read-rate 0 \
    --probe-interval 0 --verify-sample 1000 --report "$out/loadgen.json" >"$out/loadgen.log" 2>&1
sleep 10
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua PLAYERS=$players BOARD=$run
echo "== top 100 ($connections connections, $duration, while ingest applies 30K events/s)"
wrk -t2 -c"$connections" -d"$duration" -s "$REPORT_LUA" "$api/v1/boards/$run/top?limit=100"
echo "== rank of a random player ($connections connections, $duration)"
wrk -t2 -c"$connections" -d"$duration" -s "$SCRIPT_DIR/wrk/rank.lua" "$api"
grep -E "^t=" "$out/loadgen.log" | tail -1
