#!/usr/bin/env bash
# Compares the sharding layouts on the same work and writes docs/sharding-comparison.md and
# docs/sharding-comparison.svg (starts Redis and the Redis Cluster itself).
# Usage: scripts/compare-layouts.sh [extra args for the compare binary, e.g. --sizes 100000,1000000]
# The criterion benchmarks are separate: cargo bench -p leaderboard-benches (HTML in target/criterion).
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
bash "$SCRIPT_DIR/infra.sh" up >/dev/null
# shellcheck source=/dev/null
source target/infra/env
cargo run --release --locked -q -p leaderboard-benches --bin compare -- "$@"
