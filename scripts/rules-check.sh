#!/usr/bin/env bash
# Checks the Prometheus configuration and alert rules of deploy/prometheus with promtool:
# `check config`, `check rules`, and `test rules` (alerts.test.yml: each alert fires on the series
# that should fire it and stays quiet on a healthy system); that the dashboard's queries parse; and
# that every series an alert or a panel queries is one the services record, in the form queried.
# Installs Debian's prometheus package (which ships promtool) when promtool is missing.
set -Eeuo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT/deploy/prometheus"
# shellcheck source=lib/prometheus.sh
source "$REPO_ROOT/scripts/lib/prometheus.sh"
ensure_prometheus
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
# Every series an alert or a panel queries must be one the services export, in the form queried:
# the name is a metric the code records (a literal in a metrics macro, or a counter's name), and a
# histogram queried as `_bucket` has buckets configured (without them the exporter renders a
# summary, and the `_bucket` series never exists).
python3 - "$REPO_ROOT" <<'PY'
import json, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
code = ""
for path in root.glob("*/src/**/*.rs"):
    # Comments name metrics too (docs tables): only code counts.
    code += "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("//")) + "\n"
recorded = set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"([a-z_]+)"', code))
recorded |= set(re.findall(r'=>\s*"((?:ingest|api)_[a-z_]+_total)"', code))
histograms = set(re.findall(r'histogram!\(\s*"([a-z_]+)"', code))
bucketed = set(re.findall(r'\(\s*"([a-z_]+)",\s*&\[', code))
queries = [("alerts.yml", e) for e in re.findall(r"expr:\s*(.+)", (root / "deploy/prometheus/alerts.yml").read_text())]
dash = json.loads((root / "deploy/grafana/leaderboard.json").read_text())
queries += [(f"panel {p.get('title')!r}", t["expr"]) for p in dash["panels"] for t in p["targets"]]
problems = []
for where, expr in queries:
    for name in set(re.findall(r"\b((?:ingest|api)_[a-z_]+)", expr)):
        if name.endswith("_bucket"):
            base = name[: -len("_bucket")]
            if base not in histograms:
                problems.append(f"{where}: {name}: no histogram {base} is recorded")
            elif base not in bucketed:
                problems.append(f"{where}: {name}: {base} has no buckets configured (exported as a summary)")
        elif name.endswith(("_sum", "_count")) and name.rsplit("_", 1)[0] in histograms:
            continue
        elif name not in recorded:
            problems.append(f"{where}: {name}: no such metric is recorded")
for p in problems:
    print(p, file=sys.stderr)
print(f"queried series: {len(queries)} queries, {len(problems)} naming no exported series")
sys.exit(1 if problems else 0)
PY
