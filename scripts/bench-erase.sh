#!/usr/bin/env bash
# Erasure latency: seeds one board of N players per layout (single, hash:8, range with
# equal-population boundaries) on the local Redis, then erases R of their players one by one with
# `lb-admin erase --json` and reports each layout's latencies (an erasure visits every board of the
# store and its seasons, so the store's board count is printed beside them). The rounds alternate
# between an erasure kept in the players log (the default: LB_KAFKA_BROKERS set) and one kept in
# Redis only, so the log's cost is measured side by side in the same run.
#
# Usage: scripts/bench-erase.sh [--players N] [--rounds R]
#   e.g. scripts/bench-erase.sh --players 10000000 --rounds 20
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
players=1000000 rounds=10
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
bench_setup erase -p loadgen -p admin
# A database of its own: erasures are store-wide, and loadgen's ids are every run's ids.
export LB_REDIS_URL=${LB_REDIS_URL%/}/14 LB_LOADGEN_PLAYERS=$players
# lb-admin erase keeps each erasure in the players log (its time is part of the latency): one of its own.
export LB_PLAYERS_TOPIC=bench-erase-players-$(date +%s)-$$
redis-cli -u "$LB_REDIS_URL" flushdb >/dev/null
# Boundaries at the quartiles of loadgen's seeded scores (1000 / (1 - u)^0.7 for uniform u).
for layout in single hash:8 range:1223,1625,2639; do
    board=$run-${layout%%:*}
    LB_LAYOUT=$layout LB_LOADGEN_BOARD=$board target/release/loadgen seed >/dev/null
    echo "== $layout: board $board, $(redis-cli -u "$LB_REDIS_URL" SCARD lb:boards) boards in the store"
    logged=() redis_only=()
    for i in $(seq 1 "$rounds"); do
        player=$(printf 'p-%08d' $(((i * 7919) % players)))
        start=$(date +%s%N)
        if ((i % 2)); then
            out=$(target/release/lb-admin erase "$player" --json)
        else
            out=$(env -u LB_KAFKA_BROKERS target/release/lb-admin erase "$player" --json 2>/dev/null)
        fi
        took=$((($(date +%s%N) - start) / 1000000))
        if ((i % 2)); then logged+=("$took"); else redis_only+=("$took"); fi
        grep -q "\"$board\"" <<<"$out" || { echo "the erasure did not find $player on $board: $out" >&2; exit 1; }
    done
    summary() { # label, latencies...
        local label=$1 sorted n
        shift
        sorted=$(printf '%s\n' "$@" | sort -n)
        n=$#
        echo "  $label ($n players): min $(head -1 <<<"$sorted") median $(sed -n "$(((n + 1) / 2))p" <<<"$sorted") max $(tail -1 <<<"$sorted")"
    }
    echo "erase latency (ms, lb-admin process included):"
    summary "kept in the players log" "${logged[@]}"
    summary "Redis only" "${redis_only[@]}"
    target/release/lb-admin delete "$board" >/dev/null
done
redis-cli -u "$LB_REDIS_URL" flushdb >/dev/null
