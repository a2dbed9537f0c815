#!/usr/bin/env bash
# Ingest drain rate with signing required against without, side by side in one run: runs
# scripts/bench-ingest.sh alternately without signatures and with every event signed by loadgen
# (LB_LOADGEN_SIGN_KEY) and ingest requiring signatures (LB_PRODUCER_KEYS, LB_REQUIRE_SIGNATURES),
# ROUNDS times each, same binaries, same events.
#
# Usage: scripts/bench-signing.sh [ROUNDS] [bench-ingest.sh options...]
#   e.g. scripts/bench-signing.sh 2 --events 3000000
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
rounds=${1:-2}
shift $(($# >= 1 ? 1 : 0))
# A key for this run only: 32 random bytes, never written anywhere but this process's environment.
key="bench-$(date +%s):$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
interleaved_drains "$rounds" "without signatures" "-u LB_LOADGEN_SIGN_KEY -u LB_PRODUCER_KEYS -u LB_REQUIRE_SIGNATURES" \
    "signatures required" "LB_LOADGEN_SIGN_KEY=$key LB_PRODUCER_KEYS=$key LB_REQUIRE_SIGNATURES=true" "$@"
