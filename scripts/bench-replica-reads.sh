#!/usr/bin/env bash
# Rank reads from the replicas against reads from the primary, side by side in one run, on the
# Sentinel group of scripts/infra.sh (a primary and two replicas) while ingest writes through the
# primary. Two apis run at once over the same data, `--read-from primary` and `--read-from replica`;
# wrk (closed loop) asks each for the rank of random players in alternating rounds
# (primary, replica, primary, replica...), so both see the same machine and the same write load.
#
# Usage: scripts/bench-replica-reads.sh [--players N] [--rate EVENTS/S] [--duration 20s]
#                                       [--rounds 2] [--connections 32]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=1000000 rate=30000 duration=20s rounds=2 connections=32
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --rate) rate=$2; shift ;;
        --duration) duration=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
ensure_wrk
bench_setup replicabench -p ingest -p api -p loadgen
export LB_REDIS_URL=$LB_REDIS_SENTINEL_URL LB_LAYOUT=single LB_LOADGEN_PLAYERS=$players
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
declare -A api
for policy in primary replica; do
    port=$(free_port)
    api[$policy]=http://127.0.0.1:$port
    start_api "$port" LB_READ_FROM=$policy
done
# Writes for the whole benchmark, through the primary (loadgen's own reads off: wrk is the reader).
seconds=$(((rounds * 2 * ${duration%s}) + 30))
bench_background target/release/loadgen run --api "${api[primary]}" --rate "$rate" --duration "${seconds}s" \
    --read-rate 0 --probe-interval 0 --verify-sample 1000 --report "$out/loadgen.json" >"$out/loadgen.log" 2>&1
sleep 10
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua PLAYERS=$players BOARD=$run
echo "== rank of a random player: $players players, ingest writing $rate events/s through the primary"
for round in $(seq 1 "$rounds"); do
    for policy in primary replica; do
        echo "-- round $round, --read-from $policy ($connections connections, $duration)"
        wrk -t2 -c"$connections" -d"$duration" -s "$SCRIPT_DIR/wrk/rank.lua" "${api[$policy]}"
    done
done
grep -E "^t=" "$out/loadgen.log" | tail -1 || true
