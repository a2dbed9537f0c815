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
interleaved_drains "$rounds" "all-time only" "-u LB_LOADGEN_RESET" "daily seasons as well" "LB_LOADGEN_RESET=day" "$@"
