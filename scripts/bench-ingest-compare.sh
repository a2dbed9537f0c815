#!/usr/bin/env bash
# Ingest drain rate of this checkout against another commit, side by side in one run:
# builds REV's ingest in a git worktree (target/bench-rev/REV), then runs scripts/bench-ingest.sh
# alternately with the two binaries, ROUNDS times each (A B A B ...), so both see the same machine.
#
# Usage: scripts/bench-ingest-compare.sh REV [ROUNDS] [bench-ingest.sh options...]
#   e.g. scripts/bench-ingest-compare.sh HEAD~3 2 --events 3000000
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
rev=${1:?usage: scripts/bench-ingest-compare.sh REV [ROUNDS] [bench-ingest.sh options...]}
rounds=${2:-2}
shift $(($# >= 2 ? 2 : 1))
sha=$(git rev-parse --short "$rev")
tree=$(build_rev "$rev" ingest)
cargo build --release --locked -q -p ingest -p loadgen
declare -A rates=([before]="" [after]="")
for round in $(seq 1 "$rounds"); do
    for side in before after; do
        bin=target/release/ingest
        [[ $side == before ]] && bin=$tree/target/release/ingest
        echo "== round $round: $side ($([[ $side == before ]] && echo "$sha" || git rev-parse --short HEAD))"
        out=$(bash "$SCRIPT_DIR/bench-ingest.sh" --ingest "$bin" "$@" 2>&1)
        grep -E '^(filled|ingest:|drained)' <<<"$out"
        rate=$(drain_rate "$out")
        rates[$side]+="$rate "
    done
done
echo
echo "drain rate (events/s), $rounds round(s) each, interleaved:"
echo "  before ($sha): ${rates[before]}"
echo "  after ($(git rev-parse --short HEAD)): ${rates[after]}"
