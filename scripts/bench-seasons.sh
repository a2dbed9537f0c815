#!/usr/bin/env bash
# Seasons side by side in one run: ingest's drain rate on a board with a daily reset (every event
# written to its season and to all-time) against the same board without one. Runs
# scripts/bench-ingest.sh alternately without and with LB_LOADGEN_RESET=day, ROUNDS times each,
# same binaries, same events (stamped now: all in the current season).
#
# Usage: scripts/bench-seasons.sh [ROUNDS] [bench-ingest.sh options...]
#   e.g. scripts/bench-seasons.sh 2 --events 3000000 --layout hash:4
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
rounds=${1:-2}
shift $(($# >= 1 ? 1 : 0))
declare -A rates=([all_time]="" [seasonal]="")
for round in $(seq 1 "$rounds"); do
    for side in all_time seasonal; do
        echo "== round $round: $side"
        if [[ $side == seasonal ]]; then
            out=$(LB_LOADGEN_RESET=day bash "$SCRIPT_DIR/bench-ingest.sh" "$@" 2>&1)
        else
            out=$(env -u LB_LOADGEN_RESET bash "$SCRIPT_DIR/bench-ingest.sh" "$@" 2>&1)
        fi
        grep -E '^(filled|ingest:|drained)' <<<"$out"
        rate=$(drain_rate "$out")
        rates[$side]+="$rate "
    done
done
echo
echo "drain rate (events/s), $rounds round(s) each, interleaved:"
echo "  all-time only:          ${rates[all_time]}"
echo "  daily seasons as well:  ${rates[seasonal]}"
