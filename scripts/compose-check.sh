#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine (scripts/compose/README.md): interpolation,
# anchors, the Compose Specification's schema, and cross-references. Installs its Python tools
# (jsonschema, PyYAML from PyPI) into a virtualenv under target/ on first use.
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO_ROOT/target/compose-check-venv
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() { # packages
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import jsonschema, yaml' 2>/dev/null; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    rm -rf "$VENV"
    # Debian ships venv's pip bootstrap separately.
    python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV" && apt_install python3-venv && python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'jsonschema>=4,<5' 'PyYAML>=6,<7'
fi
# The stack refuses to start without the Redis users' passwords (docker-compose.yml); the check
# stands in placeholders for those not set, as an operator's .env would hold the real ones.
for role in API INGEST ADMIN REPLICA SENTINEL; do
    var=LB_REDIS_${role}_PASSWORD
    [[ -n ${!var:-} ]] || export "$var=compose-check-placeholder"
done
exec "$VENV/bin/python" "$REPO_ROOT/scripts/compose/check.py" "${1:-$REPO_ROOT/docker-compose.yml}"
