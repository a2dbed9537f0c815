#!/usr/bin/env bash
# Starts every service of docker-compose.yml from its own entrypoint, command, environment,
# mounted files and health check, without a container engine (scripts/compose/README.md,
# "Running the stack"): the Redis primary, replicas and Sentinels, the six-node Redis Cluster and
# its creation, ingest, the api, Prometheus, loadgen and lb-admin, on the local redis-server,
# prometheus and the workspace's binaries (target/debug), hostnames mapped to 127.0.0.1 and every
# port to a free one. The Kafka brokers cannot run here: the local broker (LB_KAFKA_BROKERS, from
# $LB_STATE_DIR/env when unset) stands in, and kafka-init's kafka-topics.sh calls are judged.
# Stops everything it started; prints one summary line; exits non-zero when anything failed.
#
#   scripts/compose-run-check.sh [COMPOSE_FILE]
#   LB_BIN_DIR (target/debug), LB_COMPOSE_RUN_DEADLINE (75 s), LB_COMPOSE_RUN_HEALTH_CAP (25 s)
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=compose/venv.sh
source "$REPO_ROOT/scripts/compose/venv.sh"
compose_venv
BIN_DIR=${LB_BIN_DIR:-$REPO_ROOT/target/debug}
for bin in api ingest loadgen lb-admin; do
    [[ -x $BIN_DIR/$bin ]] || {
        echo "compose-run-check: FAILED: $BIN_DIR/$bin is missing (cargo build --bin api --bin ingest --bin loadgen --bin lb-admin)"
        exit 1
    }
done
# shellcheck source=lib/prometheus.sh
source "$REPO_ROOT/scripts/lib/prometheus.sh"
ensure_prometheus
for tool in redis-server redis-cli prometheus wget; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "compose-run-check: FAILED: $tool is missing (scripts/infra.sh install)"
        exit 1
    }
done
if [[ -z ${LB_KAFKA_BROKERS:-} && -r ${LB_STATE_DIR:-$REPO_ROOT/target/infra}/env ]]; then
    # shellcheck source=/dev/null
    source "${LB_STATE_DIR:-$REPO_ROOT/target/infra}/env"
fi
exec "$VENV/bin/python" -B "$REPO_ROOT/scripts/compose/run_check.py" "${1:-$REPO_ROOT/docker-compose.yml}" "$BIN_DIR"
