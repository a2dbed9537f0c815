#!/usr/bin/env bash
# Ingest throughput: pre-fill a fresh topic with realistic score events, then time how
# fast `ingest` drains it into Redis (consumer lag from the first commit to 0).
#
# Usage: scripts/bench-ingest.sh [--events N] [--players N] [--partitions N] [--layout L] [--workers N]
#                                [--ingest PATH] [--redis URL]
#   defaults: 3,000,000 events from 1,000,000 players, 6 partitions, layout single, 1 worker,
#   the ingest binary of this checkout (--ingest runs another build, e.g. an older commit's:
#   scripts/bench-ingest-compare.sh does that side by side); --redis another target than the
#   single Redis of scripts/infra.sh, e.g. "$LB_REDIS_SENTINEL_URL" (ingest's own LB_INGEST_* settings,
#   such as LB_INGEST_WAIT_REPLICAS, pass through from the environment). With LB_LOADGEN_RESET
#   (day, week, month) the board gets that reset first, so every event is also written to its season.
#   With LB_LOADGEN_OPERATOR (last, sum) the board is created with that operator first, and every
#   event carries an id (docs/contract.md#write-operators).
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

events=3000000 players=1000000 partitions=6 layout=single workers=1 ingest_bin=target/release/ingest redis=
while (($#)); do
    case $1 in
        --events) events=$2; shift ;;
        --players) players=$2; shift ;;
        --partitions) partitions=$2; shift ;;
        --layout) layout=$2; shift ;;
        --workers) workers=$2; shift ;;
        --ingest) ingest_bin=$2; shift ;;
        --redis) redis=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cargo build --release --locked -q -p ingest -p loadgen -p admin
bash "$SCRIPT_DIR/infra.sh" up >/dev/null
# shellcheck source=/dev/null
source target/infra/env
if [[ -n $redis ]]; then export LB_REDIS_URL=$redis; fi
run=bench-$(date +%Y%m%d-%H%M%S)
export LB_TOPIC=$run LB_DLQ_TOPIC=$run.dlq LB_INGEST_GROUP=$run LB_LAYOUT=$layout
export LB_LOADGEN_BOARD=$run LB_LOADGEN_PLAYERS=$players
mkdir -p "target/bench/$run"
pids=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_workers() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_workers EXIT

target/release/loadgen topics --partitions "$partitions" --dlq-partitions 1
if [[ -n ${LB_LOADGEN_RESET:-} ]]; then
    target/release/lb-admin rules "$run" --reset "$LB_LOADGEN_RESET" --late-grace 1h --layout "$layout"
fi
if [[ ${LB_LOADGEN_OPERATOR:-best} != best ]]; then
    target/release/lb-admin rules "$run" --operator "$LB_LOADGEN_OPERATOR" --layout "$layout"
fi
target/release/loadgen fill --count "$events"
echo "ingest: $workers worker(s), layout $layout, $partitions partitions, $players players"
for i in $(seq 1 "$workers"); do
    LB_INGEST_METRICS_ADDR=127.0.0.1:0 "$ingest_bin" >"target/bench/$run/ingest-$i.log" 2>&1 &
    pids+=($!)
done
target/release/loadgen drain --expect "$events"
