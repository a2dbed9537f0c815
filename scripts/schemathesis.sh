#!/usr/bin/env bash
# Runs schemathesis (PyPI) with every check against the api's OpenAPI document, on a seeded board,
# and fails on any failure or error: the api must answer as it documents, for any request.
#   1. installs schemathesis into target/schemathesis-venv (once)
#   2. seeds a board with a daily reset (loadgen seed) in a database of its own (15) of the Redis of
#      scripts/infra.sh, with a store epoch: the admin routes it fuzzes erase and ban players store-wide,
#      and the other tests' players (the same loadgen ids) must not be touched
#   3. starts the api binary on a free port with an admin token made for this run
#   4. st run --checks all for at most SECONDS (default 120), config scripts/schemathesis/schemathesis.toml
# Needs scripts/infra.sh up and the debug binaries (the test suite builds them).
#
# Usage: scripts/schemathesis.sh [SECONDS]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
seconds=${1:-120}
VENV=target/schemathesis-venv
VERSION=4.32.5
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
# shellcheck source=/dev/null
source "${LB_STATE_DIR:-target/infra}/env"
for bin in api loadgen lb-admin; do
    [[ -x target/debug/$bin ]] || cargo build --locked -q --bin "$bin"
done
export LB_REDIS_URL=${LB_REDIS_URL%/}/15
redis-cli -u "$LB_REDIS_URL" flushdb >/dev/null
target/debug/lb-admin epoch --adopt >/dev/null
run=st-$(date +%s)-$$
export ST_BOARD=$run ST_ADMIN_BOARD=$run-admin
# A players log of its own: the api keeps every erasure and ban it makes there, and the shared
# scores.players would give them back to any later recovery of loadgen's ids.
export LB_PLAYERS_TOPIC=$run-players
ST_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ST_TOKEN
target/debug/loadgen seed --board "$ST_BOARD" --players 300 --reset day --layout single >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=${LB_STATE_DIR:-target/infra}/logs/schemathesis-api.log
RUST_LOG=warn target/debug/api --addr "127.0.0.1:$port" --layout single \
    --admin-tokens "schemathesis:$(printf %s "$ST_TOKEN" | sha256sum | cut -d' ' -f1):admin" >"$log" 2>&1 &
api_pid=$!
trap 'kill -TERM $api_pid 2>/dev/null || true; wait $api_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" 2>/dev/null && break
    sleep 0.1
done
# The coverage phase of this version fails on its own (a KeyError inside schemathesis, not an
# answer of the api): the other three phases run.
"$VENV/bin/st" --config-file scripts/schemathesis/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --checks all --phases "${LB_SCHEMATHESIS_PHASES:-examples,fuzzing,stateful}" --max-time "$seconds" --workers 2 --no-color
