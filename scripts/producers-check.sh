#!/usr/bin/env bash
# The producers' end-to-end check (docs/producers.md, "What the check proves"): the Python and Node
# examples publish signed events through the real broker, a real ingest and api, and the page's own
# commands are what runs.
#   1. installs what is missing: Node and npm (Debian), Python's venv, the debug ingest and api
#   2. an environment of the run's own: topic, dead-letter topic and group named for the run, Redis
#      database 12 (emptied first), free loopback ports for the api and ingest's metrics, and the
#      page's test-vector key as the producers' key
#   3. runs the page's blocks marked `producers-check: start` (ingest --require-signatures with that
#      key, and the api), `python` and `node` (install the client, publish, read a rank), verbatim
#   4. publishes one event from each example signed with a wrong secret
#   5. scripts/producers/check.py verify: the ranks the api answers, the two forged events (and
#      nothing else) in the dead-letter topic as bad_signature, the test vectors in Python, Node
#      and, for the page's, through ingest's verifier
# Stops everything it started; prints one line, "producers-check: ok: ..." or "... FAILED: ...".
# Needs scripts/infra.sh up (LB_STATE_DIR/env). Logs: LB_STATE_DIR/logs/producers-check*.log.
#
# The page's `rewards` block then runs the reward consumer against season results ingest produces.
#
# Usage: scripts/producers-check.sh
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
started=$(date +%s)
STATE_DIR=${LB_STATE_DIR:-target/infra}
LOG_DIR=$STATE_DIR/logs
mkdir -p "$LOG_DIR"
log=$LOG_DIR/producers-check.log services_log=$LOG_DIR/producers-check-services.log
: >"$log"
: >"$services_log"

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() { # packages
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
fail() {
    echo "producers-check: FAILED: $* (logs: $log, $services_log)"
    exit 1
}
check() { python3 scripts/producers/check.py "$@"; }

# 1. Tools. Debian's nodejs has no npm of its own; a Node from elsewhere may bring npm with it.
command -v python3 >/dev/null 2>&1 || apt_install python3
if [[ ! -x target/producers/venv/bin/pip ]]; then # Debian ships venv's pip bootstrap separately
    probe=$(mktemp -d)
    python3 -m venv "$probe/venv" >/dev/null 2>&1 || apt_install python3-venv
    rm -rf "$probe"
fi
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
command -v curl >/dev/null 2>&1 || apt_install curl
# shellcheck source=/dev/null
source "$STATE_DIR/env"
[[ -x target/debug/ingest && -x target/debug/api && -x target/debug/lb-admin && -x target/debug/loadgen ]] ||
    cargo build --locked -q --bin ingest --bin api --bin lb-admin --bin loadgen

# 2. The run's environment: ingest, the api and the page's blocks read these.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
run=producers-check-$(date +%s)-$$
export LB_TOPIC=$run LB_DLQ_TOPIC=$run.dlq LB_INGEST_GROUP=$run
# The reward consumer's block: results, the players log (its ban), its group and database.
export LB_SEASON_RESULTS_TOPIC=$run.seasons LB_PLAYERS_TOPIC=$run.players LB_REWARDS_GROUP=$run.rewards
export LB_REWARDS_DB=target/producers/$run.rewards.db
export LB_REDIS_URL=${LB_REDIS_URL%/}/12
api_port=$(free_port) metrics_port=$(free_port)
export LB_API_ADDR=127.0.0.1:$api_port LB_INGEST_METRICS_ADDR=127.0.0.1:$metrics_port
export RUST_LOG=${RUST_LOG:-info}
eval "$(check vector-env)" # LB_PRODUCER_KEY_ID, LB_PRODUCER_KEY
redis-cli -u "$LB_REDIS_URL" flushdb >/dev/null

# 3. The page's blocks. `start` runs in this shell, so its background jobs are ours to stop.
# shellcheck disable=SC2317 # invoked by the EXIT trap
service_pids=
stop_services() {
    local pids=$service_pids
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086 # one word per pid
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 150); do
        # shellcheck disable=SC2086
        kill -0 $pids 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_block=$(check block start) || fail "no start block in docs/producers.md"
eval "$start_block" >>"$services_log" 2>&1
service_pids=$(jobs -p)
[[ -n $service_pids ]] || fail "the start block started nothing in the background"
for _ in $(seq 1 150); do
    curl -sf -o /dev/null "http://$LB_API_ADDR/readyz" && curl -sf -o /dev/null "http://$LB_INGEST_METRICS_ADDR/healthz" && break
    for pid in $service_pids; do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$services_log"; fail "ingest or the api exited"; }
    done
    sleep 0.2
done
curl -sf -o /dev/null "http://$LB_API_ADDR/readyz" || fail "the api did not become ready"
curl -sf -o /dev/null "http://$LB_INGEST_METRICS_ADDR/healthz" || fail "ingest did not come up"

for name in python node rewards; do
    {
        echo "==== docs/producers.md block '$name'"
        check block "$name"
        echo "===="
    } >>"$log"
    timeout 180 bash -euo pipefail -c "$(check block "$name")" >>"$log" 2>&1 || {
        tail -20 "$log"
        fail "the page's $name block failed"
    }
    echo >>"$log"
done

# 4. One event from each example signed with a secret ingest does not hold.
forged_secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
LB_PRODUCER_KEY=$forged_secret target/producers/venv/bin/python examples/producers/python/producer.py \
    --board quickstart p-forged-py=999999 >>"$log" 2>&1 || fail "the Python example could not publish the forged event"
LB_PRODUCER_KEY=$forged_secret node examples/producers/node/producer.js \
    --board quickstart p-forged-js=999999 >>"$log" 2>&1 || fail "the Node example could not publish the forged event"

# 5. The verdict.
if ! verdict=$(target/producers/venv/bin/python scripts/producers/check.py verify \
    --forged quickstart/p-forged-py quickstart/p-forged-js 2>&1); then
    tail -20 "$services_log"
    fail "${verdict#FAILED: }"
fi
rewards_log=$LOG_DIR/producers-check-rewards.log
check block rewards >/dev/null || fail "no rewards block in docs/producers.md"
grep -E ' revision ' "$log" >"$rewards_log" || true
if ! rewarded=$(python3 scripts/producers/check.py rewards "$LB_REWARDS_DB" "$rewards_log" 2>&1); then
    fail "${rewarded#FAILED: }"
fi
rm -f "$LB_REWARDS_DB"
echo "producers-check: ok: $verdict; $rewarded ($(($(date +%s) - started)) s)"
