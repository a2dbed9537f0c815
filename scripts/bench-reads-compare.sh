#!/usr/bin/env bash
# The api's reads of this checkout against another commit, side by side in one run: builds REV's
# api in a git worktree (target/bench-rev/REV), seeds one board, serves it with both apis at once
# (same Redis, same data, no writes) and runs wrk against them alternately, ROUNDS times each,
# in the order A B B A A B ... (so neither side always goes first), on the top-100 and rank routes,
# so both see the same machine.
#
# Usage: scripts/bench-reads-compare.sh REV [ROUNDS] [--players N] [--duration 10s] [--connections 32] [--layout L]
#   e.g. scripts/bench-reads-compare.sh HEAD~3 3 --players 1000000
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
rev=${1:?usage: scripts/bench-reads-compare.sh REV [ROUNDS] [options...]}
rounds=${2:-3}
shift $(($# >= 2 ? 2 : 1))
players=1000000 duration=10s connections=32 layout=single
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

ensure_wrk
sha=$(git rev-parse --short "$rev")
tree=$(build_rev "$rev" api)
bench_setup readcmp -p ingest -p api -p loadgen
export LB_LAYOUT=$layout LB_LOADGEN_PLAYERS=$players
target/release/loadgen topics --partitions 2 --dlq-partitions 1
target/release/loadgen seed
start_ingest # makes the store's epoch, which the apis wait for
declare -A port=([before]=$(free_port) [after]=$(free_port))
start_api_bin "$tree/target/release/api" "${port[before]}"
start_api "${port[after]}"
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua PLAYERS=$players BOARD=$run
declare -A top=() rank=()
for round in $(seq 1 "$rounds"); do
    order=(before after)
    ((round % 2 == 0)) && order=(after before)
    for side in "${order[@]}"; do
        api=http://127.0.0.1:${port[$side]}
        echo "== round $round: $side ($([[ $side == before ]] && echo "$sha" || git rev-parse --short HEAD))"
        t=$(wrk -t2 -c"$connections" -d"$duration" -s "$REPORT_LUA" "$api/v1/boards/$run/top?limit=100" | grep -E '^(requests|latency)')
        r=$(wrk -t2 -c"$connections" -d"$duration" -s "$SCRIPT_DIR/wrk/rank.lua" "$api" | grep -E '^(requests|latency)')
        printf 'top-100: %s\nrank:    %s\n' "$(tr '\n' ' ' <<<"$t")" "$(tr '\n' ' ' <<<"$r")"
        top[$side]+="$(grep -oE '= [0-9]+ req/s' <<<"$t" | grep -oE '[0-9]+') "
        rank[$side]+="$(grep -oE '= [0-9]+ req/s' <<<"$r" | grep -oE '[0-9]+') "
    done
done
echo
echo "requests/s, $rounds round(s) each, interleaved ($players players, $layout, $connections connections, $duration):"
printf '  %-22s top-100: %s  rank: %s\n' "before ($sha):" "${top[before]}" "${rank[before]}" \
    "after ($(git rev-parse --short HEAD)):" "${top[after]}" "${rank[after]}"
