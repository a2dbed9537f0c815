#!/usr/bin/env bash
# Board rules side by side in one run: a `ties: shared` board against a `ties: earliest` one
# (same players, same events, same layout), alternating A B A B so both see the same machine:
#   1. memory per player (MEMORY USAGE of every key of each board, after seeding);
#   2. ingest drain rate: a fresh topic of EVENTS realistic events for one board, drained by
#      one worker, ROUNDS times per board;
#   3. rank latency: wrk (closed loop) on the rank route of random players, each board in turn.
#
# Usage: scripts/bench-rules.sh [--players N] [--events N] [--rounds N] [--layout L]
#                               [--duration 20s] [--connections 32]
#   defaults: 1,000,000 players, 3,000,000 events, 2 rounds, layout single, 20s, 32 connections
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=1000000 events=3000000 rounds=2 layout=single duration=20s connections=32
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --events) events=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --layout) layout=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
ensure_wrk
bench_setup rulesbench -p ingest -p api -p loadgen -p admin
export LB_LAYOUT=$layout LB_LOADGEN_PLAYERS=$players
echo "== $players players per board, layout $layout, $events events per drain, $rounds round(s)"

declare -A bytes drains
for ties in shared earliest; do
    board=$run-$ties
    LB_LOADGEN_BOARD=$board LB_LOADGEN_TIES=$ties target/release/loadgen seed
    bytes[$ties]=$(board_bytes "$board")
    printf 'memory  %-8s  %12d bytes  %6.1f bytes/player\n' "$ties" "${bytes[$ties]}" \
        "$(bc -l <<<"${bytes[$ties]} / $players")"
done

for round in $(seq 1 "$rounds"); do
    for ties in shared earliest; do
        board=$run-$ties topic=$run-$ties-$round
        export LB_TOPIC=$topic LB_DLQ_TOPIC=$topic.dlq LB_INGEST_GROUP=$topic
        LB_LOADGEN_BOARD=$board LB_LOADGEN_TIES=$ties target/release/loadgen topics --partitions 6 --dlq-partitions 1
        LB_LOADGEN_BOARD=$board LB_LOADGEN_TIES=$ties target/release/loadgen fill --count "$events" >/dev/null
        env LB_INGEST_METRICS_ADDR=127.0.0.1:0 target/release/ingest >"$out/ingest-$ties-$round.log" 2>&1 &
        pid=$!
        result=$(target/release/loadgen drain --expect "$events" 2>&1 | grep -E 'drained' | tail -1)
        kill -TERM "$pid"
        wait "$pid" || true
        rate=$(drain_rate "$result")
        drains[$ties]+="$rate "
        echo "drain   $ties round $round: $result"
    done
done

port=$(free_port)
api=http://127.0.0.1:$port
start_api "$port"
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua PLAYERS=$players
declare -A p99s
for round in $(seq 1 "$rounds"); do
    for ties in shared earliest; do
        echo "== rank of a random player, ties $ties, round $round ($connections connections, $duration)"
        result=$(BOARD=$run-$ties wrk -t2 -c"$connections" -d"$duration" -s "$SCRIPT_DIR/wrk/rank.lua" "$api")
        echo "$result" | grep -E 'Requests/sec|^requests|latency ms|Non-2xx' || true
        # report.lua's line: "latency ms: p50 A  p99 B  p999 C  max D".
        p99s[$ties]+="$(sed -nE 's/^latency ms: .*p99 ([0-9.]+).*/\1/p' <<<"$result") "
    done
done

echo
echo "side by side ($layout, $players players per board):"
printf '  memory per player:  shared %.1f B, earliest %.1f B (%.2fx)\n' \
    "$(bc -l <<<"${bytes[shared]} / $players")" "$(bc -l <<<"${bytes[earliest]} / $players")" \
    "$(bc -l <<<"${bytes[earliest]} / ${bytes[shared]}")"
echo "  drain rate (events/s):  shared ${drains[shared]}| earliest ${drains[earliest]}"
echo "  rank p99 (ms):           shared ${p99s[shared]}| earliest ${p99s[earliest]}"
