#!/usr/bin/env bash
# What the write operators cost (docs/performance.md#write-operators), side by side in one run:
# ingest's drain rate of EVENTS realistic events into a `best` board, a `sum` board and a `last`
# board (events with ids, applied exactly once: docs/ingest.md#exactly-once-operators), one worker,
# interleaved, ROUNDS times (scripts/bench-ingest.sh), then the ratios to `best`; and the memory a
# player's idempotency keys cost, from the `sum` board of the last round.
# A fourth side, `best-all`, is a `best` board whose every event improves its player's score
# (loadgen's improve share 1.0): by default four `best` events in five cannot improve and ingest
# skips them before Redis, which `last` and `sum` events never are; `best-all` does the same Redis
# work per event as they do, so it tells the operators' own cost from that skip.
#
# Usage: scripts/bench-operators.sh [--events N] [--players N] [--rounds N] [--layout L]
#   defaults: 3,000,000 events from 1,000,000 players, 2 rounds, layout single
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

events=3000000 players=1000000 rounds=2 layout=single
while (($#)); do
    case $1 in
        --events) events=$2; shift ;;
        --players) players=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --layout) layout=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
bench_setup opbench -p ingest -p loadgen -p admin
operators=(best best-all sum last)
declare -A rates
for round in $(seq 1 "$rounds"); do
    for op in "${operators[@]}"; do
        echo "== round $round: operator $op"
        settings=(LB_LOADGEN_OPERATOR="$op")
        [[ $op == best-all ]] && settings=(LB_LOADGEN_OPERATOR=best LB_LOADGEN_IMPROVE_SHARE=1.0)
        result=$(env "${settings[@]}" bash "$SCRIPT_DIR/bench-ingest.sh" --events "$events" --players "$players" \
            --layout "$layout" 2>&1)
        grep -E '^(filled|ingest:|drained)' <<<"$result"
        rates[$op]+="$(drain_rate "$result") "
        [[ $op == sum ]] && board=$(grep -oE 'bench-[0-9]{8}-[0-9]{6}' <<<"$result" | head -1)
    done
done
# The sum board of the last round: what its idempotency keys and applied offsets take.
redis_port=${LB_REDIS_URL##*:}
ids_bytes=0 ids_players=0
while read -r key; do
    [[ -z $key ]] && continue
    ids_bytes=$((ids_bytes + $(redis-cli -p "$redis_port" MEMORY USAGE "$key" SAMPLES 0)))
    ids_players=$((ids_players + $(redis-cli -p "$redis_port" HLEN "$key")))
done < <(redis-cli -p "$redis_port" --scan --pattern "lb:{$board*}:i")

mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"$1"; }
echo
echo "drain rate (events/s), layout $layout, $events events from $players players, $rounds round(s), interleaved:"
best=$(mean "${rates[best]}")
for op in "${operators[@]}"; do
    m=$(mean "${rates[$op]}")
    printf '  %-8s %-24s mean %8d  %.2fx best  %.2fx best-all\n' "$op" "${rates[$op]}" "$m" \
        "$(bc -l <<<"$m / $best")" "$(bc -l <<<"$m / $(mean "${rates[best-all]}")")"
done
if ((ids_players)); then
    printf '  idempotency keys of the last sum board: %d players, %d bytes, %.1f bytes per player\n' \
        "$ids_players" "$ids_bytes" "$(bc -l <<<"$ids_bytes / $ids_players")"
fi
