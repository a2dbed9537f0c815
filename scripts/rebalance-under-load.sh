#!/usr/bin/env bash
# lb-admin rebalances a live range board while loadgen writes to it, then loadgen verifies every
# player and the top 100 against its oracle. A range board starts with one boundary that leaves
# nearly everyone in the lowest shard; after `--after` seconds of load, `lb-admin rebalance
# --shards N` moves it to equal-population shards. The run passes only if the verification
# finds no mismatch.
#
# Usage: scripts/rebalance-under-load.sh [--players N] [--rate EVENTS/S] [--duration 90s]
#                                        [--after 15] [--shards 8]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=1000000 rate=30000 duration=90s after=15 shards=8
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --rate) rate=$2; shift ;;
        --duration) duration=$2; shift ;;
        --after) after=$2; shift ;;
        --shards) shards=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '[rebalance] %s\n' "$*" >&2; }
cargo build --release --locked -q -p ingest -p api -p loadgen -p admin
bash "$SCRIPT_DIR/infra.sh" up >/dev/null
# shellcheck source=/dev/null
source target/infra/env
run=rebalance-$(date +%Y%m%d-%H%M%S)
out=target/bench/$run
mkdir -p "$out"
# One boundary far above every initial score: the whole board starts in shard 0.
export LB_TOPIC=$run LB_DLQ_TOPIC=$run.dlq LB_INGEST_GROUP=$run LB_LAYOUT=range:1000000000
export LB_LOADGEN_BOARD=$run LB_LOADGEN_PLAYERS=$players
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
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
say "board $run: $players players, layout before:"
target/release/lb-admin boards | grep -A3 "^$run " || true
target/release/loadgen run --api "$api" --rate "$rate" --duration "$duration" --report "$out/report.json" \
    >"$out/loadgen.log" 2>&1 &
load=$!
sleep "$after"
say "rebalancing to $shards equal-population shards while loadgen writes $rate events/s"
started=$(date +%s.%N)
target/release/lb-admin rebalance "$run" --shards "$shards" --chunk 2000
say "rebalance took $(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')") s (including the 10 s grace)"
target/release/lb-admin boards | grep -A$((shards + 1)) "^$run " || true
status=0
wait "$load" || status=$?
grep -E "^(t=|verify|mismatch|events|reads|freshness)" "$out/loadgen.log" | tail -8 || true
tail -20 "$out/loadgen.log"
say "loadgen exit status $status (0: verified with no mismatch); report $out/report.json"
exit "$status"
