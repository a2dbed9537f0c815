#!/usr/bin/env bash
# Checks the Prometheus configuration and alert rules of deploy/prometheus with promtool:
# `check config`, `check rules`, and `test rules` (alerts.test.yml: each alert fires on the series
# that should fire it and stays quiet on a healthy system). Installs Debian's prometheus package
# (which ships promtool) when promtool is missing.
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT/deploy/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
    as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
    echo "installing promtool (Debian package prometheus)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null ||
        { as_root apt-get update >/dev/null &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
    # The package starts a server we do not want running.
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || as_root pkill -x prometheus || true
fi
# The config names the rules by their path in the container; check them from here instead.
sed 's#/etc/prometheus/alerts.yml#alerts.yml#' prometheus.yml >"$REPO_ROOT/target/prometheus-check.yml"
cp alerts.yml "$REPO_ROOT/target/alerts.yml"
promtool check config --syntax-only "$REPO_ROOT/target/prometheus-check.yml"
promtool check rules alerts.yml
promtool test rules alerts.test.yml
# The dashboard's queries must parse too: promtool has no query checker, so each goes through a
# throwaway recording rule.
python3 - "$REPO_ROOT/deploy/grafana/leaderboard.json" "$REPO_ROOT/target/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(e)}\n")
print(f"dashboard: {len(exprs)} queries")
PY
promtool check rules "$REPO_ROOT/target/dashboard-rules.yml"
