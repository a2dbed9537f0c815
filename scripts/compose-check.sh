#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine (scripts/compose/README.md): interpolation,
# anchors, the Compose Specification's schema, and cross-references. Installs its Python tools
# (jsonschema, PyYAML from PyPI) into a virtualenv under target/ on first use.
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=compose/venv.sh
source "$REPO_ROOT/scripts/compose/venv.sh"
compose_venv
# The stack refuses to start without the Redis users' passwords (docker-compose.yml); the check
# stands in placeholders for those not set, as an operator's .env would hold the real ones.
for role in API INGEST ADMIN REPLICA SENTINEL; do
    var=LB_REDIS_${role}_PASSWORD
    [[ -n ${!var:-} ]] || export "$var=compose-check-placeholder"
done
exec "$VENV/bin/python" "$REPO_ROOT/scripts/compose/check.py" "${1:-$REPO_ROOT/docker-compose.yml}"
