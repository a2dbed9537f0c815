# shellcheck shell=bash
# ensure_prometheus: installs Debian's prometheus package (the server and promtool) when either is
# missing, and stops the server the package starts: the scripts that use it run their own.
ensure_prometheus() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
    as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
    echo "installing prometheus and promtool (Debian package prometheus)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null ||
        { as_root apt-get update >/dev/null &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || as_root pkill -x prometheus || true
}
