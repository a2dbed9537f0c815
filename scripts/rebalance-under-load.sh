#!/usr/bin/env bash
# lb-admin rebalances (or migrates) a live board while loadgen writes to it, then loadgen verifies
# every sampled player and the top 100 against its oracle. By default a range board starts with one
# boundary that leaves nearly everyone in the lowest shard; after `--after` seconds of load,
# `lb-admin rebalance --shards N` moves it to equal-population shards. With `--migrate-to LAYOUT`
# the board starts on `--layout` (ingest and api configured with it, never reconfigured) and
# `lb-admin migrate --to LAYOUT` moves it instead. The run passes only if the verification finds
# no mismatch.
#
# Usage: scripts/rebalance-under-load.sh [--players N] [--rate EVENTS/S] [--duration 90s]
#                                        [--after 15] [--shards 8]
#                                        [--layout single --migrate-to hash:16]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=1000000 rate=30000 duration=90s after=15 shards=8 layout=range:1000000000 migrate_to=
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --rate) rate=$2; shift ;;
        --duration) duration=$2; shift ;;
        --after) after=$2; shift ;;
        --shards) shards=$2; shift ;;
        --layout) layout=$2; shift ;;
        --migrate-to) migrate_to=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '[rebalance] %s\n' "$*" >&2; }
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
bench_setup rebalance -p ingest -p api -p loadgen -p admin
# By default one boundary far above every initial score: the whole board starts in shard 0.
export LB_LAYOUT=$layout LB_LOADGEN_PLAYERS=$players
port=$(free_port)
api=http://127.0.0.1:$port
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
start_api "$port"
# This run's board and its shards, from lb-admin's listing of every board.
show_board() { target/release/lb-admin boards | awk -v b="$run" '$1 == b { p = 1; print; next } p && /^  shard/ { print; next } { p = 0 }'; }
say "board $run: $players players, layout before:"
show_board
target/release/loadgen run --api "$api" --rate "$rate" --duration "$duration" --report "$out/report.json" \
    >"$out/loadgen.log" 2>&1 &
load=$!
bench_pids+=("$load")
sleep "$after"
started=$(date +%s.%N)
if [[ -n $migrate_to ]]; then
    say "migrating from $layout to $migrate_to while loadgen writes $rate events/s"
    target/release/lb-admin migrate "$run" --to "$migrate_to" --chunk 2000
    what=migration
else
    say "rebalancing to $shards equal-population shards while loadgen writes $rate events/s"
    target/release/lb-admin rebalance "$run" --shards "$shards" --chunk 2000
    what=rebalance
fi
say "$what took $(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')") s (including the 10 s grace and 1 s of deletion)"
show_board
status=0
wait "$load" || status=$?
tail -12 "$out/loadgen.log"
say "loadgen exit status $status (0: verified with no mismatch); report $out/report.json"
exit "$status"
