# shellcheck shell=bash
# The Python tools of the compose checks (jsonschema, PyYAML from PyPI), in a virtualenv under
# target/ made on first use. Sourced by scripts/compose-check.sh and scripts/compose-run-check.sh:
# `compose_venv` sets VENV and makes sure it is there.
VENV=${REPO_ROOT:?}/target/compose-check-venv
compose_as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
compose_apt_install() { # packages
    compose_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { compose_as_root apt-get update >/dev/null &&
            compose_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
compose_venv() {
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import jsonschema, yaml' 2>/dev/null; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || compose_apt_install python3
    rm -rf "$VENV"
    # Debian ships venv's pip bootstrap separately.
    python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV" && compose_apt_install python3-venv && python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'jsonschema>=4,<5' 'PyYAML>=6,<7'
}
